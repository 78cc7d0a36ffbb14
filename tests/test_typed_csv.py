"""The typed CSV reading (typed_csv.py) gives what the text reading gives, and falls back to it."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from conftest import shared_file
from helpers import features_of

from custseg.sources.csv_dialect import CsvDialect, typed_columns
from custseg.sources.schemas import column_roles


def _text_only(monkeypatch):
    """The reading as it is without the typed path: every column as text."""
    monkeypatch.setattr("custseg.sources.read.column_roles", lambda *args: {})


def _both(path, monkeypatch, **options):
    typed = features_of(path, **options)
    with monkeypatch.context() as m:
        _text_only(m)
        text = features_of(path, **options)
    return typed, text


def _same(typed, text):
    (tf, tq, _), (xf, xq, xs) = typed, text
    assert not xs.typed_rejects
    pd.testing.assert_frame_equal(tf.sort_index(), xf.sort_index(), check_exact=True)
    assert tq == xq


def test_clean_shopify_file_is_read_typed_with_the_text_readings_results(small_shopify, monkeypatch):
    typed, text = _both(small_shopify, monkeypatch)
    source = typed[2]
    assert source.typed_rejects, "a clean Shopify export should take the typed path"
    assert source.lines.customer_id.type().is_integer() and source.lines.amount.type().is_floating()
    assert source.typed_dates
    _same(typed, text)


def test_real_online_retail_invoices_typed_equal_text(monkeypatch):
    path = shared_file("online_retail_invoices.csv")
    typed, text = _both(path, monkeypatch)
    _same(typed, text)


def _with_late_lines(src, dst, changes: dict[int, dict[str, str]]):
    """A copy of a CSV with some data rows (0-based, far beyond the 64 KB sample) changed."""
    def change(rows):
        for index, values in changes.items():
            rows[index].update(values)
    return _rewritten(src, dst, change)


def _rewritten(src, dst, change):
    """A copy of a CSV whose rows (dicts) `change` edits in place."""
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    change(rows)
    with open(dst, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return dst


def test_a_value_the_typed_reader_cannot_parse_falls_back_to_text(small_shopify, tmp_path, monkeypatch):
    # '$1,234.50' is a number to the text parser; 'C77' an id; 'abc' a bad amount (dropped, counted).
    path = _with_late_lines(small_shopify, tmp_path / "late.csv", {
        4000: {"total_sales": "$1,234.50"}, 4500: {"customer_id": "C77"}, 5000: {"total_sales": "abc"},
    })
    typed, text = _both(path, monkeypatch)
    frame, quality, source = typed
    assert not source.typed_rejects  # the pipeline read the file again as text
    _same(typed, text)
    rules = {r["rule"]: r for r in quality["rules"]}
    assert rules["malformed_line"]["rows_dropped"] == 0
    assert rules["invalid_amount"]["rows_dropped"] == 1
    assert rules["invalid_amount"]["first_lines"] == [{"file": str(path), "line": 5002}]
    assert "C77" in frame.index


def test_malformed_lines_are_counted_the_same_on_the_typed_path(small_shopify, tmp_path, monkeypatch):
    text = small_shopify.read_text().splitlines(keepends=True)
    text[3000] = text[3000].rstrip("\n") + ",extra\n"  # line 3001: one field too many
    path = tmp_path / "extra.csv"
    path.write_text("".join(text))
    typed, plain = _both(path, monkeypatch)
    assert typed[2].typed_rejects
    _same(typed, plain)
    malformed = next(r for r in typed[1]["rules"] if r["rule"] == "malformed_line")
    assert malformed["rows_dropped"] == 1 and malformed["first_lines"] == [{"file": str(path), "line": 3001}]


def test_dropped_lines_examples_are_searched_as_the_run_read_the_file(small_shopify, tmp_path, monkeypatch):
    """A file read typed is searched for its dropped lines' examples with the same typed reading: the
    line numbers are the text reading's, past a malformed line (which neither reading numbers as a row)
    and a quoted field that spans two lines."""
    from custseg.cleaning import dropped

    lines = small_shopify.read_text().splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    customer, name = header.index("customer_id"), header.index("product_title")

    def changed(line_number: int, column: int, value: str) -> str:
        fields = next(csv.reader([lines[line_number - 1]]))
        fields[column] = value
        return ",".join(f'"{f}"' if any(ch in f for ch in ',"\n') else f for f in fields) + "\n"
    lines[50] = lines[50].rstrip("\n") + ",extra\n"                          # line 51: malformed
    lines[80] = changed(81, name, "two\nlines")                               # line 81 spans 81-82
    lines[120] = changed(121, customer, "")                                    # lines 122 and 2502 (the
    lines[2500] = changed(2501, customer, "")                                  # file grew by one line)
    path = tmp_path / "dirty.csv"
    path.write_text("".join(lines))
    searched = []
    roles = dropped._typed_roles
    monkeypatch.setattr(dropped, "_typed_roles", lambda *a: searched.append(roles(*a)) or searched[-1])
    typed, text = _both(path, monkeypatch)
    assert typed[2].typed_rejects and searched[0], "the run and the search should read the file typed"
    _same(typed, text)
    missing = next(r for r in typed[1]["rules"] if r["rule"] == "missing_customer")
    assert missing["first_lines"] == [{"file": str(path), "line": 122}, {"file": str(path), "line": 2502}]


@pytest.mark.parametrize("values, role, expected", [
    (["1000000", "17", "9"], "key", "BIGINT"),
    (["007", "17"], "key", None),            # leading zeros: an id kept as text
    (["17850.0", "12"], "key", None),       # Excel's floats: as_text makes them '17850'
    (["-5", "7"], "key", None),
    (["12", "-3.5", "1e3", ".5", ""], "number", "DOUBLE"),
    (["1,234.50"], "number", None),
    (["$12"], "number", None),
    (["", ""], "number", None),             # nothing to judge by
])
def test_typed_columns_from_the_sample(tmp_path, values, role, expected):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n" + "".join(f'"{v}",x\n' for v in values))
    found = typed_columns(str(path), CsvDialect(",", "utf-8", ("a", "b")), ["a", "b"], {"a": role})
    assert found.types.get("a") == expected
    assert "b" not in found.types


def test_numbers_in_semicolon_files_stay_text(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a;b\n12;7\n3;8\n")
    found = typed_columns(str(path), CsvDialect(";", "utf-8", ("a", "b")), ["a", "b"], {"a": "number", "b": "key"})
    assert found.types == {"b": "BIGINT"}  # a comma may be the decimal mark there; ids are safe


@pytest.mark.parametrize("values, date_format, expected", [
    (["04/02/2019", "4/2/2019", "31/12/2019"], "dmy", "%d/%m/%Y"),
    (["02.04.2019"], "mdy", "%m.%d.%Y"),
    (["2019-02-04", "2019-2-4"], "iso", "%Y-%m-%d"),
    (["04/02/19"], "dmy", None),              # two-digit years: the text reading makes them 20xx
    (["04/02/2019", "04.02.2019"], "dmy", None),  # two separators
    # a time of one shape: a TIMESTAMP (the text reading keeps the date part, and so does the run)
    (["04/02/2019 10:30", "4/2/2019 8:05"], "dmy", ("TIMESTAMP", "%d/%m/%Y %H:%M")),
    (["12/1/2010 8:26"], "mdy", ("TIMESTAMP", "%m/%d/%Y %H:%M")),
    (["2019-02-04T10:30:00"], "iso", ("TIMESTAMP", "%Y-%m-%dT%H:%M:%S")),
    (["2019-02-04 10:30:00", "2019-2-4 0:00:59"], "iso", ("TIMESTAMP", "%Y-%m-%d %H:%M:%S")),
    (["04/02/2019 10:30", "04/02/2019 10:30:00"], "dmy", None),  # two shapes of time
    (["04/02/2019 10:30", "04/02/2019"], "dmy", None),           # some without a time
    (["04/02/19 10:30"], "dmy", None),
    (["04/02/2019 10:30 AM"], "dmy", None),
    (["2019-02-04T10:30:00+01:00"], "iso", None),                # a time zone: read as text
])
def test_typed_dates_from_the_sample(tmp_path, values, date_format, expected):
    path = tmp_path / "x.csv"
    path.write_text("d,b\n" + "".join(f"{v},x\n" for v in values))
    found = typed_columns(str(path), CsvDialect(",", "utf-8", ("d", "b")), ["d", "b"], {"d": "date"}, date_format)
    kind, pattern = expected if isinstance(expected, tuple) else ("DATE" if expected else None, expected)
    assert (found.dateformat, found.timestampformat) == ((pattern, None) if kind == "DATE" else (None, pattern))
    assert found.types.get("d") == kind


def _with_times(src, dst, shape: str = "{d}/{m}/{y} {h}:{mi:02d}"):
    """A copy of a Shopify CSV whose 'dd/mm/yyyy' days carry a time (one- and two-digit day, month
    and hour, as spreadsheets write them)."""
    def change(rows):
        for i, row in enumerate(rows):
            d, m, y = row["day"].split("/")
            row["day"] = shape.format(d=int(d), m=int(m), y=y, h=i % 24, mi=(i * 7) % 60, s=i % 60)
    return _rewritten(src, dst, change)


@pytest.mark.parametrize("shape", ["{d}/{m}/{y} {h}:{mi:02d}", "{y}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"])
def test_dates_with_times_are_read_typed_with_the_text_readings_results(small_shopify, tmp_path, monkeypatch, shape):
    path = _with_times(small_shopify, tmp_path / "times.csv", shape)
    typed, text = _both(path, monkeypatch)
    source = typed[2]
    assert source.typed_rejects, "dates with times of one shape should take the typed path"
    assert source.typed_dates
    _same(typed, text)
    assert typed[1]["date_range"] == text[1]["date_range"] and typed[1]["date_range"]


@pytest.mark.parametrize("late", ["4/2/2019", "4/2/19 10:30", "31/2/2019 10:30", "4/2/2019 25:30", "4/2/2019 10:30:00"])
def test_a_late_date_time_the_typed_reader_would_take_otherwise_falls_back(small_shopify, tmp_path, monkeypatch,
                                                                           late):
    timed = _with_times(small_shopify, tmp_path / "times.csv")
    path = _with_late_lines(timed, tmp_path / "late_time.csv", {4200: {"day": late}})
    typed, text = _both(path, monkeypatch)
    assert not typed[2].typed_rejects  # read again as text
    _same(typed, text)


@pytest.mark.parametrize("late", ["04/02/19", "04/02/2019 10:30", "31/02/2019", "2019-02-04"])
def test_a_late_date_the_typed_reader_would_take_otherwise_falls_back(small_shopify, tmp_path, monkeypatch, late):
    path = _with_late_lines(small_shopify, tmp_path / "late_date.csv", {4200: {"day": late}})
    typed, text = _both(path, monkeypatch)
    assert not typed[2].typed_rejects
    _same(typed, text)


def test_roles_follow_the_adapters():
    shopify = ["customer_id", "order_id", "day", "product_type", "total_sales", "ordered_item_quantity",
               "returned_item_quantity", "gross_sales"]
    assert column_roles("shopify", shopify, {}) == {
        "customer_id": "key", "order_id": "key", "ordered_item_quantity": "number",
        "returned_item_quantity": "number", "total_sales": "number", "gross_sales": "number", "day": "date"}
    retail = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
    assert column_roles("online-retail", retail, {}) == {"Quantity": "number", "UnitPrice": "number",
                                                          "InvoiceDate": "date"}
    assert column_roles("generic", ["Client", "Date", "Total"], {"customer_id": "Client", "amount": "Total"}) == {
        "Client": "key", "Date": "date", "Total": "number"}
