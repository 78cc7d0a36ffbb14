"""RFM scores and segments against hand-computed tables and a second, simple implementation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from custseg.profiles import rfm


def reference_score(values, higher_is_better=True):
    """Independent: pandas' min-rank, one customer at a time: 1 + floor(5 * (rank_min - 1) / n)."""
    s = pd.Series(values, dtype="float64")
    ranks = (s if higher_is_better else -s).rank(method="min")
    n = len(s)
    return np.array([1 + int(5 * (int(rk) - 1) / n + 1e-12) for rk in ranks], dtype=np.int8)


def reference_segment(r, f, m):
    """Independent reading of the documented table (docs/naming.md), written as a plain if-chain."""
    if r >= 4:
        if f >= 4 and m >= 4:
            return "Champions"
        if f >= 3:
            return "Loyal"
        if r == 5 and f == 1:
            return "New Customers"
        return "Potential Loyalist" if m >= 3 else "Promising"
    if r == 3:
        if f >= 3:
            return "Loyal"
        return "Need Attention" if m >= 3 else "About to Sleep"
    if f + m <= 5:
        return "Hibernating" if r == 2 else "Lost"
    if r == 1 and f >= 4 and m >= 4:
        return "Can't Lose Them"
    return "At Risk"


def test_hand_computed_scores():
    # ten distinct values: exact quintiles, two customers per score
    assert rfm.score(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency: fewer days is better
    assert rfm.score([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], higher_is_better=False).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    # heavy ties: 6 one-time buyers share score 1; two with 2 orders: 6 of 10 strictly below -> 4
    assert rfm.score([1, 1, 1, 1, 1, 1, 2, 2, 3, 4]).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    # recency ties: days 5, 5, 3, 1 -> strictly worse: 0, 0, 2, 3 of 4
    assert rfm.score([5, 5, 3, 1], higher_is_better=False).tolist() == [1, 1, 3, 4]
    # constant, single, empty
    assert rfm.score([7.0] * 5).tolist() == [1] * 5
    assert rfm.score([3.0]).tolist() == [1]
    assert rfm.score([]).tolist() == []
    # two equal groups: 1 and 3
    assert rfm.score([0, 0, 9, 9]).tolist() == [1, 1, 3, 3]
    # seven customers, no ties: 1 + floor(5 * (rank - 1) / 7)
    assert rfm.score([70, 10, 20, 30, 40, 50, 60]).tolist() == [5, 1, 1, 2, 3, 3, 4]


def test_every_small_table_of_ties_matches_reference():
    """Every table of up to 7 customers over 3 values, both directions: the quintile edges fall on
    ties, between ties and on single customers (the scores come from four order statistics)."""
    for n in range(1, 8):
        for values in itertools.product((0.0, 1.0, 2.5), repeat=n):
            for higher in (True, False):
                assert rfm.score(values, higher).tolist() == reference_score(values, higher).tolist(), (values, higher)


def test_non_finite_refused():
    with pytest.raises(ValueError):
        rfm.score([1.0, np.nan])
    with pytest.raises(ValueError):
        rfm.score([1.0, np.inf])


@pytest.mark.parametrize("seed", range(6))
def test_scores_match_reference_on_random_tied_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    recency = rng.integers(1, int(rng.integers(2, 60)), n).astype(float)
    orders = np.minimum(rng.geometric(0.6, n), 12).astype(float)  # mostly 1, heavily tied
    spending = np.round(rng.lognormal(3, 1.2, n), int(rng.integers(0, 2)))
    spending[rng.random(n) < 0.05] *= -1  # refunds
    s = rfm.rfm_scores(recency, orders, spending)
    np.testing.assert_array_equal(s.r, reference_score(recency, higher_is_better=False))
    np.testing.assert_array_equal(s.f, reference_score(orders))
    np.testing.assert_array_equal(s.m, reference_score(spending))
    table = rfm.rfm_table(recency, orders, spending)
    expected = [reference_segment(*c) for c in zip(s.r.tolist(), s.f.tolist(), s.m.tolist())]
    assert table["rfm_segment"].astype(str).tolist() == expected


def test_many_distinct_values_path_matches_reference():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=70_000), 3)  # > 65,536 distinct values would take the other path
    x = np.concatenate([x, rng.normal(size=70_000)])
    got = rfm.score(x)
    np.testing.assert_array_equal(got, reference_score(x))
    np.testing.assert_array_equal(np.bincount(got)[1:], np.bincount(reference_score(x))[1:])


def test_table_has_all_125_codes_once_and_every_segment():
    codes = list(itertools.product(range(1, 6), repeat=3))
    assert sorted(rfm.RFM_TABLE) == codes
    # each code meets exactly one rule (the rules are disjoint and cover everything)
    for code in codes:
        assert sum(rule.test(*code) for rule in rfm.RFM_RULES) == 1, code
    assert set(rfm.RFM_TABLE.values()) == set(rfm.RFM_SEGMENTS)
    assert len(rfm.RFM_SEGMENTS) == 11
    for code in codes:
        assert rfm.RFM_TABLE[code] == reference_segment(*code), code


def test_vectorised_segments_equal_table():
    codes = np.array(list(itertools.product(range(1, 6), repeat=3)))
    names = rfm.rfm_segments(codes[:, 0], codes[:, 1], codes[:, 2])
    assert list(names.astype(str)) == [rfm.RFM_TABLE[tuple(c)] for c in codes.tolist()]
    with pytest.raises(ValueError):
        rfm.rfm_segment_codes([0], [1], [1])


def test_composition_hand_computed():
    labels = np.array([0, 0, 0, 0, 2, 2])
    names = ["Champions", "Champions", "Lost", "At Risk", "Lost", "Lost"]
    codes = np.array([rfm.RFM_SEGMENTS.index(n) for n in names])
    comp = rfm.rfm_composition(labels, codes, 3)
    assert comp.shape == (3, 11)
    assert comp.loc[0, "Champions"] == 0.5 and comp.loc[0, "Lost"] == 0.25 and comp.loc[0, "At Risk"] == 0.25
    assert (comp.loc[1] == 0).all()  # empty segment: zeros, finite
    assert comp.loc[2, "Lost"] == 1.0
    assert np.isfinite(comp.to_numpy()).all()


def test_docs_embed_the_generated_table():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "naming.md").read_text()
    assert rfm.rfm_rules_markdown() in doc
