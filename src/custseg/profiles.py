"""Profiles: what each segment is, in the shop's own units, what it is called and what to do.

Statistics and best sellers are computed by the engine (DuckDB or Spark) on the
customer table and the order lines; naming and strategies are small, deterministic
rules over those statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .scaling import signed_log1p

STATS = ("mean", "median", "min", "max")

# feature -> (word when high, word when low) for names
_WORDS = {
    "order_count": ("loyal", "one-time"),
    "products_ordered": ("multi-product", "single-product"),
    "recency_days": ("lapsed", "recently active"),
    "tenure_days": ("long-standing", "new"),
    "avg_order_value": ("big-basket", "small-basket"),
    "total_spending": ("high-spending", "low-spending"),
}
VALUE_FEATURES = ("total_spending", "avg_order_value", "order_count")
HIGH, LOW = 0.3, -0.3

STRATEGIES = {
    "returns": "Reduce returns: clearer size guides, photos and reviews on the products they buy, and ask why "
               "they send items back; then engage them with products they keep.",
    "vip": "VIP treatment: early access to launches, exclusive offers and a loyalty programme; watch them "
           "closely, as losing one costs the most.",
    "win_back": "Win them back: a time-limited offer and a reminder of what they bought; stop spending on those "
                "who do not react.",
    "newcomers": "Engage newcomers: a welcome series, a second-purchase incentive and recommendations based on "
                 "their first order.",
    "middle": "Keep them engaged with personalised offers and recommendations based on what they bought, "
              "nudging them towards the next tier.",
}


@dataclass
class SegmentTraits:
    """Standardised level (z) of each feature's segment mean, on the log scale."""

    z: dict[str, float]
    means: dict[str, float]

    def level(self, feature: str) -> int:
        value = self.z.get(feature)
        if value is None:
            return 0
        return 1 if value >= HIGH else (-1 if value <= LOW else 0)


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
    from .clustering import parallel_map

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


def traits(features: dict[str, np.ndarray], labels: np.ndarray, k: int) -> list[SegmentTraits]:
    """Each segment's standardised log-scale mean per feature (standardized_means) and plain mean."""
    out = [SegmentTraits({}, {}) for _ in range(k)]
    counts = np.bincount(labels, minlength=k).astype(float)
    z = standardized_means(features, labels, k)
    for name, values in features.items():
        raw = np.bincount(labels, weights=values, minlength=k)
        for s in range(k):
            if counts[s] == 0:
                continue
            out[s].z[name] = float(z[name].iloc[s])
            out[s].means[name] = float(raw[s] / counts[s])
    return out


def _value_feature(t: SegmentTraits) -> str | None:
    return next((f for f in VALUE_FEATURES if f in t.z), None)


def value_tiers(segment_traits: list[SegmentTraits]) -> list[int]:
    """+1 high, 0 middle, -1 low value: the top segment is high and the bottom one low (when they stand
    above / below average); others only when far from the average (|z| >= 1)."""
    if not segment_traits:
        return []
    value = _value_feature(segment_traits[0])
    if value is None:
        return [0] * len(segment_traits)
    z = [t.z.get(value, 0.0) for t in segment_traits]
    tiers = [1 if v >= 1.0 else (-1 if v <= -1.0 else 0) for v in z]
    top, bottom = int(np.argmax(z)), int(np.argmin(z))
    if z[top] > 0:
        tiers[top] = 1
    if z[bottom] < 0 and bottom != top:
        tiers[bottom] = -1
    return tiers


def _base_name(t: SegmentTraits, value_level: int) -> tuple[str, list[str]]:
    """A name and the ordered list of extra qualifiers that could tell it apart."""
    value = _value_feature(t)
    value_word = {1: "High-value", 0: "Mid-value", -1: "Low-value"}[value_level]
    behaviours = sorted(
        (f for f in _WORDS if f in t.z and f != value and t.level(f) != 0),
        key=lambda f: (-abs(t.z[f]), f),
    )
    words = [(_WORDS[f][0] if t.level(f) > 0 else _WORDS[f][1]) for f in behaviours]
    high_returns = t.level("average_return_rate") > 0 and t.means.get("average_return_rate", 0) > 0.02
    no_returns = "average_return_rate" in t.means and t.means["average_return_rate"] == 0
    newcomer = value_level < 0 and any(w in ("one-time", "new", "single-product") for w in words[:1])
    if newcomer:
        name = "Newcomers"
        words = [w for w in words if w not in ("one-time", "new", "single-product")]
    elif value_level > 0 and words[:1] == ["lapsed"]:
        name, words = "Lapsed high-value", words[1:]
    elif words:
        name, words = f"{value_word} {words[0]}", words[1:]
    else:
        name = {1: "High-value", 0: "Mid-value regulars", -1: "Low-value"}[value_level]
    if high_returns:
        name += " with high returns"
    extras = words + (["no returns"] if no_returns else [])
    return name, extras


def name_segments(segment_traits: list[SegmentTraits]) -> list[str]:
    """Short, distinct, deterministic names derived from the profiles."""
    tiers = value_tiers(segment_traits)
    bases = [_base_name(t, tier) for t, tier in zip(segment_traits, tiers)]
    names = [b[0] for b in bases]
    for _ in range(3):
        seen: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            seen.setdefault(n, []).append(i)
        clashes = [ids for ids in seen.values() if len(ids) > 1]
        if not clashes:
            return names
        for ids in clashes:
            for i in ids:
                extras = bases[i][1]
                used = names[i].count("(")
                if used < len(extras):
                    names[i] = f"{bases[i][0]} ({', '.join(extras[: used + 1])})"
    # Still equal: number them by value, highest first.
    seen = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i)
    for n, ids in seen.items():
        if len(ids) > 1:
            value = _value_feature(segment_traits[ids[0]])
            ranked = sorted(ids, key=lambda i: -segment_traits[i].z.get(value, 0.0) if value else i)
            for rank, i in enumerate(ranked, start=1):
                names[i] = f"{n} {rank}"
    return names


def strategy_for(t: SegmentTraits, value_level: int) -> str:
    if t.level("average_return_rate") > 0 and t.means.get("average_return_rate", 0) > 0.02:
        return STRATEGIES["returns"]
    if t.level("recency_days") > 0 and value_level >= 0:
        return STRATEGIES["win_back"]
    if value_level > 0:
        return STRATEGIES["vip"]
    if t.level("recency_days") > 0:
        return STRATEGIES["win_back"]
    if value_level < 0:
        return STRATEGIES["newcomers"]
    return STRATEGIES["middle"]


# ---------------------------------------------------------------------------- descriptions


def _num(x: float) -> str:
    """A number for people: thousands separators, decimals only where they matter."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:,.2f}"


def _range(lo: float, hi: float, unit: str, plural: str | None = None) -> str:
    plural = plural or unit + "s"
    if lo == hi:
        return f"{_num(lo)} {unit if lo == 1 else plural}"
    return f"{_num(lo)} to {_num(hi)} {plural}"


def describe(row: pd.Series, features: list[str], currency: str | None = None) -> str:
    """One sentence in the shop's units, e.g. 'Ordered 1 to 13 products, spent €600.00 on average, returned
    nothing.' (money with two decimals, and the currency when known)."""
    from .currency import money

    parts = []
    for name in features:
        mean, median = row.get(f"{name}_mean"), row.get(f"{name}_median")
        lo, hi = row.get(f"{name}_min"), row.get(f"{name}_max")
        if mean is None or pd.isna(mean):
            continue
        if name == "products_ordered":
            parts.append(f"ordered {_range(lo, hi, 'product')}")
        elif name == "total_spending":
            parts.append(f"spent {money(mean, currency)} on average (median {money(median, currency)})")
        elif name == "average_return_rate":
            parts.append("returned nothing" if hi == 0 else f"returned {mean:.0%} of their units on average")
        elif name == "order_count":
            parts.append(f"placed {_range(lo, hi, 'order')} (median {_num(median)})")
        elif name == "avg_order_value":
            parts.append(f"spent {money(mean, currency)} per order on average")
        elif name == "recency_days":
            parts.append(f"last ordered {_num(median)} days ago (median)")
        elif name == "tenure_days":
            parts.append(f"were customers for {_num(median)} days (median, first to last order)")
    if not parts:
        return ""
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return text[0].upper() + text[1:] + "."


# ---------------------------------------------------------------------------- profiles


def table_traits(table: ir.Table, clustering_features: list[str], computed: list[str], k: int
                 ) -> list[SegmentTraits]:
    """`traits` computed by the engine on a customer table with a `segment` column.

    For customer tables that stay in Spark; log1p(|x|) is written ln(1 + |x|), which Ibis
    can compile everywhere.
    """
    names = [n for n in clustering_features + ["total_spending"] if n in computed]
    names = list(dict.fromkeys(names))
    logged = {n: table[n].sign() * (table[n].abs() + 1).ln() for n in names}
    overall = table.aggregate(
        **{f"{n}__mu": logged[n].mean() for n in names},
        **{f"{n}__sd": logged[n].std(how="pop") for n in names},
    ).to_pandas().iloc[0]
    per_segment = table.group_by("segment").aggregate(
        customers=table.count(),
        **{f"{n}__log": logged[n].mean() for n in names},
        **{f"{n}__raw": table[n].mean() for n in names},
    ).to_pandas()
    out = [SegmentTraits({}, {}) for _ in range(k)]
    for row in per_segment.itertuples(index=False):
        s, values = int(row.segment), row._asdict()
        for n in names:
            mu, sd = float(overall[f"{n}__mu"]), float(overall[f"{n}__sd"] or 0.0)
            out[s].z[n] = float((values[f"{n}__log"] - mu) / sd) if sd > 0 else 0.0
            out[s].means[n] = float(values[f"{n}__raw"])
    return out


def build_profiles(table: ir.Table, features: dict[str, np.ndarray], labels: np.ndarray, k: int,
                   clustering_features: list[str], segment_traits: list[SegmentTraits] | None = None,
                   currency: str | None = None) -> pd.DataFrame:
    """One row per segment: ids, name, shares, description, strategy and feature statistics."""
    names_all = list(features)
    # (segment_traits come with a Spark-resident table, whose labels here are a sample's)
    if segment_traits is None and len(labels) <= LOCAL_STATS_UP_TO:
        stats = local_segment_stats(features, labels, k)
    else:
        stats = segment_stats(table, names_all, customers=len(labels) if segment_traits is None else None)
    full = pd.DataFrame({"segment": np.arange(k)})
    stats = full.merge(stats, on="segment", how="left")
    stats["customers"] = stats["customers"].fillna(0).astype("int64")
    # Names and strategies speak of what separates the segments: the clustering
    # features, plus spending (the value axis) when it was computed.
    named = {n: features[n] for n in clustering_features + ["total_spending"] if n in features}
    t = segment_traits if segment_traits is not None else traits(named, labels, k)
    names = name_segments(t)
    total_customers = max(1, int(stats["customers"].sum()))
    out = pd.DataFrame({
        "segment": stats["segment"].astype("int64"),
        "segment_name": names,
        "customers": stats["customers"],
        "customer_share": stats["customers"] / total_customers,
    })
    if "revenue" in stats:
        total_revenue = float(stats["revenue"].sum())
        out["revenue"] = stats["revenue"].astype(float)
        out["revenue_share"] = stats["revenue"] / total_revenue if total_revenue else 0.0
    described = list(dict.fromkeys(clustering_features + [f for f in ("total_spending",) if f in names_all]))
    out["description"] = [describe(stats.iloc[i], described, currency) for i in range(k)]
    tiers = value_tiers(t)
    out["strategy"] = [strategy_for(t[i], tiers[i]) for i in range(k)]
    for name in names_all:
        for stat in STATS:
            out[f"{name}_{stat}"] = stats[f"{name}_{stat}"].astype(float)
    return out


def best_sellers(lines: ir.Table, assignment: ir.Table, top: int = 10, per_customer: bool = False) -> ir.Table:
    """Top products per segment by quantity and by revenue (lazy; run by the engine).

    `lines`: order lines, or with `per_customer` rows already unique per (customer, product)
    (features.customer_products), which are not grouped again."""
    purchases = lines.filter(lines.quantity > 0)
    joined = purchases.join(assignment, "customer_id")
    if not per_customer:
        # Two plain group-bys rather than one with a distinct count: a distinct count keeps a
        # set of customers per product in memory, which DuckDB cannot spill (tens of millions
        # of customers ran out of memory). Sums are exact decimals, so the two levels add up
        # to the same numbers.
        joined = joined.group_by(["segment", "product", "customer_id"]).aggregate(
            product_name=joined.product_name.max(),
            quantity=joined.quantity.cast("decimal(38, 9)").sum(),
            amount=joined.amount.cast("decimal(38, 9)").sum(),
        )
    per_product = joined.group_by(["segment", "product"]).aggregate(
        product_name=joined.product_name.max(),
        quantity=joined.quantity.cast("decimal(38, 9)").sum().cast("float64"),
        revenue=joined.amount.cast("decimal(38, 9)").sum().cast("float64"),
        customers=joined.count(),
    )
    ranked = []
    for by in ("quantity", "revenue"):
        rank = ibis.row_number().over(
            group_by=per_product.segment,
            order_by=[ibis.desc(per_product[by]), per_product.product],
        ) + 1
        ranked.append(per_product.mutate(by=ibis.literal(by), rank=rank).filter(ibis._.rank <= top))
    result = ranked[0].union(ranked[1])
    return result.select("segment", "by", "rank", "product", "product_name", "quantity", "revenue", "customers") \
        .order_by(["segment", "by", "rank"])
