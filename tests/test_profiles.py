"""Names, strategies, descriptions and best sellers."""

import numpy as np
import pandas as pd
import pytest

import custseg
from custseg.profiles.describe import describe
from custseg.profiles.explain import checked_names
from custseg.profiles.naming import DataFacts

from conftest import TEST_DATA


def _table(**columns) -> pd.DataFrame:
    return pd.DataFrame({"segment": range(len(next(iter(columns.values())))), **columns})


FACTS = DataFacts(span_days=365.0, typical_first_order_age_days=200.0, typical_gap_days=40.0)


def test_names_are_distinct_and_deterministic():
    t = _table(customers=[10, 10, 10], total_spending_mean=[100.0, 100.0, 100.0], order_count_median=[1.0, 1.0, 1.0],
               recency_days_median=[30.0, 31.0, 32.0])
    names = checked_names(t, FACTS)
    assert names.segment_name.is_unique and names.equals(checked_names(t, FACTS))


def test_names_follow_the_segments_own_numbers():
    """A high-value segment silent for most of the year is a lapse to win back, never 'new' or
    'regulars'; a segment that first ordered lately is new; the strategy quotes the number."""
    t = _table(customers=[100, 300, 600], revenue=[60_000.0, 3_000.0, 12_000.0],
               total_spending_mean=[600.0, 10.0, 20.0], order_count_median=[4.0, 1.0, 1.0],
               recency_days_median=[250.0, 20.0, 200.0], first_order_age_days_median=[360.0, 25.0, 210.0])
    names = checked_names(t, FACTS)
    assert names.segment_name.tolist() == ["Lost high-value loyal customers", "New low-value one-time buyers",
                                           "Lost low-value one-time buyers"]
    assert names.strategy[0].startswith("Win them back") and "80% of revenue" in names.strategy[0]
    assert "8 months" in names.strategy[0]  # 250 days
    assert names.strategy[1].startswith("Turn the first order into a second")
    assert names.name_words[0] == "lost, high-value, loyal"


def test_a_false_name_is_a_bug_that_stops_the_run(monkeypatch):
    import custseg.profiles.explain as ex
    from custseg.profiles.naming import name_segments

    t = _table(customers=[10, 10], total_spending_mean=[100.0, 10.0], order_count_median=[1.0, 1.0],
               recency_days_median=[300.0, 10.0], first_order_age_days_median=[300.0, 12.0])

    def lying(table, facts):
        return [n.__class__(n.segment, "New customers" if n.segment == 0 else n.name, n.words, n.strategy)
                for n in name_segments(table, facts)]

    monkeypatch.setattr(ex, "name_segments", lying)
    with pytest.raises(RuntimeError, match="'new'"):
        ex.checked_names(t, FACTS)


def test_description_in_the_shops_units():
    row = pd.Series({"products_ordered_mean": 2.0, "products_ordered_median": 1, "products_ordered_min": 1,
                     "products_ordered_max": 13, "total_spending_mean": 600.4, "total_spending_median": 410,
                     "total_spending_min": 5, "total_spending_max": 9000, "average_return_rate_mean": 0.0,
                     "average_return_rate_median": 0.0, "average_return_rate_min": 0.0,
                     "average_return_rate_max": 0.0})
    text = describe(row, ["products_ordered", "total_spending", "average_return_rate"])
    assert text == "Ordered 1 to 13 products, spent 600.40 on average (median 410.00) and returned nothing."
    text = describe(row, ["total_spending"], currency="EUR")
    assert text == "Spent €600.40 on average (median €410.00)."


@pytest.fixture(scope="module")
def sample_result(shopify_sample):
    return custseg.segment(str(shopify_sample), k=4)


def test_profiles_of_the_sample(sample_result):
    p = sample_result.profiles
    seg = sample_result.segments
    assert len(p) == 4 and p.segment_name.is_unique
    assert p.customers.sum() == len(seg)
    assert p.customer_share.sum() == pytest.approx(1.0)
    assert p.revenue_share.sum() == pytest.approx(1.0)
    assert all(any(ch.isdigit() for ch in text) for text in p.strategy)  # each quotes its motivating number
    # Statistics equal a direct computation from the segments table.
    for row in p.itertuples():
        mine = seg[seg.segment == row.segment]
        assert row.customers == len(mine)
        assert row.total_spending_mean == pytest.approx(mine.total_spending.mean())
        assert row.total_spending_median == pytest.approx(mine.total_spending.median())
        assert row.products_ordered_max == mine.products_ordered.max()
        assert row.revenue == pytest.approx(mine.total_spending.sum())
    # The best-valued segment (recently active) gets the VIP strategy, quoting its share of revenue.
    top = p.sort_values("total_spending_mean").iloc[-1]
    assert top.strategy.startswith("VIP treatment") and f"{top.revenue_share:.0%} of revenue" in top.strategy


def test_best_sellers_equal_a_pandas_count(sample_result, shopify_sample):
    """Ranked by buying customers (ties: revenue, units, product), units and revenue beside."""
    lines = pd.read_csv(shopify_sample)
    lines = lines[(lines.ordered_item_quantity > 0)]
    lines["customer_id"] = lines.customer_id.astype(str)
    seg = sample_result.segments[["customer_id", "segment"]]
    joined = lines.merge(seg, on="customer_id")
    per_product = (joined.groupby(["segment", "product_type"])
                   .agg(customers=("customer_id", "nunique"), quantity=("ordered_item_quantity", "sum"),
                        revenue=("total_sales", "sum"))
                   .reset_index().sort_values(["segment", "customers", "revenue", "quantity", "product_type"],
                                              ascending=[True, False, False, False, True]))
    best = sample_result.best_sellers
    assert set(best["by"]) == {"customers"}
    for s in range(4):
        expected = per_product[per_product.segment == s].head(3)
        got = best[best.segment == s].sort_values("rank").head(3)
        assert got["product"].tolist() == expected.product_type.tolist()
        assert got.customers.tolist() == expected.customers.tolist()
        np.testing.assert_allclose(got.quantity, expected.quantity)
        np.testing.assert_allclose(got.revenue, expected.revenue, rtol=1e-9)


def test_no_products_means_no_best_sellers():
    result = custseg.segment(str(TEST_DATA / "generic_tiny.csv"), k=2)
    assert result.best_sellers.empty
    assert set(result.segments.columns) >= {"recency_days", "order_count", "total_spending"}


def test_local_segment_stats_equal_the_engines():
    """A table in memory is profiled by numpy; the engine's query (DuckDB, as under Spark) gives
    the same statistics, and both leave out a segment without customers."""
    import ibis

    from custseg.profiles.stats import local_segment_stats, segment_stats

    rng = np.random.default_rng(7)
    n, k = 20_001, 5
    labels = rng.choice([0, 1, 2, 4], size=n, p=[0.5, 0.3, 0.19, 0.01])  # segment 3 is empty
    features = {"total_spending": rng.lognormal(3, 1.5, n), "order_count": rng.integers(1, 9, n).astype(float)}
    local = local_segment_stats(features, labels, k)
    engine = segment_stats(ibis.memtable(pd.DataFrame({**features, "segment": labels})), list(features), customers=n)
    assert local["segment"].tolist() == engine["segment"].tolist() == [0, 1, 2, 4]
    assert local["customers"].tolist() == engine["customers"].tolist() == np.bincount(labels)[[0, 1, 2, 4]].tolist()
    for column in engine.columns.drop(["segment", "customers"]):
        np.testing.assert_allclose(local[column].to_numpy(), engine[column].to_numpy(), rtol=1e-12, err_msg=column)
    # and by hand for one cell: the median of an even count is the mean of the two middle values
    middle = np.sort(features["order_count"][labels == 1])
    assert local.loc[1, "order_count_median"] == np.median(middle)
