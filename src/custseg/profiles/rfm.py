"""RFM: recency, frequency and monetary quintile scores and the eleven RFM segments.

Self-contained (numpy and pandas only) and vectorised: tens of millions of customers are
scored by a few sorts, never a Python loop over customers.

Scores (`score`, `rfm_scores`)
------------------------------
Each score is 1..5, 5 being the best: the most recent (smallest `recency_days`), the most
frequent (largest `order_count`), the highest spending (largest `total_spending`)::

    score = 1 + floor(5 * worse / n)

where `n` is the number of customers and `worse` the number of customers strictly worse on
that measure (for recency: who last ordered strictly longer ago). So a score of s means "at
least (s - 1) x 20% of the customers are strictly worse than this one", and:

* Without ties these are exact quintiles of the rank (ranks 1..n/5 score 1, the best fifth 5).
* Ties share one score, the score of the lowest rank in the tie (pandas `rank(method="min")`):
  equal values always get equal scores and the score only depends on the value.
* Heavy ties (order_count, where often most customers ordered once): the whole tie gets the
  score of its first customer. With 60% one-time buyers they all score f = 1, customers with 2
  orders start at 60% (score 4), and so on: scores 2 and 3 simply do not occur. A score is never
  inflated by a tie: it is the share of customers strictly worse.
* Small data / few distinct values: fewer than five distinct values give fewer than five
  distinct scores, still on the 1..5 scale by the same rule (with two equally large groups:
  1 and 3). A constant measure scores everyone 1 (no customer is better than another); one
  customer scores 1.

Values must be finite; NaN or infinity raises ValueError.

Segments (`RFM_RULES`, `RFM_TABLE`, `rfm_segments`)
---------------------------------------------------
`RFM_RULES` lists, for each of the eleven segments, disjoint conditions on (R, F, M); they are
materialised into `RFM_TABLE`, a dict of all 125 codes (r, f, m) -> segment, checked at import
to give every code exactly one segment and every segment at least one code. docs/naming.md's
RFM table is generated from these rules (`rfm_rules_markdown`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

SCORES = (1, 2, 3, 4, 5)

RFM_SEGMENTS = (
    "Champions", "Loyal", "Potential Loyalist", "New Customers", "Promising", "Need Attention",
    "About to Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost",
)

RFM_ABBREVIATIONS = {
    "Champions": "CH", "Loyal": "LO", "Potential Loyalist": "PL", "New Customers": "NC", "Promising": "PR",
    "Need Attention": "NA", "About to Sleep": "AS", "At Risk": "AR", "Can't Lose Them": "CL",
    "Hibernating": "HI", "Lost": "LT",
}


# ---------------------------------------------------------------------------- scores


def score(values, higher_is_better: bool = True) -> np.ndarray:
    """1..5 score per value: 1 + floor(5 x (number of values strictly worse) / n), as int8.

    `higher_is_better=False` for recency (fewer days since the last order is better).

    The score passes s + 1 exactly where at least c_s = ceil(s n / 5) values are worse, i.e. where
    the value is beyond the c_s-th worst value: four order statistics (one partition, linear in n)
    and four comparisons per value give every score, with no sort (integers throughout: no
    rounding at the quintile edges). 10M amounts: 0.20 s instead of 1.66 s for the two sorts.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    if not np.isfinite(x).all():
        raise ValueError("RFM scores need finite values (no NaN or infinity)")
    needed = [-(-s * n // 5) for s in (1, 2, 3, 4)]  # c_s: values worse than it for a score above s
    # higher is better: worse = strictly below, so x scores above s iff x > the c_s-th smallest value;
    # lower is better: worse = strictly above, so x scores above s iff x < the c_s-th largest value.
    positions = [c - 1 for c in needed] if higher_is_better else [n - c for c in needed]
    bounds = np.partition(x, sorted(set(positions)))[positions]
    out = np.ones(n, dtype=np.int8)
    for bound in bounds:
        out += (x > bound) if higher_is_better else (x < bound)
    return out


@dataclass(frozen=True)
class RFMScores:
    r: np.ndarray  # int8 1..5, 5 = most recent
    f: np.ndarray  # int8 1..5, 5 = most orders
    m: np.ndarray  # int8 1..5, 5 = highest spending


def rfm_scores(recency_days, order_count, total_spending) -> RFMScores:
    """r_score, f_score, m_score of each customer (three int8 arrays of the input's length)."""
    r = score(recency_days, higher_is_better=False)
    f = score(order_count, higher_is_better=True)
    m = score(total_spending, higher_is_better=True)
    if not len(r) == len(f) == len(m):
        raise ValueError("recency_days, order_count and total_spending must have the same length")
    return RFMScores(r, f, m)


# ---------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Rule:
    segment: str
    text: str  # the condition, for people (docs/naming.md)
    test: Callable[[int, int, int], bool]  # the same condition, for the code


# Disjoint conditions (each code meets exactly one: checked below). Read top to bottom:
# R >= 4 recent, R = 3 middle, R <= 2 lapsing; F and M the frequency and spending scores.
RFM_RULES: tuple[Rule, ...] = (
    Rule("Champions", "R >= 4, F >= 4, M >= 4",
         lambda r, f, m: r >= 4 and f >= 4 and m >= 4),
    Rule("Loyal", "R >= 3, F >= 3, and not Champions (R = 3, or F = 3, or M <= 3)",
         lambda r, f, m: r >= 3 and f >= 3 and not (r >= 4 and f >= 4 and m >= 4)),
    Rule("New Customers", "R = 5, F = 1",
         lambda r, f, m: r == 5 and f == 1),
    Rule("Potential Loyalist", "R >= 4, F <= 2, M >= 3, not New Customers (R = 4 or F = 2)",
         lambda r, f, m: r >= 4 and f <= 2 and m >= 3 and not (r == 5 and f == 1)),
    Rule("Promising", "R >= 4, F <= 2, M <= 2, not New Customers (R = 4 or F = 2)",
         lambda r, f, m: r >= 4 and f <= 2 and m <= 2 and not (r == 5 and f == 1)),
    Rule("Need Attention", "R = 3, F <= 2, M >= 3",
         lambda r, f, m: r == 3 and f <= 2 and m >= 3),
    Rule("About to Sleep", "R = 3, F <= 2, M <= 2",
         lambda r, f, m: r == 3 and f <= 2 and m <= 2),
    Rule("Can't Lose Them", "R = 1, F >= 4, M >= 4",
         lambda r, f, m: r == 1 and f >= 4 and m >= 4),
    Rule("At Risk", "R <= 2, F + M >= 6, not Can't Lose Them (R = 2, or F <= 3, or M <= 3)",
         lambda r, f, m: r <= 2 and f + m >= 6 and not (r == 1 and f >= 4 and m >= 4)),
    Rule("Hibernating", "R = 2, F + M <= 5",
         lambda r, f, m: r == 2 and f + m <= 5),
    Rule("Lost", "R = 1, F + M <= 5",
         lambda r, f, m: r == 1 and f + m <= 5),
)


def _materialise(rules: tuple[Rule, ...]) -> dict[tuple[int, int, int], str]:
    table: dict[tuple[int, int, int], str] = {}
    for r in SCORES:
        for f in SCORES:
            for m in SCORES:
                hits = [rule.segment for rule in rules if rule.test(r, f, m)]
                if len(hits) != 1:
                    raise AssertionError(f"RFM code {r}{f}{m} meets {len(hits)} rules: {hits}")
                table[(r, f, m)] = hits[0]
    missing = set(RFM_SEGMENTS) - set(table.values())
    if missing or {rule.segment for rule in rules} != set(RFM_SEGMENTS):
        raise AssertionError(f"RFM segments without a code: {sorted(missing)}")
    return table


RFM_TABLE: dict[tuple[int, int, int], str] = _materialise(RFM_RULES)

# index [r, f, m] (0 unused) -> position in RFM_SEGMENTS
_LOOKUP = np.full((6, 6, 6), -1, dtype=np.int8)
for (_r, _f, _m), _segment in RFM_TABLE.items():
    _LOOKUP[_r, _f, _m] = RFM_SEGMENTS.index(_segment)


def rfm_segment_codes(r, f, m) -> np.ndarray:
    """Each customer's RFM segment as its position in RFM_SEGMENTS (int8 0..10)."""
    r, f, m = (np.asarray(a) for a in (r, f, m))
    for a in (r, f, m):
        if a.size and (a.min() < 1 or a.max() > 5):
            raise ValueError("RFM scores must be 1..5")
    return _LOOKUP[r.astype(np.intp), f.astype(np.intp), m.astype(np.intp)]


def rfm_segments(r, f, m) -> pd.Categorical:
    """Each customer's RFM segment name (a pandas Categorical over RFM_SEGMENTS, in that order)."""
    return pd.Categorical.from_codes(rfm_segment_codes(r, f, m).astype(np.int64), categories=list(RFM_SEGMENTS))


def rfm_table(recency_days, order_count, total_spending) -> pd.DataFrame:
    """r_score, f_score, m_score and rfm_segment per customer, in input order."""
    s = rfm_scores(recency_days, order_count, total_spending)
    return pd.DataFrame({"r_score": s.r, "f_score": s.f, "m_score": s.m,
                         "rfm_segment": rfm_segments(s.r, s.f, s.m)})


def rfm_composition(labels, rfm_codes, k: int) -> pd.DataFrame:
    """Share of each K-means segment's customers in each RFM segment.

    `labels`: each customer's K-means segment 0..k-1; `rfm_codes`: rfm_segment_codes (or the
    Categorical's codes). Returns k rows (index `segment`) x 11 columns (RFM_SEGMENTS, in that
    order): each non-empty segment's row sums to 1; an empty segment's row is all 0 (finite)."""
    labels = np.asarray(labels, dtype=np.int64)
    codes = np.asarray(rfm_codes, dtype=np.int64)
    if labels.shape != codes.shape:
        raise ValueError("labels and rfm_codes must have the same length")
    c = len(RFM_SEGMENTS)
    counts = np.bincount(labels * c + codes, minlength=k * c).reshape(k, c).astype(np.float64)
    sizes = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, sizes, out=np.zeros_like(counts), where=sizes > 0)
    return pd.DataFrame(shares, columns=list(RFM_SEGMENTS), index=pd.RangeIndex(k, name="segment"))


# ---------------------------------------------------------------------------- docs


def rfm_rules_markdown() -> str:
    """The RFM rules and the full R x (F, M) grid as markdown (docs/naming.md embeds this)."""
    lines = ["| RFM segment | rule (R, F, M scores 1..5, 5 best) | codes |", "|---|---|---|"]
    for rule in RFM_RULES:
        n = sum(1 for s in RFM_TABLE.values() if s == rule.segment)
        lines.append(f"| {rule.segment} | {rule.text} | {n} |")
    lines += ["", "Every code, as R (rows) by F (columns); each cell lists the segments of M = 1..5 (abbreviated):", ""]
    initials = RFM_ABBREVIATIONS
    lines.append("| R \\ F | " + " | ".join(f"F={f}" for f in SCORES) + " |")
    lines.append("|---" * (len(SCORES) + 1) + "|")
    for r in reversed(SCORES):
        cells = [" ".join(initials[RFM_TABLE[(r, f, m)]] for m in SCORES) for f in SCORES]
        lines.append(f"| R={r} | " + " | ".join(cells) + " |")
    lines += ["", "Abbreviations: " + ", ".join(f"{v} = {k}" for k, v in initials.items()) + "."]
    return "\n".join(lines)
