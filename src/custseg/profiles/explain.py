"""What a run adds beside the segments themselves (issue 13): the facts the names rest on, the
checked names, RFM per customer and per segment, stability and margins.

The building blocks are tested on their own (naming.py, rfm.py, clustering/stability.py,
clustering/margins.py); this module only joins them to a run's data:

* `data_facts` / `table_facts`: naming's DataFacts from the customers in memory (numpy) or from a
  customer table an engine holds (Ibis: Spark-resident runs);
* `checked_names`: names, words, evidence and strategies from the per-segment statistics, each
  name checked against its rules (a violated rule is a bug: raises);
* `explain`: per customer r/f/m scores, rfm_segment, distance, runner_up, runner_up_distance and
  borderline; per segment the RFM composition, borderline counts and bootstrap stability.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..clustering.margins import BORDERLINE_RATIO, borderline_counts, centre_margins
from .naming import (DataFacts, check_name, facts_from_customers, finite_or_none, name_segments, names_frame,
                     words_in_name)
from .rfm import RFM_SEGMENTS, rfm_composition, rfm_scores, rfm_segment_codes

RFM_NEEDS = ("recency_days", "order_count", "total_spending")
UNSTABLE_BELOW = 0.6  # clustering/stability.py's threshold (Hennig), checked equal by the tests


def rfm_column(segment: str) -> str:
    """profiles.csv's column of an RFM segment's share: 'Can't Lose Them' -> 'rfm_cant_lose_them'."""
    return "rfm_" + re.sub(r"[^a-z0-9]+", "_", segment.lower().replace("'", "")).strip("_")


RFM_COLUMNS = tuple(rfm_column(s) for s in RFM_SEGMENTS)


# ---------------------------------------------------------------------------- facts


def span_days(date_range) -> float | None:
    """Days from the data's first to its last date, both counted (last - first + 1), as recency
    counts an order on the last day as 1; None without dates."""
    if not date_range or not date_range[0] or not date_range[1]:
        return None
    first, last = (pd.Timestamp(d).normalize() for d in date_range[:2])
    return float((last - first).days + 1)


def data_facts(columns: dict[str, np.ndarray], date_range) -> DataFacts:
    """DataFacts from every customer's features held in memory (missing features: unknown)."""
    return facts_from_customers(
        span_days(date_range), recency_days=columns.get("recency_days"),
        first_order_age_days=columns.get("first_order_age_days"), order_count=columns.get("order_count"),
        total_spending=columns.get("total_spending"), average_return_rate=columns.get("average_return_rate"),
        avg_order_value=columns.get("avg_order_value"))


def table_facts(table, computed: list[str], date_range) -> DataFacts:
    """data_facts computed by the engine on a customer table (the same definitions)."""
    have = set(computed)
    metrics: dict[str, Any] = {}
    if "first_order_age_days" in have:
        metrics["typical_age"] = table.first_order_age_days.median()
        metrics["oldest"] = table.first_order_age_days.max()
    if "total_spending" in have:
        metrics["mean_spending"] = table.total_spending.mean()
    if "average_return_rate" in have:
        metrics["mean_returns"] = table.average_return_rate.mean()
    if "avg_order_value" in have:
        metrics["typical_value"] = table.avg_order_value.median()
    row = table.aggregate(**metrics).to_pandas().iloc[0] if metrics else {}
    gap = None
    if {"recency_days", "first_order_age_days", "order_count"} <= have:
        repeat = table.filter(table.order_count >= 2)
        between = (repeat.first_order_age_days - repeat.recency_days) / (repeat.order_count - 1)
        gap = finite_or_none(repeat.aggregate(gap=between.median()).to_pandas()["gap"].iloc[0])
    span = span_days(date_range)
    return DataFacts(
        span_days=span if span is not None else finite_or_none(row.get("oldest")),
        typical_first_order_age_days=finite_or_none(row.get("typical_age")), typical_gap_days=gap,
        mean_spending=finite_or_none(row.get("mean_spending")),
        mean_return_rate=finite_or_none(row.get("mean_returns")),
        typical_order_value=finite_or_none(row.get("typical_value")))


# ---------------------------------------------------------------------------- names


def checked_names(stats: pd.DataFrame, facts: DataFacts) -> pd.DataFrame:
    """segment, segment_name, name_words, name_evidence, strategy (naming.names_frame) from the
    per-segment statistics (segment, customers, revenue, <feature>_mean/_median ...).

    Every name is checked with naming.check_name on the words its text carries: a broken rule
    here is a bug in the naming, never the user's, so it raises RuntimeError."""
    names = name_segments(stats, facts)
    for n in names:
        problems = check_name(words_in_name(n.name), stats, facts, n.segment)
        if problems:
            raise RuntimeError(f"segment {n.segment} named {n.name!r} breaks its rules: {'; '.join(problems)}")
    return names_frame(names)


# ---------------------------------------------------------------------------- per customer and per segment


@dataclass
class Explanation:
    """Per-customer columns for the segments table and per-segment columns for the profiles."""

    customers: dict[str, pa.Array] = field(default_factory=dict)  # in the customer table's row order
    segments: pd.DataFrame | None = None  # index segment 0..k-1
    stability: pd.DataFrame | None = None  # segment, stability, stability_runs, unstable
    seconds: dict[str, float] = field(default_factory=dict)
    facts: DataFacts | None = None  # what the names were checked against (set when profiling)

    def facts_summary(self) -> dict[str, float]:
        """summary.json's "naming_facts": the known facts the names rest on (docs/naming.md)."""
        if self.facts is None:
            return {}
        return {k: v for k, v in dataclasses.asdict(self.facts).items() if v is not None}

    def summary(self) -> dict[str, Any]:
        """summary.json's "stability" entry (empty without stability)."""
        if self.stability is None:
            return {}
        s = self.stability
        return {
            "unstable_below": UNSTABLE_BELOW,
            "method": "bootstrap (Hennig's clusterboot): mean Jaccard over 20 refits on a sample of at most "
                      "20,000 customers",
            "segments": [{"segment": int(i), "stability": float(r.stability), "runs": int(r.stability_runs),
                          "unstable": bool(r.unstable)} for i, r in s.iterrows()],
            "unstable_segments": [int(i) for i in s.index[s.unstable]],
            "seconds": self.seconds.get("stability", 0.0),
        }


def explain(columns: dict[str, np.ndarray], Z: np.ndarray | None, centres, labels, k: int, seed: int,
            per_customer: bool = True, stability: bool = True) -> Explanation:
    """RFM (when recency, orders and spending are known), with `stability` the bootstrap stability
    (Z: the scaled matrix of the customers whose `labels` are given) and, with `per_customer`,
    margins to the centres (and the per-customer RFM columns).

    `columns`: the customers' features (the rows of Z and labels)."""
    labels = np.asarray(labels, dtype=np.int64)
    out = Explanation()
    per_segment = pd.DataFrame(index=pd.RangeIndex(k, name="segment"))
    if Z is not None and len(Z):
        if stability:
            from ..clustering.stability import bootstrap_stability  # scikit-learn: heavy (preloaded in a run)

            started = time.perf_counter()
            found = bootstrap_stability(Z, labels, k, seed=seed).frame()
            out.seconds["stability"] = round(time.perf_counter() - started, 3)
            out.stability = found
            per_segment = per_segment.join(found)
        if per_customer:
            m = centre_margins(Z, centres, labels)
            out.customers.update({
                "distance": pa.array(m.distance, pa.float64()),
                "runner_up": pa.array(m.runner_up.astype(np.int64), pa.int64()),
                "runner_up_distance": pa.array(m.runner_up_distance, pa.float64()),
                "borderline": pa.array(m.borderline, pa.bool_()),
            })
            per_segment["borderline_customers"] = borderline_counts(labels, m.borderline, k)
    if all(c in columns for c in RFM_NEEDS) and len(labels):
        s = rfm_scores(columns["recency_days"], columns["order_count"], columns["total_spending"])
        codes = rfm_segment_codes(s.r, s.f, s.m)
        if per_customer:
            out.customers.update({
                "r_score": pa.array(s.r.astype(np.int64)), "f_score": pa.array(s.f.astype(np.int64)),
                "m_score": pa.array(s.m.astype(np.int64)),
                # dictionary-encoded like segment_name: 11 names, not one string per customer
                "rfm_segment": pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                                              pa.array(list(RFM_SEGMENTS))),
            })
        composition = rfm_composition(labels, codes, k)
        composition.columns = list(RFM_COLUMNS)
        per_segment = per_segment.join(composition)
    out.segments = per_segment
    out.customers = {c: out.customers[c] for c in CUSTOMER_COLUMNS if c in out.customers}
    return out


# the order of the per-customer columns in the segments table
CUSTOMER_COLUMNS = ("r_score", "f_score", "m_score", "rfm_segment", "distance", "runner_up", "runner_up_distance",
                    "borderline")
BORDERLINE = BORDERLINE_RATIO
# their Arrow types (for readers of segments.csv that rewrite it, e.g. outputs/rename.py)
CUSTOMER_COLUMN_TYPES = {"r_score": pa.int64(), "f_score": pa.int64(), "m_score": pa.int64(),
                         "rfm_segment": pa.string(), "distance": pa.float64(), "runner_up": pa.int64(),
                         "runner_up_distance": pa.float64(), "borderline": pa.bool_()}


def add_segment_columns(profiles: pd.DataFrame, explanation: Explanation | None) -> pd.DataFrame:
    """The profiles with the explanation's per-segment columns (stability, stability_runs,
    unstable, borderline_customers, rfm_*) after the name's columns, before the statistics."""
    if explanation is None or explanation.segments is None or explanation.segments.empty:
        return profiles
    extra = explanation.segments.reindex(profiles["segment"].to_numpy())
    at = list(profiles.columns).index("name_evidence") + 1 if "name_evidence" in profiles else len(profiles.columns)
    out = profiles.copy()
    for offset, column in enumerate(extra.columns):
        values = extra[column].to_numpy()
        out.insert(at + offset, column, values)
    return out
