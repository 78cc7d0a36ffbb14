"""Properties over random order-line tables (hypothesis), each checked against a plain Python
reading of the same lines: features are finite, rates lie in [0, 1], total spending is
preserved, segments are 0..k-1, and the result does not depend on row order or on how the
lines are split into files."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import custseg
from custseg.errors import CustsegError

COLUMNS = ["customer_id", "order_id", "order_date", "product", "quantity", "returned_quantity", "amount"]
FEATURES = ("total_spending,order_count,avg_order_value,average_return_rate,products_ordered,recency_days,"
            "tenure_days")
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
                database=None)
START = date(2024, 1, 1)

# Mostly good values, sometimes the dirt of real exports.
customers = st.sampled_from(["C1", "C2", "C3", "C4", "C5", "C6", "17850", " C7 ", ""])


def mostly(good, dirty):
    """Four good values for one dirty one."""
    return st.one_of(good, good, good, good, dirty)


dates = mostly(st.integers(0, 200).map(lambda d: (START + timedelta(days=d)).isoformat()),
               st.sampled_from(["2024-02-30", "not a date", ""]))
numbers = mostly(st.integers(-2_000, 50_000).map(lambda cents: f"{cents / 100:.2f}"),
                 st.sampled_from(["abc", "", "1e400", "-1e400", "1e19", "nan"]))
quantities = mostly(st.integers(-1, 6).map(str), st.sampled_from(["x", "2.5"]))
line = st.tuples(customers, st.integers(1, 12).map(lambda o: f"O{o}"), dates,
                 st.sampled_from(["shirt", "dress", "=HYPERLINK(\"x\")", "hat"]), quantities,
                 st.integers(0, 8).map(str), numbers)
tables = st.lists(line, min_size=6, max_size=60).map(lambda rows: pd.DataFrame(rows, columns=COLUMNS))


def _number(text: str) -> float | None:
    try:
        value = float(Decimal(text.strip()))
    except (InvalidOperation, ValueError):
        return None
    return value if math.isfinite(value) and abs(value) < 1e18 else None


def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def expected_spending(frame: pd.DataFrame) -> dict[str, Decimal]:
    """Per customer, the sum of the amounts of the lines the rules keep (docs/features.md),
    for customers with at least one purchase line."""
    spending: dict[str, Decimal] = {}
    buyers: set[str] = set()
    for row in frame.itertuples():
        customer = row.customer_id.strip()
        quantity, returned, amount = _number(row.quantity), _number(row.returned_quantity), _number(row.amount)
        if not customer or not _valid_date(row.order_date) or amount is None or quantity is None or returned is None:
            continue
        spending[customer] = spending.get(customer, Decimal(0)) + Decimal(row.amount.strip())
        if quantity > 0:
            buyers.add(customer)
    return {c: s for c, s in spending.items() if c in buyers}


def _segment(data, k=2):
    """The result, or the refusal's message."""
    try:
        return custseg.segment(data, k=k, features=FEATURES, n_init=2, schema="generic")
    except CustsegError as exc:
        return str(exc)


@settings(max_examples=30, **SETTINGS)
@given(tables, st.integers(2, 3))
def test_features_are_finite_rates_bounded_spending_preserved(frame, k):
    result = _segment(frame, k)
    expected = expected_spending(frame)
    event("refused" if isinstance(result, str) else "segmented")
    # More than 20% of the lines with a value that cannot be read (issue 18): refused, whatever is left.
    unreadable = isinstance(result, str) and "hold values that are not" in result
    if unreadable:  # checked independently: one column has > 20% non-empty values that are not read
        with_customer = frame[frame.customer_id.str.strip() != ""]
        shares = [sum(1 for v in with_customer[c] if v.strip() and not ok(v)) / len(frame)
                  for c, ok in (("order_date", _valid_date), ("amount", lambda v: _number(v) is not None),
                                ("quantity", lambda v: _number(v) is not None))]
        assert max(shares) > 0.2, (shares, result)
    if len(expected) < k:
        assert isinstance(result, str), "fewer customers than k must be refused"
        assert unreadable or any(w in result for w in ("customer(s)", "none of the", "does not hold dates",
                                                       "no purchase")), result
        return
    if isinstance(result, str):  # refused: customers that cannot be told apart
        assert unreadable or "the same" in result or "distinct customer profiles" in result, result
        return
    features = result.all_features.to_pandas().set_index("customer_id")
    assert np.isfinite(features.to_numpy(dtype=float)).all()
    assert features.average_return_rate.between(0, 1).all()
    assert set(features.index) == set(expected)
    for customer, total in expected.items():
        assert features.total_spending[customer] == pytest.approx(float(total), abs=1e-6)
    assert float(sum(expected.values())) == pytest.approx(features.total_spending.sum(), abs=1e-6)
    segments = result.segments
    assert segments.segment.between(0, result.k - 1).all() and result.k == k
    assert segments.segment.dtype.kind == "i"


@settings(max_examples=12, **SETTINGS)
@given(tables, st.randoms(use_true_random=False), st.integers(2, 4))
def test_row_order_and_file_split_do_not_matter(tmp_path_factory, frame, rnd, parts):
    base = _segment(frame)
    shuffled = frame.sample(frac=1.0, random_state=rnd.randrange(2**31)).reset_index(drop=True)
    again = _segment(shuffled)
    directory = tmp_path_factory.mktemp("split")
    cuts = sorted(rnd.sample(range(1, len(frame)), min(parts - 1, len(frame) - 1)))
    paths = []
    for i, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(shuffled)])):
        piece = shuffled.iloc[lo:hi]
        path = directory / f"part{i}.csv"
        piece.to_csv(path, index=False)
        paths.append(str(path))
    split = _segment(paths)
    event("refused" if isinstance(base, str) else "segmented")
    if isinstance(base, str):
        assert isinstance(again, str) and isinstance(split, str)
        return
    expected = base.segments_table
    assert again.segments_table.equals(expected)
    assert split.segments_table.equals(expected)
