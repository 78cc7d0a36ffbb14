"""Names, strategies, descriptions and best sellers."""

import numpy as np
import pandas as pd
import pytest

import custseg
from custseg.profiles.describe import STRATEGIES, SegmentTraits, describe, name_segments

from conftest import TEST_DATA


def test_names_are_distinct_and_deterministic():
    t = [SegmentTraits({"total_spending": z, "order_count": 0.0}, {"total_spending": 1.0}) for z in (0.1, 0.1, 0.1)]
    names = name_segments(t)
    assert len(set(names)) == 3 and names == name_segments(t)


def test_names_follow_the_profile():
    t = [
        SegmentTraits({"total_spending": 1.5, "order_count": 1.2, "average_return_rate": -0.2},
                      {"average_return_rate": 0.0}),
        SegmentTraits({"total_spending": -1.2, "order_count": -0.8, "average_return_rate": 1.5},
                      {"average_return_rate": 0.6}),
        SegmentTraits({"total_spending": 0.1, "order_count": 0.0, "average_return_rate": -0.2},
                      {"average_return_rate": 0.0}),
    ]
    names = name_segments(t)
    assert names[0] == "High-value loyal"
    assert names[1] == "Newcomers with high returns"
    assert names[2].startswith("Mid-value")


def test_description_in_the_shops_units():
    row = pd.Series({"products_ordered_mean": 2.0, "products_ordered_median": 1, "products_ordered_min": 1,
                     "products_ordered_max": 13, "total_spending_mean": 600.4, "total_spending_median": 410,
                     "total_spending_min": 5, "total_spending_max": 9000, "average_return_rate_mean": 0.0,
                     "average_return_rate_median": 0.0, "average_return_rate_min": 0.0,
                     "average_return_rate_max": 0.0})
    text = describe(row, ["products_ordered", "total_spending", "average_return_rate"])
    assert text == "Ordered 1 to 13 products, spent 600 on average (median 410) and returned nothing."


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
    assert set(p.strategy) <= set(STRATEGIES.values())
    # Statistics equal a direct computation from the segments table.
    for row in p.itertuples():
        mine = seg[seg.segment == row.segment]
        assert row.customers == len(mine)
        assert row.total_spending_mean == pytest.approx(mine.total_spending.mean())
        assert row.total_spending_median == pytest.approx(mine.total_spending.median())
        assert row.products_ordered_max == mine.products_ordered.max()
        assert row.revenue == pytest.approx(mine.total_spending.sum())
    # The best-valued segment gets the VIP strategy.
    top = p.sort_values("total_spending_mean").iloc[-1]
    assert top.strategy == STRATEGIES["vip"]


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
