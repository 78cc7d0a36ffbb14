"""The lifecycle summary computed in the customer table's query equals the engine's own summary query.

On DuckDB the (customer, order) table the features are built from also gives each customer's order
count, first and last order day and repeat-order mean (features.LIFECYCLE_COLUMNS); elsewhere the
lifecycle step groups the lines a second time (profiles.backtest.lifecycle_summary: row numbers
over a window).  The two are independent implementations of one definition: every customer's
x, t_x, T, value_orders and mean_value must agree, on hand-made ties and on real exports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_DATA, shared_file
from custseg import pipeline
from custseg.engines import connect
from custseg.options import EngineOptions, RunOptions
from custseg.profiles.lifecycle import end_of, fetch_table, from_features, positions, summary_expression
from custseg.runtime.stages import Stages

# Ties the first-order value must break the same way: two orders on a customer's first day (the
# lower order id is the first, whatever the time of day), a return-only order (no purchase: not
# counted, its amount is), lines of one order on two days (the order's day is its earliest line's),
# a one-time buyer refunded in an order of its own (worth their net spend: 0).
TIES = """customer_id,order_id,order_date,quantity,amount
A,20,2024-01-05 10:00,1,100
A,11,2024-01-05 18:00,1,30
A,30,2024-02-01,1,50
B,5,2024-01-10,1,40
B,5,2024-01-12,1,60
B,6,2024-01-20,-1,-15
B,7,2024-03-01,2,80
C,9,2024-03-31,1,10
C,8,2024-03-31,1,20
D,1,2024-02-02,1,0
D,2,2024-02-02,1,-5
E,3,2024-01-01,3,12.5
F,40,2024-01-08,1,70
F,41,2024-01-09,-1,-70
"""

COLUMNS = ("x", "t_x", "T", "value_orders", "mean_value")


def _both(path: Path, **options) -> tuple[dict, dict]:
    """(in the customer table's query, by the separate summary query) as {column: values in customer order}."""
    engine = connect(EngineOptions())
    features = pipeline.compute_features(engine, [str(path)], RunOptions(**options), Stages())
    assert features.lifecycle_summary is not None, "DuckDB computes the lifecycle columns with the features"
    cutoff = pipeline.lifecycle_cutoff(features)
    summary, index = from_features(features.lifecycle_summary, cutoff)
    fast = {c: summary.column(c).to_numpy(zero_copy_only=False)[index] for c in COLUMNS}
    assert (index >= 0).all()
    slow_table = fetch_table(summary_expression(features.cleaned.lines, cutoff, with_spend=False), text_ids=False)
    slow_index = positions(slow_table, features.table.column("customer_id"))
    assert (slow_index >= 0).all(), "every customer with a purchase has a dated order"
    slow = {c: slow_table.column(c).to_numpy(zero_copy_only=False)[slow_index] for c in COLUMNS}
    return fast, slow


def _assert_equal(fast: dict, slow: dict) -> None:
    for column in ("x", "t_x", "T", "value_orders"):
        np.testing.assert_array_equal(fast[column].astype(np.int64), slow[column].astype(np.int64), err_msg=column)
    # money: exact decimal sums on both sides, one division: the same floats (predict reproduces a run's bytes)
    np.testing.assert_array_equal(fast["mean_value"], slow["mean_value"], err_msg="mean_value")


def test_ties_and_return_orders_by_hand(tmp_path):
    path = tmp_path / "ties.csv"
    path.write_text(TIES)
    fast, slow = _both(path)
    _assert_equal(fast, slow)
    # by hand (data ends 2024-03-31: T counts to 2024-04-01), customers in natural order A..F
    assert fast["x"].tolist() == [2, 1, 1, 1, 0, 0]
    assert fast["t_x"].tolist() == [27, 51, 0, 0, 0, 0]
    assert fast["T"].tolist() == [87, 82, 1, 59, 91, 84]
    # A: first = order 11 (same day, lower id): (100 + 50) / 2; B: order 5 (Jan 10 and 12) first,
    # order 6 only returns: (100 - 15 + 80 - 100) / 1; C: order 8 first: 10 / 1; D: order 1 first:
    # -5 / 1; E: one order, its own value; F: one order, refunded: 0
    np.testing.assert_allclose(fast["mean_value"], [75.0, 65.0, 10.0, -5.0, 12.5, 0.0])


@pytest.mark.parametrize("name", ["shopify_tiny.csv", "online_retail_tiny.csv", "generic_tiny.csv"])
def test_test_exports(name):
    _assert_equal(*_both(TEST_DATA / name))


def test_online_retail_invoices():
    _assert_equal(*_both(shared_file("online_retail_invoices.csv")))


def test_online_retail_sample_with_cancellation_invoices():
    """The UCI sample books cancellations as invoices of their own (negative quantities): 407 of its
    customers have one; neither implementation counts them as repeat purchases."""
    fast, slow = _both(shared_file("online_retail_sample_40k.xlsx"))
    _assert_equal(fast, slow)


def test_online_retail_with_a_holdout():
    """With --holdout the features (and the summary) stop at the cutoff, the summary's clock too."""
    fast, slow = _both(shared_file("online_retail_invoices.csv"), holdout="90d")
    _assert_equal(fast, slow)
