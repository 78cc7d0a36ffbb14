"""Real exports, real mistakes (issue 18): each class of odd input is read right (compared per
customer with an independent pandas computation or hand-computed values) or refused with one
line naming the file, column or line and what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from corpus import run_cli
from helpers import features_of


def _refused(code, err, *words):
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("custseg: error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def _spending(path, **options) -> dict[str, float]:
    frame, _, _ = features_of(path, **options)
    return {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()}


def _expected(table: pd.DataFrame) -> dict[str, float]:
    sums = table.groupby("customer_id")["amount"].sum()
    return {str(k): round(float(v), 6) for k, v in sums.items()}


def _table(n=40, customers=8, start=0) -> pd.DataFrame:
    rows = [{"customer_id": f"C{i % customers:02d}", "order_date": f"2024-0{1 + i % 9}-{10 + i % 9}",
             "amount": round(3.25 * (i % customers + 1) + i % 5, 2)} for i in range(start, start + n)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- 1. walking inputs


def test_recursive_glob_through_a_symlink_loop_ends_and_says_what_it_skipped(tmp_path, capsys, monkeypatch):
    shop = tmp_path / "shop"
    (shop / "2024").mkdir(parents=True)
    first, second = _table(20), _table(20, start=20)
    first.to_csv(shop / "a.csv", index=False)
    second.to_csv(shop / "2024" / "b.csv", index=False)
    os.symlink(".", shop / "loop")               # a -> .
    os.symlink("..", shop / "2024" / "up")       # back to the parent
    (shop / "README.md").write_text("# orders\nexported by hand, see notes\n")
    (shop / "notes.txt").write_text("not, a, csv\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(["run", "shop/**/*", "--out", out, "--no-report", "-q", "--k", "2"], capsys, monkeypatch)
    assert code == 0, err
    assert "symbolic link" in err and "README.md" in err, err
    spending = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    expected = _expected(pd.concat([first, second]))
    assert set(spending["customer_id"]) == set(expected)
    got = _spending(["shop/**/*.csv"])
    assert got == expected  # each file read once, not once per path through the loops


def test_a_directory_with_a_readme_reads_only_the_data(tmp_path, capsys, monkeypatch):
    shop = tmp_path / "shop"
    shop.mkdir()
    table = _table()
    table.to_csv(shop / "orders.csv", index=False)
    (shop / "README.md").write_text("these are the orders\n")
    assert _spending([str(shop)]) == _expected(table)


# ---------------------------------------------------------------------------- 5, 6. columns


def test_shopify_headers_in_another_case_are_still_shopify(tmp_path):
    source = Path(__file__).parent / "data" / "shopify_tiny.csv"
    lines = pd.read_csv(source, dtype=str, keep_default_na=False)
    odd = lines.rename(columns={"customer_id": "Customer_ID", "day": " Day ", "total_sales": "Total_Sales",
                                "product_type": "PRODUCT_TYPE"})
    path = tmp_path / "shop.csv"
    odd.to_csv(path, index=False)
    frame, _, src = features_of(path)
    reference, _, _ = features_of(source)
    assert src.schema == "shopify"
    pd.testing.assert_frame_equal(frame.sort_index(), reference.sort_index())


def test_a_canonical_column_mapped_twice_is_refused(tmp_path, capsys, monkeypatch):
    path = tmp_path / "orders.csv"
    pd.DataFrame({"Client": ["a", "b"], "Day": ["2024-01-01", "2024-01-02"], "TotalPrice": ["1.5", "2"],
                  "InvoiceNo": ["536365", "536366"]}).to_csv(path, index=False)
    code, _, err = run_cli(["run", path, "--out", tmp_path / "out", "--map", "amount=TotalPrice", "--map",
                            "amount=InvoiceNo", "--map", "customer_id=Client", "--map", "order_date=Day"],
                           capsys, monkeypatch)
    _refused(code, err, "amount", "TotalPrice", "InvoiceNo")
    assert not (tmp_path / "out").exists()


def test_one_column_feeding_two_unrelated_roles_is_warned_about(tmp_path, capsys, monkeypatch):
    table = _table()
    table["amount"] = range(1, len(table) + 1)
    path = tmp_path / "orders.csv"
    table.to_csv(path, index=False)
    code, _, err = run_cli(["run", path, "--out", tmp_path / "out", "--no-report", "-q", "--k", "2",
                            "--map", "customer_id=amount", "--map", "amount=amount"], capsys, monkeypatch)
    assert code == 0, err
    assert "warning" in err and "'amount' is used as amount and customer_id" in err, err


# ---------------------------------------------------------------------------- 2. numbers


def _write_amounts(path: Path, amounts: list[str], sep: str = ",", customers: int = 3) -> dict[str, float]:
    """Order lines with these amount cells (quoted); returns nothing: the caller knows the values."""
    lines = [sep.join(["customer_id", "order_date", "amount"])]
    for i, amount in enumerate(amounts):
        lines.append(sep.join([f"K{i % customers}", f"2024-01-{1 + i % 28:02d}", '"' + amount + '"']))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _by_customer(values: list[float], customers: int = 3) -> dict[str, float]:
    out: dict[str, float] = {}
    for i, v in enumerate(values):
        out[f"K{i % customers}"] = round(out.get(f"K{i % customers}", 0.0) + v, 6)
    return out


@pytest.mark.parametrize("sep, cells, values", [
    # decimal comma inside quotes in a comma-delimited file, currency before or after
    (",", ["€ 139,12", "77.183,60 €", "12,5", "1.000,00", "EUR 3,10", "0,99"],
     [139.12, 77183.60, 12.5, 1000.0, 3.10, 0.99]),
    # ';' file: '.' groups thousands when no value shows otherwise ("77.184" = 77184)
    (";", ["77.184", "1.000", "12", "3.500.000", "250"], [77184, 1000, 12, 3500000, 250]),
    # ';' file whose values show a decimal point: '.' is the decimal mark there
    (";", ["12.50", "3.5", "100.25", "7"], [12.5, 3.5, 100.25, 7]),
    # accounting negatives and every kind of grouping space
    (",", ["(12.50)", "1\u00a0234.56", "1\u202f000.5", "2 000.25", "$ (3.00)", "10.00-", "USD 1,234.50"],
     [-12.5, 1234.56, 1000.5, 2000.25, -3.0, -10.0, 1234.5]),
    (";", ["(12,50)", "1\u00a0234,56", "1\u202f000,5", "2 000,25", "-4,75 €"], [-12.5, 1234.56, 1000.5, 2000.25, -4.75]),
    # each value shows its own mark: both read, none guessed
    (";", ["3.50", "1.234,50", "8,00", "2.25"], [3.5, 1234.5, 8.0, 2.25]),
])
def test_number_formats_are_decided_per_column_from_the_values(tmp_path, sep, cells, values):
    path = _write_amounts(tmp_path / "orders.csv", cells, sep)
    assert _spending(path) == _by_customer(values)


def test_a_decimal_mark_shown_only_after_the_sample_decides_the_column(tmp_path, monkeypatch):
    import custseg.sources.number_formats as nf

    monkeypatch.setattr(nf, "SAMPLE_ROWS", 5)
    cells = ["1.000"] * 6 + ["2,5"]   # the sample (5 values) says nothing; a later value shows ','
    path = _write_amounts(tmp_path / "orders.csv", cells, ",")
    assert _spending(path) == _by_customer([1000.0] * 6 + [2.5])


def test_a_number_that_stays_ambiguous_is_refused_with_examples(tmp_path, capsys, monkeypatch):
    # '1.234,50' shows a decimal comma, '1,234.50' a decimal point: '77.184' could be 77184 or 77.184
    path = _write_amounts(tmp_path / "orders.csv", ["1.234,50", "1,234.50", "77.184", "5"], ",")
    code, _, err = run_cli(["run", path, "--out", tmp_path / "out"], capsys, monkeypatch)
    line = _refused(code, err, "orders.csv", "'amount'", "77.184", "1.234,50")
    assert "export the column in one format" in line


def test_a_column_read_by_convention_says_so(tmp_path, capsys, monkeypatch):
    path = _write_amounts(tmp_path / "orders.csv", ["1.234", "2.500", "3.125", "10"], ",")
    code, _, err = run_cli(["run", path, "--out", tmp_path / "out", "--no-report", "-q", "--k", "2"],
                           capsys, monkeypatch)
    assert code == 0, err
    assert "warning" in err and "decimal point" in err and "'1.234'" in err, err


# ---------------------------------------------------------------------------- 3. ids


def test_ids_with_leading_zeros_after_the_first_64_kb_stay_distinct(tmp_path):
    rows = []
    for i in range(6000):  # ~150 KB of plain integer ids first
        rows.append({"customer_id": str(100 + i % 50), "order_date": f"2024-02-{1 + i % 28:02d}",
                     "amount": f"{1 + i % 13}.25"})
    for i in range(60):   # then the same numbers with leading zeros: other customers
        rows.append({"customer_id": f"00{100 + i % 50}", "order_date": "2024-03-01", "amount": "1000.5"})
    table = pd.DataFrame(rows)
    path = tmp_path / "orders.csv"
    table.to_csv(path, index=False)
    assert path.stat().st_size > 1 << 16 and "00100" not in path.read_bytes()[: 1 << 16].decode()
    expected = pd.read_csv(path, dtype=str).assign(amount=lambda t: t.amount.astype(float))
    got = _spending(path)
    assert len(got) == 100
    assert got == _expected(expected)


# ---------------------------------------------------------------------------- 4. encodings


@pytest.mark.parametrize("encoding, name", [("latin-1", "Café crème"), ("cp1252", "“Smart” shirt – €5")])
def test_a_single_byte_file_whose_first_accent_comes_after_64_kb_is_read_whole(tmp_path, encoding, name):
    rows = []
    for i in range(5000):
        rows.append(f"C{i % 300},2024-01-{1 + i % 28:02d},{1 + i % 7}.50,Plain item")
    for i in range(600):  # accented products only from here on, for customers of their own
        rows.append(f"L{i % 250},2024-02-{1 + i % 28:02d},{2 + i % 5}.25,{name}")
    path = tmp_path / "orders.csv"
    path.write_bytes(("customer_id,order_date,amount,product\n" + "\n".join(rows) + "\n").encode(encoding))
    assert all(b < 0x80 for b in path.read_bytes()[: 1 << 16])
    frame, quality, _ = features_of(path)
    expected = pd.read_csv(path, encoding=encoding, dtype={"customer_id": str})
    assert {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()} == _expected(expected)
    assert quality["rows_read"] == quality["rows_used"] == len(rows)
    assert all(r["rows_dropped"] == 0 for r in quality["rules"])


# ---------------------------------------------------------------------------- 12. formulas


def test_segment_names_from_a_model_are_neutralised_in_every_csv_but_ids_stay_as_read(tmp_path, capsys, monkeypatch):
    import json

    table = _table(60, 12)
    table.loc[0:4, "customer_id"] = "=1+1"     # an id that looks like a formula stays exactly as read
    path = tmp_path / "orders.csv"
    table.to_csv(path, index=False)
    first = tmp_path / "first"
    code, _, err = run_cli(["run", path, "--out", first, "--no-report", "-q", "--k", "3"], capsys, monkeypatch)
    assert code == 0, err
    model = json.loads((first / "model.json").read_text())
    hostile = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "@SUM(A1)"]
    for segment, name in zip(model["segments"], hostile):
        segment["name"] = name
        segment["description"] = "-" + segment["description"]
    (tmp_path / "hostile.json").write_text(json.dumps(model))
    second = tmp_path / "second"
    code, _, err = run_cli(["run", path, "--model", tmp_path / "hostile.json", "--out", second, "--no-report", "-q"],
                           capsys, monkeypatch)
    assert code == 0, err
    segments = pd.read_csv(second / "segments.csv", dtype=str, keep_default_na=False)
    assert set(segments["segment_name"]) <= {"'" + n for n in hostile}, set(segments["segment_name"])
    assert set(segments["customer_id"]) == set(table["customer_id"])  # '=1+1' untouched
    for name in ("profiles.csv", "best_sellers.csv"):
        if (second / name).exists():
            text = pd.read_csv(second / name, dtype=str, keep_default_na=False)
            for column in text.columns:
                if column != "customer_id":
                    assert not text[column].str.match(r"^[=+\-@]").any(), (name, column)


# ---------------------------------------------------------------------------- 11. blank lines


def test_whitespace_only_lines_are_blank_lines_not_malformed(tmp_path, capsys, monkeypatch):
    table = _table(30, 6)
    rows = [",".join(map(str, r)) for r in table.itertuples(index=False)]
    rows.insert(5, "   ")
    rows.insert(12, "\t\t")
    rows.insert(20, " \t ")
    rows[24] = "C01,2024-01-01,not a number"  # a real problem, two lines later in the file
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_date,amount\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, _, err = run_cli(["run", path, "--out", out, "--no-report", "-q", "--k", "2"], capsys, monkeypatch)
    assert code == 0, err
    import json

    quality = json.loads((out / "data_quality.json").read_text())
    assert quality["rows_read"] == 30
    rules = {r["rule"]: r for r in quality["rules"]}
    assert rules["malformed_line"]["rows_dropped"] == 0
    assert rules["invalid_amount"]["rows_dropped"] == 1
    assert rules["invalid_amount"]["first_lines"] == [{"file": str(path), "line": 26}]
    assert "malformed" not in err


# ---------------------------------------------------------------------------- 8. long fields


def test_a_valid_5_mb_field_keeps_its_line(tmp_path):
    table = _table(30, 6)
    table["note"] = "short"
    table.loc[3, "note"] = "x" * (5 << 20)
    path = tmp_path / "orders.csv"
    table.to_csv(path, index=False)
    frame, quality, _ = features_of(path)
    assert quality["rows_read"] == quality["rows_used"] == 30
    assert {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()} == _expected(table)


# ---------------------------------------------------------------------------- 9, 10. line endings, formats


def _text(table: pd.DataFrame) -> list[str]:
    return [",".join(map(str, r)) for r in table.itertuples(index=False)]


@pytest.mark.parametrize("layout", ["header_lf_data_crlf", "random_mix", "cr_only", "blank_first_line",
                                    "blank_lines_first_crlf"])
def test_line_endings_and_leading_blank_lines_are_read(tmp_path, layout):
    import random

    table = _table(40, 8)
    header, rows = "customer_id,order_date,amount", _text(table)
    rng = random.Random(3)
    if layout == "header_lf_data_crlf":
        text = header + "\n" + "\r\n".join(rows) + "\r\n"
    elif layout == "random_mix":
        text = header + "\r\n" + "".join(r + rng.choice(["\n", "\r\n"]) for r in rows)
    elif layout == "cr_only":
        text = header + "\r" + "\r".join(rows) + "\r"
    elif layout == "blank_first_line":
        text = "\n" + header + "\n" + "\n".join(rows) + "\n"
    else:
        text = "\r\n  \r\n" + header + "\r\n" + "\r\n".join(rows) + "\r\n"
    path = tmp_path / "orders.csv"
    path.write_bytes(text.encode())
    expected = pd.read_csv(path, dtype={"customer_id": str}, skip_blank_lines=True)
    frame, quality, _ = features_of(path)
    assert quality["rows_read"] == quality["rows_used"] == 40
    assert {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()} == _expected(expected)


@pytest.mark.parametrize("kind", ["utf-16", "utf-16-le-no-bom", "gzip", "gzip-latin-1"])
def test_utf16_and_gzip_files_are_read(tmp_path, kind):
    import gzip

    table = _table(40, 8)
    table["product"] = ["Café" if i % 3 else "Thé vert" for i in range(len(table))]
    text = "customer_id,order_date,amount,product\n" + "\n".join(_text(table)) + "\n"
    if kind == "utf-16":
        path = tmp_path / "orders.csv"
        path.write_bytes(text.encode("utf-16"))
    elif kind == "utf-16-le-no-bom":
        path = tmp_path / "orders.csv"
        path.write_bytes(text.encode("utf-16-le"))
    else:
        path = tmp_path / "orders.csv.gz"
        path.write_bytes(gzip.compress(text.encode("latin-1" if kind.endswith("latin-1") else "utf-8")))
    frame, quality, _ = features_of(path)
    assert quality["rows_read"] == quality["rows_used"] == 40
    assert {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()} == _expected(table)


def test_a_zip_archive_is_named_as_such(tmp_path, capsys, monkeypatch):
    import zipfile

    path = tmp_path / "orders.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("orders.csv", "customer_id,order_date,amount\n" + "\n".join(_text(_table())) + "\n")
    code, _, err = run_cli(["run", path, "--out", tmp_path / "out"], capsys, monkeypatch)
    _refused(code, err, "orders.zip", "zip archive", "orders.csv", "unzip")


def test_data_that_is_only_cancellations_says_so(tmp_path, capsys, monkeypatch):
    path = tmp_path / "cancelled.csv"
    lines = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    lines += [f"C{536000 + i},85123A,WHITE HANGING,-{1 + i % 3},12/1/2010 8:26,2.55,{17850 + i % 4},United Kingdom"
              for i in range(20)]
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(["run", path, "--out", tmp_path / "out"], capsys, monkeypatch)
    _refused(code, err, "cancelled.csv", "cancellation", "20 lines")


# ---------------------------------------------------------------------------- 7. dates


def _dated(path: Path, dates: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({"customer_id": [f"C{i % 6}" for i in range(len(dates))], "order_date": dates,
                          "amount": [round(1.5 + i, 2) for i in range(len(dates))]})
    table.to_csv(path, index=False)
    return table


@pytest.mark.parametrize("dates, first, last", [
    # ISO and day-first slashed dates in one column: every value read
    ([f"2024-01-{1 + i % 28:02d}" if i % 2 else f"{13 + i % 15}/02/2024" for i in range(40)], "2024-01-02", "2024-02-27"),
    # Excel day numbers (40513 = 1 Dec 2010)
    ([str(40513 + i) for i in range(40)], "2010-12-01", "2011-01-09"),
    # month names
    ([f"{1 + i % 28} Dec 2010" if i % 2 else f"Dec {1 + i % 28}, 2010" for i in range(40)], "2010-12-01", "2010-12-28"),
    (["01-Dec-2010"] * 20 + ["15-Jan-2011"] * 20, "2010-12-01", "2011-01-15"),
])
def test_dates_in_several_formats_are_all_read(tmp_path, dates, first, last):
    table = _dated(tmp_path / "orders.csv", dates)
    frame, quality, _ = features_of(tmp_path / "orders.csv")
    assert quality["rows_read"] == quality["rows_used"] == len(dates)
    assert quality["date_range"] == [first, last]
    assert {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()} == _expected(table)


@pytest.mark.parametrize("dates, words", [
    ([f"0{1 + i % 9}/0{1 + i % 8}/2024" for i in range(40)], ["'order_date'", "--date-format"]),
    ([f"13/0{1 + i % 8}/2024" if i % 2 else f"0{1 + i % 8}/14/2024" for i in range(39)] + ["01/02/2024"],
     ["'order_date'", "day first", "month first", "01/02/2024"]),
])
def test_dates_that_stay_ambiguous_are_refused_with_examples(tmp_path, capsys, monkeypatch, dates, words):
    _dated(tmp_path / "orders.csv", dates)
    code, _, err = run_cli(["run", tmp_path / "orders.csv", "--out", tmp_path / "out"], capsys, monkeypatch)
    _refused(code, err, "orders.csv", *words)


def _with_bad(path: Path, bad_every: int, column: str, bad: str, guests_every: int = 0) -> pd.DataFrame:
    table = _table(100, 10)
    table[column] = table[column].astype(str)
    for i in range(0, len(table), bad_every):
        table.loc[i, column] = bad
    if guests_every:
        for i in range(1, len(table), guests_every):
            table.loc[i, "customer_id"] = ""
    table.to_csv(path, index=False)
    return table


@pytest.mark.parametrize("column, bad", [("amount", "n/a"), ("order_date", "soon")])
def test_more_than_a_fifth_unparsable_values_is_refused_with_examples(tmp_path, capsys, monkeypatch, column, bad):
    _with_bad(tmp_path / "orders.csv", 3, column, bad)   # 34 of 100 lines
    code, _, err = run_cli(["run", tmp_path / "orders.csv", "--out", tmp_path / "out"], capsys, monkeypatch)
    _refused(code, err, "orders.csv", repr(column), "34 of 100", repr(bad))


def test_a_few_unparsable_values_and_many_guest_lines_are_dropped_not_refused(tmp_path):
    table = _with_bad(tmp_path / "orders.csv", 10, "amount", "n/a", guests_every=3)  # 10% bad, 33% guests
    frame, quality, _ = features_of(tmp_path / "orders.csv")
    kept = table[(table.customer_id != "") & (table.amount != "n/a")].assign(amount=lambda t: t.amount.astype(float))
    assert {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()} == _expected(kept)


def test_line_endings_that_change_after_the_first_64_kb_are_read(tmp_path):
    table = _table(8000, 50)
    rows = _text(table)
    path = tmp_path / "orders.csv"
    path.write_bytes(("customer_id,order_date,amount\n" + "\n".join(rows[:5000]) + "\n" + "\r\n".join(rows[5000:])
                      + "\r\n").encode())
    assert b"\r" not in path.read_bytes()[: 1 << 16]
    frame, quality, _ = features_of(path)
    assert quality["rows_read"] == quality["rows_used"] == 8000
    assert {str(k): round(float(v), 6) for k, v in frame["total_spending"].items()} == _expected(table)
