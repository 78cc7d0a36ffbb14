"""Segment names as checked claims: every word in a name is a rule its segment's numbers meet.

Inputs
------
* a per-segment statistics table (one row per segment, a `segment` column 0..k-1 or the row
  order, `customers`, and any of the columns in `STAT_COLUMNS`; a missing column or a
  non-finite cell means "not known", and no word that needs it is used);
* `DataFacts`, what is true of the whole data (its date span, the typical customer's first-order
  age and gap between orders, everyone's mean spending and return rate, the typical order value).
  Everyone's mean spending and return rate default to the customer-weighted means of the table.

Output (`name_segments`): per segment its name, the words used with, for each, the rule and the
numbers that meet it, and a strategy sentence chosen from those facts that quotes the number
that motivates it. `check_name(words, table, facts, segment)` returns every rule a list of words
breaks (empty when the name is true): the tests' oracle, usable as a guard on any name
(`words_in_name` finds the vocabulary in a name's text).

The rules (`WORD_RULES`, also docs/naming.md, generated from them) are the minimums of issue 13
or stricter. RFM segment names (Champions, At Risk, ...) are never used in these names: they
belong to the per-customer RFM view (rfm.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .describe import share_text

# statistic columns read from the table (median over the segment's customers unless _mean)
STAT_COLUMNS = (
    "customers", "revenue", "order_count_median", "recency_days_median", "first_order_age_days_median",
    "total_spending_mean", "average_return_rate_mean", "products_ordered_median", "avg_order_value_median",
)

LOST_MIN_SPAN = 180.0  # days: a segment silent for half of a span at least this long must carry a lapse word


@dataclass(frozen=True)
class DataFacts:
    """Facts about all customers (None: unknown)."""

    span_days: float | None = None  # days from the data's first to its last date (inclusive)
    typical_first_order_age_days: float | None = None  # median over customers of days since first order
    typical_gap_days: float | None = None  # median over repeat customers of days between their orders
    mean_spending: float | None = None  # everyone's mean total_spending (default: from the table)
    mean_return_rate: float | None = None  # everyone's mean average_return_rate (default: from the table)
    typical_order_value: float | None = None  # median over customers of avg_order_value


def finite_or_none(x) -> float | None:
    """x as a float, or None when it is not a finite number (missing, NaN, infinite or not a number)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _median(values) -> float | None:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if len(a) else None


def facts_from_customers(span_days: float | None = None, *, recency_days=None, first_order_age_days=None,
                         order_count=None, total_spending=None, average_return_rate=None,
                         avg_order_value=None) -> DataFacts:
    """DataFacts from per-customer arrays (any may be None).

    first_order_age_days = days from the customer's first order to the end of the data, counted as
    recency_days is (recency_days + tenure_days). The typical gap between orders is the median over
    customers with at least 2 orders of (first_order_age_days - recency_days) / (order_count - 1).
    span_days defaults to the largest first_order_age_days."""
    gap = None
    if recency_days is not None and first_order_age_days is not None and order_count is not None:
        orders = np.asarray(order_count, dtype=np.float64)
        repeat = orders >= 2
        if repeat.any():
            between = np.asarray(first_order_age_days, dtype=np.float64)[repeat] - np.asarray(
                recency_days, dtype=np.float64)[repeat]
            gap = _median(between / (orders[repeat] - 1))
    if span_days is None and first_order_age_days is not None and len(first_order_age_days):
        span_days = float(np.max(first_order_age_days))

    def mean(a):
        return None if a is None or not len(a) else finite_or_none(np.mean(np.asarray(a, dtype=np.float64)))

    return DataFacts(
        span_days=finite_or_none(span_days),
        typical_first_order_age_days=None if first_order_age_days is None else _median(first_order_age_days),
        typical_gap_days=gap,
        mean_spending=mean(total_spending),
        mean_return_rate=mean(average_return_rate),
        typical_order_value=None if avg_order_value is None else _median(avg_order_value),
    )


def segment_statistics(columns: dict[str, np.ndarray], labels, k: int) -> pd.DataFrame:
    """The table name_segments reads, from per-customer arrays: segment, customers, and for each
    column its per-segment mean and median (and `revenue` = sum of total_spending). Empty segments
    have customers 0 and NaN statistics (no word is claimed for them)."""
    labels = np.asarray(labels, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])
    out: dict[str, object] = {"segment": np.arange(k), "customers": np.diff(bounds)}
    for name, values in columns.items():
        ordered = np.asarray(values, dtype=np.float64)[order]
        parts = [ordered[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        out[f"{name}_mean"] = [float(p.mean()) if len(p) else np.nan for p in parts]
        out[f"{name}_median"] = [float(np.median(p)) if len(p) else np.nan for p in parts]
        if name == "total_spending":
            out["revenue"] = [float(p.sum()) for p in parts]
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------- the evidence


@dataclass
class Evidence:
    """One segment's numbers and the data's facts, as the rules read them."""

    segment: int
    stats: dict[str, float | None]
    facts: DataFacts
    spending: dict[int, float]  # mean spending of every non-empty segment with one
    everyone_spending: float | None
    everyone_returns: float | None

    def get(self, column: str) -> float | None:
        return self.stats.get(column)


def _evidence(table: pd.DataFrame, facts: DataFacts, segment: int) -> Evidence:
    rows = _rows(table)
    if segment not in rows:
        raise ValueError(f"no segment {segment} in the statistics table")
    spending = {s: v for s, r in rows.items() if (r.get("customers") or 0) > 0
                and (v := r.get("total_spending_mean")) is not None}
    weights = {s: r.get("customers") or 0 for s, r in rows.items()}

    def weighted(column):
        pairs = [(weights[s], r[column]) for s, r in rows.items() if weights[s] > 0 and r.get(column) is not None]
        total = sum(w for w, _ in pairs)
        return sum(w * v for w, v in pairs) / total if total > 0 else None

    everyone_spending = facts.mean_spending if facts.mean_spending is not None else weighted("total_spending_mean")
    everyone_returns = facts.mean_return_rate if facts.mean_return_rate is not None \
        else weighted("average_return_rate_mean")
    return Evidence(segment, rows[segment], facts, spending, finite_or_none(everyone_spending),
                    finite_or_none(everyone_returns))


def _rows(table: pd.DataFrame) -> dict[int, dict[str, float | None]]:
    segments = table["segment"].tolist() if "segment" in table else list(range(len(table)))
    rows = {}
    for i, s in enumerate(segments):
        rows[int(s)] = {c: finite_or_none(table[c].iloc[i]) for c in table.columns if c != "segment"}
    return rows


# ---------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Outcome:
    ok: bool
    numbers: dict[str, float] = field(default_factory=dict)
    missing: str | None = None  # the statistic that is not known, when that is why it fails


@dataclass(frozen=True)
class WordRule:
    word: str
    group: str  # at most one word per group in a name
    rule: str  # for people (docs/naming.md)
    test: Callable[[Evidence], Outcome]


def _need(e: Evidence, *items: tuple[str, float | None]) -> tuple[dict[str, float], str | None]:
    numbers, missing = {}, None
    for name, value in items:
        if value is None:
            missing = missing or name
        else:
            numbers[name] = value
    return numbers, missing


def _lifecycle(e: Evidence):
    return _need(e, ("recency_days_median", e.get("recency_days_median")), ("span_days", e.facts.span_days))


def _new(e: Evidence) -> Outcome:
    n, missing = _need(e, ("first_order_age_days_median", e.get("first_order_age_days_median")),
                       ("recency_days_median", e.get("recency_days_median")), ("span_days", e.facts.span_days),
                       ("typical_first_order_age_days", e.facts.typical_first_order_age_days))
    if missing:
        return Outcome(False, n, missing)
    a, r, span, typical = (n["first_order_age_days_median"], n["recency_days_median"], n["span_days"],
                           n["typical_first_order_age_days"])
    return Outcome(a <= (span - 1) / 2 and a <= 0.8 * typical and r <= (span - 1) / 4, n)


def _recent(e: Evidence) -> Outcome:
    n, missing = _lifecycle(e)
    if missing:
        return Outcome(False, n, missing)
    return Outcome(n["recency_days_median"] <= (n["span_days"] - 1) / 4, n)


def _silence(test: Callable[[float, float, float | None], bool]):
    """A lapse rule: `test(r, S, gap)` on the segment's median recency r, the span S and the typical gap
    between orders (None when not known; quoted among the numbers when known)."""
    def rule(e: Evidence) -> Outcome:
        n, missing = _lifecycle(e)
        if missing:
            return Outcome(False, n, missing)
        gap = e.facts.typical_gap_days
        if gap is not None:
            n["typical_gap_days"] = gap
        return Outcome(test(n["recency_days_median"], n["span_days"], gap), n)
    return rule


_at_risk = _silence(lambda r, span, gap: r >= span / 5 + 1
                    and r >= min(gap if gap is not None else 0.0, (span - 1) / 2))


def _lapsed(e: Evidence) -> Outcome:
    base = _at_risk(e)
    if base.missing:
        return base
    return Outcome(base.ok and base.numbers["recency_days_median"] >= base.numbers["span_days"] / 3 + 1, base.numbers)


_lost = _silence(lambda r, span, gap: span >= LOST_MIN_SPAN and r >= span / 2 + 1 and (gap is None or r >= 2 * gap))


def _statistic(column: str, test: Callable[[float], bool]):
    """The rule 'the segment's `column` meets `test`' (fails, saying so, when the column is not known)."""
    def rule(e: Evidence) -> Outcome:
        n, missing = _need(e, (column, e.get(column)))
        return Outcome(False, n, missing) if missing else Outcome(test(n[column]), n)
    return rule


def _spending(e: Evidence):
    n, missing = _need(e, ("total_spending_mean", e.get("total_spending_mean")),
                       ("everyone_mean_spending", e.everyone_spending))
    if not missing and len(e.spending) < 2:
        missing = "another segment's total_spending_mean"
    if missing:
        return n, missing, False, False
    mine = n["total_spending_mean"]
    n["top_segment_mean_spending"] = max(e.spending.values())
    n["bottom_segment_mean_spending"] = min(e.spending.values())
    return n, None, mine >= n["top_segment_mean_spending"], mine <= n["bottom_segment_mean_spending"]


def _high_value(e: Evidence) -> Outcome:
    n, missing, top, _ = _spending(e)
    if missing:
        return Outcome(False, n, missing)
    mine, everyone = n["total_spending_mean"], n["everyone_mean_spending"]
    return Outcome((top and mine > everyone) or (everyone > 0 and mine >= 2 * everyone), n)


def _low_value(e: Evidence) -> Outcome:
    n, missing, top, bottom = _spending(e)
    if missing:
        return Outcome(False, n, missing)
    mine, everyone = n["total_spending_mean"], n["everyone_mean_spending"]
    return Outcome(not top and mine < everyone and (bottom or (everyone > 0 and mine <= everyone / 2)), n)


def _mid_value(e: Evidence) -> Outcome:
    n, missing, top, bottom = _spending(e)
    if missing:
        return Outcome(False, n, missing)
    mine, everyone = n["total_spending_mean"], n["everyone_mean_spending"]
    return Outcome(not top and not bottom and everyone > 0 and everyone / 2 < mine < 2 * everyone, n)


def _returns(high: bool):
    def rule(e: Evidence) -> Outcome:
        n, missing = _need(e, ("average_return_rate_mean", e.get("average_return_rate_mean")),
                           ("everyone_mean_return_rate", e.everyone_returns))
        if missing:
            return Outcome(False, n, missing)
        rate = n["average_return_rate_mean"]
        return Outcome(rate >= max(0.10, 2 * n["everyone_mean_return_rate"]) if high else rate == 0, n)
    return rule


def _basket(big: bool):
    def rule(e: Evidence) -> Outcome:
        n, missing = _need(e, ("avg_order_value_median", e.get("avg_order_value_median")),
                           ("typical_order_value", e.facts.typical_order_value))
        if missing:
            return Outcome(False, n, missing)
        mine, typical = n["avg_order_value_median"], n["typical_order_value"]
        return Outcome(typical > 0 and (mine >= 1.5 * typical if big else mine <= typical * 2 / 3), n)
    return rule


# r = the segment's median days since the last order, a = median days since the first order,
# S = the data's span in days, gap = the typical days between a repeat customer's orders.
# The 1-day margins (S/5 + 1, (S-1)/2, ...) keep every rule true whether r, a and S count the
# last day or not (recency 1 or 0 for an order on the last day; span last - first or + 1).
WORD_RULES: tuple[WordRule, ...] = (
    WordRule("lost", "lifecycle", f"S >= {LOST_MIN_SPAN:.0f} days, r >= S/2 + 1 and r >= 2 x gap (when gap is known)",
             _lost),
    WordRule("lapsed", "lifecycle", "r >= S/3 + 1, r >= S/5 + 1 and r >= min(gap, (S-1)/2) (gap when known)", _lapsed),
    WordRule("new", "lifecycle", "a <= (S-1)/2, a <= 0.8 x the typical customer's first-order age, and r <= (S-1)/4",
             _new),
    WordRule("at-risk", "lifecycle", "r >= S/5 + 1 and r >= min(gap, (S-1)/2) (gap when known)", _at_risk),
    WordRule("recently active", "lifecycle", "r <= (S-1)/4", _recent),
    WordRule("high-value", "value", "mean spending above everyone's and the highest of the segments (of at least 2), "
             "or at least 2 x everyone's mean", _high_value),
    WordRule("mid-value", "value", "neither the highest nor the lowest segment by mean spending, and between 0.5 x and "
             "2 x everyone's mean (everyone's mean > 0)", _mid_value),
    WordRule("low-value", "value", "not the highest segment by mean spending, below everyone's mean, and the lowest "
             "segment or at most 0.5 x everyone's mean", _low_value),
    WordRule("loyal", "frequency", "median orders >= 3", _statistic("order_count_median", lambda o: o >= 3)),
    WordRule("repeat", "frequency", "median orders >= 2", _statistic("order_count_median", lambda o: o >= 2)),
    WordRule("one-time", "frequency", "median orders = 1", _statistic("order_count_median", lambda o: o <= 1)),
    WordRule("high returns", "returns", "mean return rate >= max(10%, 2 x everyone's mean return rate)",
             _returns(True)),
    WordRule("no returns", "returns", "mean return rate = 0 (nobody in the segment returned anything)",
             _returns(False)),
    WordRule("multi-product", "products", "median distinct products >= 2",
             _statistic("products_ordered_median", lambda p: p >= 2)),
    WordRule("single-product", "products", "median distinct products = 1",
             _statistic("products_ordered_median", lambda p: p <= 1)),
    WordRule("big-basket", "basket", "median order value >= 1.5 x the typical customer's", _basket(True)),
    WordRule("small-basket", "basket", "median order value <= 2/3 x the typical customer's", _basket(False)),
)
RULES = {rule.word: rule for rule in WORD_RULES}
LAPSE_WORDS = ("lost", "lapsed", "at-risk")
_ALIASES = {"at risk": "at-risk", "regulars": "repeat", "regular": "repeat", "one time": "one-time",
            "high value": "high-value", "mid value": "mid-value", "low value": "low-value",
            "multi product": "multi-product", "single product": "single-product", "big basket": "big-basket",
            "small basket": "small-basket", "high-returns": "high returns", "newcomers": "new", "lapsing": "at-risk",
            "recent": "recently active", "active": "recently active", "hibernating": "lapsed",
            "high-spending": "high-value", "low-spending": "low-value", "repeat buyers": "repeat"}


def must_carry_lapse(e: Evidence) -> bool:
    """Silent for at least half of a span of at least LOST_MIN_SPAN days (r >= (S-1)/2): the name needs a
    lapse word (lapsed always holds then)."""
    r, span = e.get("recency_days_median"), e.facts.span_days
    return r is not None and span is not None and span >= LOST_MIN_SPAN and r >= (span - 1) / 2


def check_name(words, table: pd.DataFrame, facts: DataFacts, segment: int) -> list[str]:
    """Every rule the words of one segment's name break (empty: the name is true).

    `words`: the vocabulary words used (WORD_RULES' words; aliases such as "regulars" or "at risk"
    are read as their rule's word, an unknown word is a violation); `table`: every segment's
    statistics; `segment`: whose name it is."""
    e = _evidence(table, facts, segment)
    problems, groups = [], {}
    for raw in words:
        word = _ALIASES.get(str(raw).lower(), str(raw).lower())
        rule = RULES.get(word)
        if rule is None:
            problems.append(f"{raw!r}: not a word with a rule")
            continue
        groups.setdefault(rule.group, []).append(word)
        outcome = rule.test(e)
        if not outcome.ok:
            why = f"unknown {outcome.missing}" if outcome.missing else _numbers(outcome.numbers)
            problems.append(f"{raw!r}: needs {rule.rule} ({why})")
    for group, used in groups.items():
        if len(set(used)) > 1:
            problems.append(f"more than one {group} word: {', '.join(used)}")
    if must_carry_lapse(e) and not any(w in LAPSE_WORDS for ws in groups.values() for w in ws):
        problems.append(f"no lapse word although the median last order is {_num(e.get('recency_days_median'))} "
                        f"days ago, at least half the {_num(e.facts.span_days)}-day span")
    return problems


def words_in_name(name: str) -> list[str]:
    """The vocabulary words (and aliases, as written) found in a name's text, in order."""
    vocabulary = sorted(set(RULES) | set(_ALIASES), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in vocabulary) + r")(?![\w-])", re.IGNORECASE)
    return [m.group(1).lower() for m in pattern.finditer(name)]


# ---------------------------------------------------------------------------- names


@dataclass(frozen=True)
class Claim:
    word: str
    rule: str
    numbers: dict[str, float]


@dataclass(frozen=True)
class SegmentName:
    segment: int
    name: str
    words: tuple[Claim, ...]
    strategy: str

    @property
    def word_list(self) -> list[str]:
        return [c.word for c in self.words]

    def evidence_text(self) -> str:
        """'word: rule [numbers]; ...' for a CSV cell."""
        return "; ".join(f"{c.word}: {c.rule} [{_numbers(c.numbers)}]" for c in self.words)


_PRIMARY = ("lifecycle", "value", "frequency", "returns")
_SECONDARY = ("products", "basket", "no returns")  # tried in this order to tell clashing names apart


def _supported(e: Evidence) -> dict[str, Claim]:
    """The chosen word of each group whose rule holds (the first that holds, in WORD_RULES order)."""
    chosen: dict[str, Claim] = {}
    for rule in WORD_RULES:
        if rule.group in chosen:
            continue
        outcome = rule.test(e)
        if outcome.ok:
            key = "no returns" if rule.word == "no returns" else rule.group
            if key not in chosen:
                chosen[key] = Claim(rule.word, rule.rule, outcome.numbers)
    return chosen


def _compose(segment: int, claims: list[Claim]) -> str:
    words = {RULES[c.word].group if c.word != "no returns" else "no returns": c.word for c in claims}
    if not words:
        return f"Customers of segment {segment}"
    noun = {"one-time": "one-time buyers", "repeat": "repeat buyers", "loyal": "loyal customers"}.get(
        words.get("frequency", ""), "customers")
    parts = [words.get(g) for g in ("lifecycle", "value", "products", "basket")]
    text = " ".join([p for p in parts if p] + [noun])
    tail = [w for w in (words.get("returns") if words.get("returns") == "high returns" else None,
                        words.get("no returns")) if w]
    if tail:
        text += " with " + " and ".join(tail)
    return text[0].upper() + text[1:]


def name_segments(table: pd.DataFrame, facts: DataFacts) -> list[SegmentName]:
    """A true, unique name (and a strategy) for every segment of the table, in its row order."""
    segments = [int(s) for s in (table["segment"] if "segment" in table else range(len(table)))]
    evidence = [_evidence(table, facts, s) for s in segments]
    supported = [_supported(e) for e in evidence]
    primary = [[sup[g] for g in _PRIMARY if g in sup] for sup in supported]
    secondary = [[sup[g] for g in _SECONDARY if g in sup] for sup in supported]
    used = [list(p) for p in primary]
    names = [_compose(s, u) for s, u in zip(segments, used)]
    for extra in range(1, len(_SECONDARY) + 1):
        clashing = _clashes(names)
        if not clashing:
            break
        for i in clashing:
            used[i] = primary[i] + secondary[i][:extra]
            names[i] = _compose(segments[i], used[i])
    for ids in _clash_groups(names):
        tags = _distinguishing(evidence, ids)
        for i, tag in zip(ids, tags):
            names[i] = f"{names[i]} ({tag})"
    customers = [e.get("customers") or 0.0 for e in evidence]
    revenues = [_revenue(e) for e in evidence]
    total_revenue = sum(r for r in revenues if r is not None) if any(r is not None for r in revenues) else None
    totals = (sum(customers), total_revenue)
    return [SegmentName(s, n, tuple(u), strategy_for(e, [c.word for c in u], totals))
            for s, n, u, e in zip(segments, names, used, evidence)]


def _clash_groups(names: list[str]) -> list[list[int]]:
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n.lower(), []).append(i)
    return [ids for ids in seen.values() if len(ids) > 1]


def _clashes(names: list[str]) -> list[int]:
    return sorted(i for ids in _clash_groups(names) for i in ids)


# statistics that can tell equal names apart, as the plain number they quote (no claim words)
_TAGS = (
    ("order_count_median", lambda v: f"median {_num(v)} orders"),
    ("recency_days_median", lambda v: f"median last order {_num(v)} days ago"),
    ("total_spending_mean", lambda v: f"mean spending {_num(v)}"),
    ("products_ordered_median", lambda v: f"median {_num(v)} products"),
    ("avg_order_value_median", lambda v: f"median order value {_num(v)}"),
)


def _distinguishing(evidence: list[Evidence], ids: list[int]) -> list[str]:
    """For segments with equal names: the first statistic whose quoted value differs for all of
    them, else the segment number."""
    for column, tag in _TAGS:
        values = [evidence[i].get(column) for i in ids]
        if all(v is not None for v in values):
            texts = [tag(v) for v in values]
            if len(set(texts)) == len(texts):
                return texts
    return [f"segment {evidence[i].segment}" for i in ids]


def names_frame(names: list[SegmentName]) -> pd.DataFrame:
    """segment, segment_name, name_words, name_evidence, strategy (one row per segment)."""
    return pd.DataFrame({
        "segment": [n.segment for n in names],
        "segment_name": [n.name for n in names],
        "name_words": [", ".join(n.word_list) for n in names],
        "name_evidence": [n.evidence_text() for n in names],
        "strategy": [n.strategy for n in names],
    })


# ---------------------------------------------------------------------------- strategies


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}"


def _numbers(numbers: dict[str, float]) -> str:
    return ", ".join(f"{k} = {_num(v)}" for k, v in numbers.items())


def _days(d: float) -> str:
    if d < 60:
        return f"{d:,.0f} days"
    months = d / 30.44
    return f"{d:,.0f} days ({months:,.0f} months)" if months < 24 else f"{d:,.0f} days ({d / 365.25:,.1f} years)"


def _revenue(e: Evidence) -> float | None:
    revenue = e.get("revenue")
    if revenue is None and e.get("customers") is not None and e.get("total_spending_mean") is not None:
        revenue = e.get("customers") * e.get("total_spending_mean")
    return revenue


def _shares(e: Evidence, total_customers: float | None, total_revenue: float | None
            ) -> tuple[float | None, float | None]:
    """The segment's share of the customers and of the revenue (None: not known, or no revenue)."""
    customers, revenue = e.get("customers"), _revenue(e)
    cust = customers / total_customers if customers is not None and total_customers else None
    rev = revenue / total_revenue if revenue is not None and total_revenue and total_revenue > 0 else None
    return cust, rev


def strategy_for(e: Evidence, words: list[str], totals: tuple[float | None, float | None]) -> str:
    """What to do, following the words' facts, with the number that motivates it.

    `totals`: (all segments' customers, all segments' revenue) for the shares quoted."""
    customers = e.get("customers")
    cust_share, rev_share = _shares(e, *totals)
    cust = f"{share_text(cust_share)} of customers" if cust_share is not None else None
    rev = f"{share_text(rev_share)} of revenue" if rev_share is not None else None
    r, o = e.get("recency_days_median"), e.get("order_count_median")
    a = e.get("first_order_age_days_median")
    last = f"median last order {_days(r)} ago" if r is not None else None
    w = set(words)
    lapse = w & set(LAPSE_WORDS)
    # (a larger share of the revenue than of the customers, in the whole percents the strategy quotes)
    valuable = "high-value" in w or (rev_share is not None and cust_share is not None
                                     and round(rev_share * 100) > round(cust_share * 100))
    if lapse and valuable:
        return (f"Win them back while they are worth it ({_join(rev, last)}): a personal offer and a reminder "
                "of what they bought, through the channel they last used.")
    if "lost" in w or "lapsed" in w:
        return (f"Reactivate cheaply, then let go ({_join(last, cust)}): one low-cost win-back message; stop "
                "spending on those who do not react.")
    if "high returns" in w:
        rate, everyone = e.get("average_return_rate_mean"), e.everyone_returns
        return (f"Reduce returns (they return {rate:.0%} of their units on average, everyone {everyone:.0%}): "
                "clearer size guides, photos and reviews on what they buy, and ask why they send items back.")
    if "at-risk" in w:
        return (f"Re-engage before they lapse ({_join(last, cust)}): a reminder and an offer on what they "
                "usually buy, timed to their usual gap between orders.")
    if "new" in w:
        first = f"first order a median {_days(a)} ago" if a is not None else None
        return (f"Turn the first order into a second ({_join(first, cust)}): a welcome series, a "
                "second-purchase incentive and recommendations based on their first order.")
    if "high-value" in w:
        return (f"VIP treatment ({_join(rev, cust)}): early access, exclusive offers and a loyalty programme; "
                "watch them closely, as losing one costs the most.")
    if "one-time" in w:
        return (f"Ask for a second order (median 1 order, {_join(last, cust)}): a follow-up offer and "
                "recommendations based on what they bought.")
    if "loyal" in w or "repeat" in w:
        return (f"Reward their loyalty (median {_num(o)} orders, {_join(cust, rev)}): a loyalty programme, "
                "thanks and offers that lift the basket.")
    quoted = _join(cust, rev, last) or f"{_num(customers)} customers"
    return f"Keep them engaged with personalised offers and recommendations ({quoted})."


def _join(*parts: str | None) -> str:
    return ", ".join(p for p in parts if p)


# ---------------------------------------------------------------------------- docs


def naming_rules_markdown() -> str:
    """The table of every word and its rule (docs/naming.md embeds it)."""
    lines = ["| word | kind | rule (the segment's own numbers) |", "|---|---|---|"]
    for rule in WORD_RULES:
        lines.append(f"| {rule.word} | {rule.group} | {rule.rule} |")
    return "\n".join(lines)
