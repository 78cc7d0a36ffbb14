"""Best sellers ranked by buying customers: a bulk buyer does not outrank what many customers buy."""

from __future__ import annotations

import ibis
import pytest

from custseg.profiles.best_sellers import best_sellers
from custseg.errors import CustsegError

# segment 0: customers 1-5; segment 1: customers 6-7
LINES = [  # customer, product, name, quantity, amount
    ("1", "CLIP", "Hair clip", 108, 54.0),     # one bulk buyer
    ("2", "MUG", "Mug", 1, 8.0), ("3", "MUG", "Mug", 1, 8.0), ("4", "MUG", "Mug", 1, 8.0),
    ("4", "MUG", "Mug", 1, 8.0),               # customer 4 buys mugs twice: still one customer
    ("5", "PEN", "Pen", 2, 3.0), ("2", "PEN", "Pen", 1, 1.5),
    ("3", "PEN", "Pen", -1, -1.5),             # a return: not a purchase
    ("6", "CLIP", "Hair clip", 1, 0.5), ("7", "HAT", "Hat", 1, 20.0),
    ("9", "MUG", "Mug", 5, 40.0),              # customer 9 has no segment
]


def _tables():
    cols = ["customer_id", "product", "product_name", "quantity", "amount"]
    lines = ibis.memtable({c: [r[i] for r in LINES] for i, c in enumerate(cols)})
    assignment = ibis.memtable({"customer_id": [str(i) for i in range(1, 8)], "segment": [0] * 5 + [1] * 2})
    return lines, assignment


def _rows(expr):
    return ibis.duckdb.connect().to_pyarrow(expr).to_pylist()


def test_ranked_by_customers_with_units_and_revenue_beside():
    rows = _rows(best_sellers(*_tables()))
    seg0 = [(r["rank"], r["product"], r["customers"], r["quantity"], r["revenue"], r["customer_share"])
            for r in rows if r["segment"] == 0]
    assert seg0 == [(1, "MUG", 3, 4.0, 32.0, 0.6), (2, "PEN", 2, 3.0, 4.5, 0.4), (3, "CLIP", 1, 108.0, 54.0, 0.2)]
    seg1 = [(r["rank"], r["product"], r["customers"]) for r in rows if r["segment"] == 1]
    assert seg1 == [(1, "HAT", 1), (2, "CLIP", 1)]  # a tie in customers: more revenue first
    assert {r["by"] for r in rows} == {"customers"}


def test_units_ranking_still_available_and_top():
    rows = _rows(best_sellers(*_tables(), top=1, by=("quantity", "customers")))
    got = sorted((r["segment"], r["by"], r["product"]) for r in rows)
    assert got == [(0, "customers", "MUG"), (0, "quantity", "CLIP"), (1, "customers", "HAT"),
                   (1, "quantity", "HAT")]


def test_lines_already_per_customer_give_the_same_numbers():
    lines, assignment = _tables()
    purchases = lines.filter(lines.quantity > 0)
    unique = purchases.group_by(["customer_id", "product"]).aggregate(
        product_name=purchases.product_name.max(), quantity=purchases.quantity.sum(), amount=purchases.amount.sum())
    assert _rows(best_sellers(unique, assignment, per_customer=True)) == _rows(best_sellers(lines, assignment))


@pytest.mark.parametrize("kwargs", [{"by": ("units",)}, {"by": ()}, {"top": 0}])
def test_bad_options_refused(kwargs):
    with pytest.raises(CustsegError):
        best_sellers(*_tables(), **kwargs)
