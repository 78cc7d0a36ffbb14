"""Every feature and cleaning rule on tiny tables computed by hand, and the seed's three features
against an independent pandas implementation of the seed notebook."""

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_DATA
from helpers import features_of


def rule_counts(quality):
    return {r["rule"]: r["rows_dropped"] for r in quality["rules"]}


def test_shopify_features_by_hand():
    f, quality, _ = features_of(TEST_DATA / "shopify_tiny.csv")
    assert quality["rows_read"] == 8 and quality["rows_used"] == 6
    assert rule_counts(quality) == {"malformed_line": 0, "missing_customer": 1, "invalid_date": 0, "invalid_amount": 0,
                                    "invalid_quantity": 0, "no_ordered_units": 1}
    assert sorted(f.index) == ["101", "102", "103"]
    c = f.loc["101"]
    assert c.products_ordered == 2                       # Dresses, Tops
    assert c.average_return_rate == pytest.approx((1 / 3 + 0) / 2)  # order 1001: 1 of 3 units; 1002: none
    assert c.total_spending == pytest.approx(174)        # 120 + 0 + 54 (the return-only line is dropped)
    assert c.order_count == 2 and c.avg_order_value == pytest.approx(87)
    assert c.recency_days == 106                         # 2019-01-15 -> day after 2019-04-30
    assert c.tenure_days == 73                           # 2018-11-03 -> 2019-01-15
    assert c.first_order_age_days == 179                 # 2018-11-03 -> day after 2019-04-30
    assert f.loc["102"].tolist() == [1, 0, 288, 1, 288, 62, 0, 62]
    assert f.loc["103"].tolist() == [1, 1, 0, 1, 0, 1, 0, 1]


def test_online_retail_features_by_hand():
    f, quality, source = features_of(TEST_DATA / "online_retail_tiny.csv")
    assert source.return_rate_level == "customer"
    assert rule_counts(quality)["missing_customer"] == 1 and rule_counts(quality)["non_positive_price"] == 1
    assert quality["rows_used"] == 7
    assert sorted(f.index) == ["13047", "17850"]  # 99999 only cancelled: no purchase, not segmented
    c = f.loc["17850"]
    assert c.total_spending == pytest.approx(6 * 2.55 + 6 * 3.39 + 10 * 1.85)
    assert c.order_count == 2 and c.products_ordered == 3
    assert c.average_return_rate == pytest.approx(3 / 22)
    assert c.recency_days == 8 and c.tenure_days == 1    # last order 12/2, last date 12/9
    assert c.first_order_age_days == 9                   # first order 12/1
    assert f.loc["13047"].average_return_rate == 1.0    # 20 returned of 4 ordered: capped at 1
    assert f.loc["13047"].total_spending == pytest.approx(7.4)


def test_generic_rfm_by_hand():
    f, quality, _ = features_of(TEST_DATA / "generic_tiny.csv")
    assert quality["rows_used"] == 6
    assert f.loc["A", ["order_count", "total_spending", "avg_order_value", "recency_days"]].tolist() == \
        [2, 34.5, 17.25, 31]
    # The refund counts in spending but is no order.
    assert f.loc["B", ["order_count", "total_spending", "recency_days"]].tolist() == [1, 70, 51]
    assert f.loc["C", ["order_count", "total_spending", "recency_days", "tenure_days"]].tolist() == [1, 7, 1, 0]


def test_rules_count_invalid_values(tmp_path):
    path = tmp_path / "dirty.csv"
    path.write_text(
        "customer_id,order_date,amount\n"
        "a,2024-01-01,10\n"
        ",2024-01-02,5\n"           # missing customer
        "b,2024-02-30,5\n"          # no such date
        "b,yesterday,5\n"           # not a date
        "c,2024-01-03,ten\n"        # not a number
        "c,2024-01-03,1e400\n"      # overflows
        "d,2024-01-04,7\n"
        + "e,2024-01-05,3\n" * 8     # enough valid lines: more than 20% unreadable would be refused
    )
    f, quality, _ = features_of(path)
    counts = rule_counts(quality)
    assert counts["missing_customer"] == 1 and counts["invalid_date"] == 2 and counts["invalid_amount"] == 2
    assert quality["rows_read"] == 15 and quality["rows_used"] == 10 and quality["rows_dropped"] == 5
    assert sorted(f.index) == ["a", "d", "e"]


def seed_notebook_features(csv_path) -> pd.DataFrame:
    """The seed notebook's features, written independently with pandas."""
    df = pd.read_csv(csv_path)
    df = df[df.ordered_item_quantity > 0]
    df = df[df.customer_id.notna()]
    products = df.groupby("customer_id").product_type.nunique().rename("products_ordered")
    orders = df.groupby(["customer_id", "order_id"]).agg(
        ordered=("ordered_item_quantity", "sum"), returned=("returned_item_quantity", "sum"))
    orders["rate"] = -orders.returned / orders.ordered
    rate = orders.groupby("customer_id").rate.mean().rename("average_return_rate")
    spending = df.groupby("customer_id").total_sales.sum().rename("total_spending")
    out = pd.concat([products, rate, spending], axis=1)
    out.index = out.index.astype(str)
    return out


def test_seed_features_equal_the_seed_notebook(shopify_sample):
    ours, _, _ = features_of(shopify_sample)
    seed = seed_notebook_features(shopify_sample)
    assert sorted(ours.index) == sorted(seed.index)
    joined = seed.merge(ours, left_index=True, right_index=True, suffixes=("", "_ours"))
    for name in ("products_ordered", "average_return_rate", "total_spending"):
        np.testing.assert_allclose(joined[name + "_ours"], joined[name], rtol=0, atol=1e-9)


@pytest.mark.parametrize("data", ["sample", "online_retail_tiny.csv", "generic_tiny.csv"])
def test_a_stored_customer_table_gives_the_window_forms_features(data, shopify_sample, monkeypatch):
    """DuckDB stores the customer totals and joins the data's last date to them as a one-row
    aggregate (pipeline.fetch_customers); the other engines take it from a window over the customer
    table: every column, the lifecycle summary's too, is the same."""
    from custseg.engines.duckdb import DuckDBEngine
    from custseg.options import EngineOptions, RunOptions
    from custseg.pipeline import compute_features
    from custseg.engines import connect
    from custseg.runtime.stages import Stages

    path = str(shopify_sample if data == "sample" else TEST_DATA / data)

    def computed():
        engine = connect(EngineOptions())
        try:
            feats = compute_features(engine, [path], RunOptions(), Stages())
            return feats.table, feats.lifecycle_summary
        finally:
            engine.close()

    stored, stored_summary = computed()
    monkeypatch.setattr(DuckDBEngine, "stores_customers", False)
    window, window_summary = computed()
    assert stored.num_rows > 0 and "recency_days" in stored.column_names
    assert stored.equals(window)
    assert stored_summary is not None and stored_summary.equals(window_summary)


@pytest.mark.parametrize("ids", ["integers", "text"])
def test_a_customer_table_is_put_in_natural_order_as_the_engine_orders_it(ids):
    """features.in_natural_order (the table DuckDB stored, ordered in memory) against DuckDB's
    ORDER BY of features.natural_order, on a shuffled table with every column type it holds."""
    import datetime as dt

    import ibis
    import pyarrow as pa

    from custseg.features import in_natural_order, natural_order

    rng = np.random.default_rng(7)
    n = 5_000
    numbers = rng.permutation(np.arange(-50, n - 50)) * 7
    customer_id = pa.array(numbers, pa.int64()) if ids == "integers" else pa.array([f"c{v}" for v in numbers])
    table = pa.table({
        "customer_id": customer_id,
        "spend": pa.array(rng.random(n)),
        "orders": pa.array(rng.integers(1, 9, n), pa.int32()),
        "first_day": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 900, n)]),
        "maybe": pa.array([None if v % 3 == 0 else float(v) for v in numbers]),
        "note": pa.array([f"n{v}" for v in numbers]),
    })
    # in several pieces, as the engine hands a table over
    table = pa.Table.from_batches(table.to_batches(max_chunksize=1_000))
    expected = ibis.duckdb.connect().to_pyarrow(natural_order(ibis.memtable(table)))
    parts = dict(zip(table.column_names, table.columns))
    in_natural_order(parts)
    got = pa.Table.from_arrays(list(parts.values()), schema=table.schema)
    assert got.equals(expected)
    assert all(got.column(name).num_chunks == 1 for name in got.column_names)
    assert got.column("customer_id").to_pylist() != table.column("customer_id").to_pylist()  # it did reorder
