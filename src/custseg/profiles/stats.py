"""Profiles: what each segment is, in the shop's own units, what it is called and what to do.

Statistics are computed by numpy on a customer table in memory, or by the engine on a large one;
names and strategies (profiles/naming.py, each word a checked claim) and descriptions
(profiles/describe.py) are small, deterministic rules over them.
"""

from __future__ import annotations


import ibis.expr.types as ir
import numpy as np
import pandas as pd

from ..clustering.scaling import signed_log1p
from ..runtime.parallel import parallel_map
from .describe import describe
from .explain import checked_names
from .naming import DataFacts

STATS = ("mean", "median", "min", "max")
# described in every segment's sentence when computed, beside the clustering features
DESCRIBED = ("order_count", "recency_days", "first_order_age_days", "total_spending")


MEDIANS_AT_ONCE = 5_000_000  # customers up to which all medians are one query (see segment_stats)
# customers up to which a table in memory is profiled by numpy (and the report groups its rows
# by segment, its statistics side by side): beyond, the copies of columns cost hundreds of MB
LOCAL_STATS_UP_TO = 5_000_000


class SegmentGroups:
    """Row indices ordered by segment (computed once, shared by every feature's statistics)."""

    def __init__(self, labels: np.ndarray, k: int):
        labels = np.asarray(labels)
        small = labels.astype(np.int16) if k < 2**15 else labels  # a radix sort for small integers
        self.order = np.argsort(small, kind="stable")
        self.bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """The values of each segment (in row order)."""
        ordered = values[self.order]
        return [ordered[a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:])]


def local_segment_stats(features: dict[str, np.ndarray], labels: np.ndarray, k: int) -> pd.DataFrame:
    """segment_stats of a customer table held in memory, by numpy: the same columns (one row per
    segment that has customers), each feature's statistics on its own core."""
    groups = SegmentGroups(labels, k)
    sizes = np.diff(groups.bounds)
    present = np.flatnonzero(sizes)

    def stats_of(name: str) -> dict[str, list[float]]:
        split = groups.split(np.asarray(features[name], dtype=np.float64))
        parts = [split[s] for s in present]
        out = {f"{name}_mean": [float(p.mean()) for p in parts], f"{name}_min": [float(p.min()) for p in parts],
               f"{name}_max": [float(p.max()) for p in parts], f"{name}_median": [float(np.median(p)) for p in parts]}
        if name == "total_spending":
            out["revenue"] = [float(p.sum()) for p in parts]
        return out

    columns: dict[str, object] = {"segment": present.astype("int64"), "customers": sizes[present].astype("int64")}
    for computed in parallel_map(stats_of, list(features)):
        columns.update(computed)
    return pd.DataFrame(columns)


def segment_stats(table: ir.Table, features: list[str], customers: int | None = None) -> pd.DataFrame:
    """Size and mean/median/min/max of each feature per segment (computed by the engine)."""
    metrics = {"customers": table.count()}
    for name in features:
        col = table[name]
        metrics.update({f"{name}_mean": col.mean(), f"{name}_min": col.min(), f"{name}_max": col.max()})
    if "total_spending" in features:
        metrics["revenue"] = table.total_spending.sum()
    # A median keeps every value of its group in memory, outside DuckDB's memory limit: for
    # many customers one feature at a time (8 bytes per customer, not 8 per customer and feature).
    at_once = customers is not None and customers <= MEDIANS_AT_ONCE
    if at_once:
        metrics.update({f"{name}_median": table[name].median() for name in features})
    stats = table.group_by("segment").aggregate(**metrics).order_by("segment").to_pandas()
    for name in features if not at_once else ():
        medians = table.group_by("segment").aggregate(median=table[name].median()).order_by("segment").to_pandas()
        stats[f"{name}_median"] = medians["median"].to_numpy()
    stats["customers"] = stats["customers"].astype("int64")
    stats["segment"] = stats["segment"].astype("int64")
    return stats


def standardized_means(columns: dict[str, np.ndarray], labels: np.ndarray, k: int) -> pd.DataFrame:
    """Segment x feature: how far each segment's mean of log(1 + value) lies from everyone's mean,
    in standard deviations (the 'snake plot' numbers; also what names the segments)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=k).astype(float)
    out = {}
    for name, values in columns.items():
        logged = signed_log1p(np.asarray(values, dtype=np.float64))
        mu, sd = logged.mean(), logged.std()
        sums = np.bincount(labels, weights=logged, minlength=k)
        means = np.divide(sums, counts, out=np.full(k, np.nan), where=counts > 0)
        out[name] = (means - mu) / sd if sd > 0 else np.zeros(k)
    return pd.DataFrame(out, index=pd.RangeIndex(k, name="segment"))


# ---------------------------------------------------------------------------- profiles


def build_profiles(table: ir.Table, features: dict[str, np.ndarray], labels: np.ndarray, k: int,
                   clustering_features: list[str], facts: DataFacts, in_engine: bool = False,
                   currency: str | None = None) -> pd.DataFrame:
    """One row per segment: ids, name, shares, description, strategy, the name's words and
    evidence, and feature statistics.

    `in_engine`: the statistics come from `table` (a customer table the engine holds, e.g. in
    Spark; `features` and `labels` are then a sample's). Names and strategies come from the
    per-segment statistics and `facts` (naming.py), each name checked against its rules."""
    names_all = list(features)
    if not in_engine and len(labels) <= LOCAL_STATS_UP_TO:
        stats = local_segment_stats(features, labels, k)
    else:
        stats = segment_stats(table, names_all, customers=None if in_engine else len(labels))
    full = pd.DataFrame({"segment": np.arange(k)})
    stats = full.merge(stats, on="segment", how="left")
    stats["customers"] = stats["customers"].fillna(0).astype("int64")
    named = checked_names(stats, facts)
    total_customers = max(1, int(stats["customers"].sum()))
    out = pd.DataFrame({
        "segment": stats["segment"].astype("int64"),
        "segment_name": named["segment_name"].to_numpy(),
        "customers": stats["customers"],
        "customer_share": stats["customers"] / total_customers,
    })
    if "revenue" in stats:
        total_revenue = float(stats["revenue"].fillna(0.0).sum())
        out["revenue"] = stats["revenue"].fillna(0.0).astype(float)
        out["revenue_share"] = out["revenue"] / total_revenue if total_revenue else 0.0
    # Descriptions speak of what separates the segments (the clustering features) and of the
    # lifecycle facts and spending, clustered or not.
    described = list(dict.fromkeys(clustering_features + [f for f in DESCRIBED if f in names_all]))
    out["description"] = [describe(stats.iloc[i], described, currency) for i in range(k)]
    out["strategy"] = named["strategy"].to_numpy()
    out["name_words"] = named["name_words"].to_numpy()
    out["name_evidence"] = named["name_evidence"].to_numpy()
    for name in names_all:
        for stat in STATS:
            out[f"{name}_{stat}"] = stats[f"{name}_{stat}"].astype(float).fillna(0.0)
    return out
