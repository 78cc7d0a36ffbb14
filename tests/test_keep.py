"""--keep: columns constant per customer carried through; disagreeing or unknown columns refused."""

from __future__ import annotations

import ibis
import pytest

from custseg.errors import CustsegError
from custseg.sources.keep import kept_columns, parse_keep, with_kept


@pytest.fixture()
def con():
    return ibis.duckdb.connect()


def _lines(rows):
    cols = ["customer_id", "order_id", "amount", "email", "country"]
    return ibis.memtable({c: [r[i] for r in rows] for i, c in enumerate(cols)})


GOOD = [("1", "a", 10.0, "x@a.com", "FR"), ("1", "b", 5.0, "x@a.com", "FR"),
        ("2", "c", 7.0, None, "DE"), ("2", "d", 1.0, "y@b.com", "DE"),
        ("3", "e", 2.0, None, None)]


def test_constant_columns_one_row_per_customer(con):
    kept = kept_columns(_lines(GOOD), "email, country")
    got = con.to_pyarrow(kept.order_by("customer_id")).to_pylist()
    assert [(r["customer_id"], r["email"], r["country"]) for r in got] == [
        ("1", "x@a.com", "FR"), ("2", "y@b.com", "DE"), ("3", None, None)]


def test_nothing_kept():
    assert kept_columns(_lines(GOOD), None) is None and kept_columns(_lines(GOOD), " , ") is None


def test_not_constant_refused_naming_column_and_customer(con):
    rows = GOOD + [("2", "f", 3.0, "y@b.com", "AT"), ("4", "g", 1.0, "z@c.com", "IT"),
                   ("4", "h", 1.0, "w@c.com", "IT")]
    with pytest.raises(CustsegError, match=r"--keep country: customer 2 has more than one value \('AT' and 'DE'\)"):
        kept_columns(_lines(rows), "country")
    with pytest.raises(CustsegError, match=r"--keep email: customer 4 .*'w@c.com' and 'z@c.com'"):
        kept_columns(_lines(rows), ["email", "country"][:1])
    # both columns: the first customer in id order is named
    with pytest.raises(CustsegError, match="customer 2"):
        kept_columns(_lines(rows), "email,country")


def test_unknown_column_names_the_available_ones():
    with pytest.raises(CustsegError, match=r"--keep phone: no such column.*order_id, amount, email, country"):
        kept_columns(_lines(GOOD), "email,phone")


@pytest.mark.parametrize("name", ["customer_id", "segment"])
def test_reserved_refused(name):
    lines = _lines(GOOD).mutate(segment=ibis.literal(1))
    with pytest.raises(CustsegError, match=f"--keep {name}"):
        kept_columns(lines, name)


def test_numeric_column_and_join_onto_segments(con):
    lines = _lines(GOOD).mutate(age=ibis.ifelse(ibis._.customer_id == "1", 31, 45))
    kept = kept_columns(lines, ["age", "country"])
    segments = ibis.memtable({"customer_id": ["3", "1", "2", "9"], "segment": [0, 1, 1, 0]})
    got = con.to_pyarrow(with_kept(segments, kept).order_by("customer_id"))
    assert got.column_names == ["customer_id", "segment", "age", "country"]
    assert got.to_pylist() == [
        {"customer_id": "1", "segment": 1, "age": 31, "country": "FR"},
        {"customer_id": "2", "segment": 1, "age": 45, "country": "DE"},
        {"customer_id": "3", "segment": 0, "age": 45, "country": None},
        {"customer_id": "9", "segment": 0, "age": None, "country": None}]


def test_parse_keep():
    assert parse_keep("email,country,email, ") == ["email", "country"]
    assert parse_keep(["email,country", "city"]) == ["email", "country", "city"]
