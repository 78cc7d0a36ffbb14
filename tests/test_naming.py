"""Names as checked claims: hand-made segment tables, the issue's examples, and a property test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custseg.profiles import naming
from custseg.profiles.naming import DataFacts, check_name, name_segments, words_in_name

FACTS = DataFacts(span_days=546, typical_first_order_age_days=400, typical_gap_days=60, typical_order_value=90)


def table(**columns):
    k = len(next(iter(columns.values())))
    return pd.DataFrame({"segment": range(k), **columns})


def shop():
    return table(customers=[12118, 5000, 3000, 800], order_count_median=[1, 1, 3, 8],
                 recency_days_median=[499, 40, 339, 20], first_order_age_days_median=[499, 45, 500, 520],
                 total_spending_mean=[80, 60, 400, 3000], average_return_rate_mean=[0.02, 0.0, 0.05, 0.3],
                 products_ordered_median=[1, 1, 4, 12], avg_order_value_median=[80, 60, 120, 375])


def test_hand_made_shop():
    names = name_segments(shop(), FACTS)
    # everyone's mean spending = (12118*80 + 5000*60 + 3000*400 + 800*3000) / 20918 = 232.7
    assert [n.name for n in names] == [
        "Lost low-value one-time buyers",  # 499 >= 546/2 and >= 2 x 60; lowest? no: 60 < 80, but <= 0.5 x 232.7
        "New low-value one-time buyers",  # first order 45 <= 273 and <= 320, last 40 <= 136.5
        "Lost mid-value loyal customers",  # 339 >= 273 and >= 120; 400 within (116, 465)
        "Recently active high-value loyal customers with high returns",  # 30% >= max(10%, 2 x 3.3%)
    ]
    assert "16 months" in names[0].strategy and "58% of customers" in names[0].strategy
    assert names[2].strategy.startswith("Win them back") and "25% of revenue" in names[2].strategy
    for n in names:
        assert check_name(n.word_list, shop(), FACTS, n.segment) == []


def test_issue_example_lapsed_one_time_buyers_are_not_new():
    # 12,118 one-time buyers whose median first and last order was 499 days before the end of 546
    t = table(customers=[12118, 9000], order_count_median=[1, 2], recency_days_median=[499, 30],
              first_order_age_days_median=[499, 300], total_spending_mean=[50, 200])
    facts = DataFacts(span_days=546, typical_first_order_age_days=450)
    first = name_segments(t, facts)[0]
    assert set(first.word_list) & set(naming.LAPSE_WORDS)
    assert "new" not in first.word_list and "newcomers" not in first.name.lower()
    problems = check_name(["new"], t, facts, 0)
    assert any("'new'" in p for p in problems) and any("no lapse word" in p for p in problems)
    assert check_name(words_in_name("Newcomers"), t, facts, 0) != []


def test_new_needs_a_first_order_younger_than_the_typical_customers():
    t = table(customers=[10, 10], first_order_age_days_median=[100, 400], recency_days_median=[50, 300])
    young = DataFacts(span_days=546, typical_first_order_age_days=130)  # 100 <= 0.8 x 130 = 104
    old = DataFacts(span_days=546, typical_first_order_age_days=120)  # 100 > 96
    assert name_segments(t, young)[0].word_list == ["new"]
    assert "new" not in name_segments(t, old)[0].word_list
    assert check_name(["new"], t, old, 0) != [] and check_name(["new"], t, young, 0) == []


def test_regulars_need_two_orders():
    t = table(customers=[100, 100], order_count_median=[1, 2], total_spending_mean=[10, 20])
    assert any("regulars" in p for p in check_name(words_in_name("Mid-value regulars"), t, DataFacts(), 0))
    assert check_name(["regulars"], t, DataFacts(), 1) == []
    assert check_name(["repeat"], t, DataFacts(), 0) != []


def test_lapse_word_required_only_on_long_spans():
    t = table(customers=[10, 10], recency_days_median=[60, 5])
    assert check_name([], t, DataFacts(span_days=100), 0) == []  # 60 >= 50 but the span is < 180 days
    assert check_name([], t, DataFacts(span_days=200), 0) == []  # 60 < 100
    assert check_name([], t, DataFacts(span_days=120 * 1.5 + 0), 0) == []
    problems = check_name([], table(customers=[10], recency_days_median=[100]), DataFacts(span_days=180), 0)
    assert problems and "no lapse word" in problems[0]


def test_value_words_and_one_segment():
    one = table(customers=[50], total_spending_mean=[100.0], order_count_median=[1])
    assert name_segments(one, DataFacts())[0].name == "One-time buyers"
    assert check_name(["high-value"], one, DataFacts(), 0) != []  # the only segment is not "top"
    three = table(customers=[10, 10, 10], total_spending_mean=[10.0, 50.0, 90.0])
    words = [n.word_list for n in name_segments(three, DataFacts())]
    assert words == [["low-value"], ["mid-value"], ["high-value"]]
    assert check_name(["low-value"], three, DataFacts(), 2) != []
    assert check_name(["mid-value"], three, DataFacts(), 0) != []


def test_nothing_known_gives_plain_unique_names():
    t = table(customers=[5, 7, 0])
    assert [n.name for n in name_segments(t, DataFacts())] == [
        "Customers of segment 0", "Customers of segment 1", "Customers of segment 2"]


def test_clashing_names_are_told_apart_truthfully():
    t = table(customers=[10, 10, 10], order_count_median=[1, 1, 1], products_ordered_median=[1, 3, 3],
              average_return_rate_mean=[0.01, 0.0, 0.02])
    names = name_segments(t, DataFacts())
    assert [n.name for n in names] == [
        "Single-product one-time buyers", "Multi-product one-time buyers with no returns",
        "Multi-product one-time buyers"]
    for n in names:
        assert check_name(n.word_list, t, DataFacts(), n.segment) == []
    t["average_return_rate_mean"] = [0.01, 0.02, 0.02]  # no word tells 1 and 2 apart, and no number
    assert [n.name for n in name_segments(t, DataFacts())][1:] == [
        "Multi-product one-time buyers (segment 1)", "Multi-product one-time buyers (segment 2)"]
    t["recency_days_median"] = [5.0, 12.0, 12.4]  # a number that reads differently does
    assert [n.name for n in name_segments(t, DataFacts())][1:] == [
        "Multi-product one-time buyers (median last order 12 days ago)",
        "Multi-product one-time buyers (median last order 12.4 days ago)"]


def test_facts_and_statistics_hand_computed():
    recency = np.array([10.0, 100.0, 400.0, 20.0])
    first = np.array([110.0, 100.0, 500.0, 20.0])
    orders = np.array([3.0, 1.0, 2.0, 1.0])
    facts = naming.facts_from_customers(None, recency_days=recency, first_order_age_days=first, order_count=orders,
                                        total_spending=np.array([30.0, 10.0, 20.0, 40.0]))
    # gaps: (110 - 10) / 2 = 50 and (500 - 400) / 1 = 100 -> median 75
    assert facts.typical_gap_days == 75 and facts.span_days == 500
    assert facts.typical_first_order_age_days == 105 and facts.mean_spending == 25
    stats = naming.segment_statistics({"total_spending": [1.0, 2.0, 6.0]}, np.array([1, 1, 0]), 3)
    assert stats["customers"].tolist() == [1, 2, 0]
    assert stats["total_spending_median"].tolist()[:2] == [6.0, 1.5] and stats["revenue"].tolist() == [6, 3, 0]


def test_docs_embed_the_word_table():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "naming.md").read_text()
    assert naming.naming_rules_markdown() in doc
    for rule in naming.WORD_RULES:
        assert f"| {rule.word} |" in doc


def _optional(draw, strategy):
    return draw(st.one_of(st.none(), strategy))


@st.composite
def segment_tables(draw):
    k = draw(st.integers(1, 7))
    span = _optional(draw, st.floats(1, 2000))
    columns = {"customers": [draw(st.integers(0, 10_000)) for _ in range(k)]}
    def maybe(name, values):
        if draw(st.booleans()):
            columns[name] = [v if draw(st.integers(0, 9)) else np.nan for v in values]
    top = span or 1000.0
    maybe("recency_days_median", [draw(st.floats(1, top)) for _ in range(k)])
    if "recency_days_median" in columns:
        maybe("first_order_age_days_median",
              [r if r != r else min(top, r + draw(st.floats(0, top))) for r in columns["recency_days_median"]])
    maybe("order_count_median", [draw(st.sampled_from([1, 1.5, 2, 3, 7.5, 20])) for _ in range(k)])
    maybe("total_spending_mean", [draw(st.floats(-50, 5000)) for _ in range(k)])
    maybe("average_return_rate_mean", [draw(st.sampled_from([0.0, 0.01, 0.1, 0.3, 0.9])) for _ in range(k)])
    maybe("products_ordered_median", [draw(st.sampled_from([1, 1.5, 2, 5])) for _ in range(k)])
    maybe("avg_order_value_median", [draw(st.floats(0, 500)) for _ in range(k)])
    facts = DataFacts(span_days=span, typical_first_order_age_days=_optional(draw, st.floats(1, top)),
                      typical_gap_days=_optional(draw, st.floats(1, top)),
                      mean_spending=_optional(draw, st.floats(-10, 3000)),
                      mean_return_rate=_optional(draw, st.floats(0, 0.5)),
                      typical_order_value=_optional(draw, st.floats(0, 300)))
    return pd.DataFrame({"segment": range(k), **columns}), facts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segment_tables())
def test_property_names_are_true_and_unique(case):
    t, facts = case
    names = name_segments(t, facts)
    assert len({n.name.lower() for n in names}) == len(names)
    for n in names:
        assert check_name(n.word_list, t, facts, n.segment) == [], (n.name, n.evidence_text())
        # what a reader finds in the name's text is exactly what was checked
        found = [naming._ALIASES.get(w, w) for w in words_in_name(n.name)]
        assert sorted(found) == sorted(n.word_list), n.name
        assert n.strategy and all(ch not in n.strategy for ch in ("nan", "inf", "n/a"))


def issue_minimums(words, t, facts, segment):
    """The issue's minimum rules, written independently of naming.py, on the raw table: broken ones."""
    row = t.set_index("segment").loc[segment]
    get = lambda c: float(row[c]) if c in row and np.isfinite(row[c]) else None  # noqa: E731
    live = t[(t["customers"] > 0)]
    broken = []
    o = get("order_count_median")
    # a checker may count days without the last one: recency and first-order age 1 less, the span 1 less
    for day, span_day in ((0, 0), (1, 0), (0, 1), (1, 1)):
        r, a = get("recency_days_median"), get("first_order_age_days_median")
        r, a = (None if r is None else r - day), (None if a is None else a - day)
        span = None if facts.span_days is None else facts.span_days - span_day
        typical = facts.typical_first_order_age_days
        if "new" in words and not (a <= span / 2 and a <= 0.8 * (typical - day)):
            broken.append("new")
        if "recently active" in words and not r <= span / 4:
            broken.append("recent")
        if set(words) & {"lost", "lapsed", "at-risk"} and not r >= span / 5:
            broken.append("lapse")
        if span is not None and r is not None and span >= 180 and r >= span / 2 \
                and not set(words) & {"lost", "lapsed", "at-risk"}:
            broken.append("must lapse")
    if set(words) & {"loyal", "repeat"} and not o >= 2:
        broken.append("repeat")
    if "one-time" in words and o != 1:
        broken.append("one-time")
    if set(words) & {"high-value", "mid-value", "low-value"}:
        spend = live["total_spending_mean"].dropna()
        mine = get("total_spending_mean")
        weights = live.loc[spend.index, "customers"]
        everyone = facts.mean_spending if facts.mean_spending is not None else float((spend * weights).sum() / weights.sum())
        top, bottom = mine >= spend.max(), mine <= spend.min()
        if "high-value" in words and not (top or mine >= 2 * everyone):
            broken.append("high")
        if "low-value" in words and top:
            broken.append("low")
        if "mid-value" in words and (top or bottom):
            broken.append("mid")
    if "high returns" in words:
        rates = live["average_return_rate_mean"].dropna()
        weights = live.loc[rates.index, "customers"]
        everyone = facts.mean_return_rate if facts.mean_return_rate is not None else float((rates * weights).sum() / weights.sum())
        if not get("average_return_rate_mean") >= max(0.1, 2 * everyone):
            broken.append("returns")
    p = get("products_ordered_median")
    if "single-product" in words and p != 1:
        broken.append("single")
    if "multi-product" in words and not p >= 2:
        broken.append("multi")
    return broken


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segment_tables())
def test_property_names_meet_the_issue_minimums(case):
    t, facts = case
    for n in name_segments(t, facts):
        assert issue_minimums(n.word_list, t, facts, n.segment) == [], (n.name, n.evidence_text())
