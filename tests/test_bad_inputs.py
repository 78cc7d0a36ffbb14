"""The bad-input corpus: every odd or broken export is read, read with lines dropped (counted,
with line numbers), or refused with one line naming the file and what to do (docs/formats.md,
"Bad inputs"). Never a traceback, never NaN or infinity in segments.csv, never a changed input."""

from __future__ import annotations

import json
import math
import random
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from corpus import HEADER, file_digest, order_rows, run_cli, write_csv, write_xlsx


def _run(tmp_path, capsys, monkeypatch, inputs, *options):
    """Run the CLI on inputs; check the promises every input shares; return (code, err, out dir)."""
    inputs = [Path(p) for p in inputs]
    before = {p: file_digest(p) for p in inputs}
    out = tmp_path / "out"
    code, _, err = run_cli(["run", *inputs, "--out", out, "--no-report", "-q", *options], capsys, monkeypatch)
    assert "Traceback" not in err and "internal error" not in err, err
    assert {p: file_digest(p) for p in inputs} == before, "an input file was modified"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, f"temporary output directories left behind: {leftovers}"
    if code == 0:
        segments = (out / "segments.csv").read_text()
        assert not any(word in segments.lower() for word in ("nan", "inf")), "NaN or infinity in segments.csv"
        frame = pd.read_csv(out / "segments.csv")
        numbers = frame.select_dtypes("number").to_numpy(dtype=float)
        assert numbers.size and all(math.isfinite(v) for v in numbers.ravel())
    else:
        assert not out.exists(), "a refused run left an output directory"
    return code, err, out


def _refused(code, err, *words):
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("custseg: error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def _quality(out: Path) -> dict:
    quality = json.loads((out / "data_quality.json").read_text())
    assert quality["rows_read"] == quality["rows_used"] + quality["rows_dropped"]
    assert quality["rows_dropped"] == sum(r["rows_dropped"] for r in quality["rules"])
    return quality


def _rule(quality: dict, name: str) -> dict:
    return next(r for r in quality["rules"] if r["rule"] == name)


# ---------------------------------------------------------------------------- refused


@pytest.mark.parametrize("name, content, words", [
    ("empty.csv", b"", ["empty.csv", "empty"]),
    ("blank.csv", b"\n \n\t\n", ["blank.csv", "empty"]),
    ("header_only.csv", (HEADER + "\n").encode(), ["header_only.csv", "no order lines"]),
    ("junk.csv", random.Random(1).randbytes(4000), ["junk.csv", "not a text"]),
    ("junk.bin", random.Random(2).randbytes(4000), ["junk.bin", "not a text"]),
    ("not_a_workbook.xlsx", (HEADER + "\nC1,2024-01-01,3\n").encode(), ["not_a_workbook.xlsx", ".xlsx"]),
])
def test_unreadable_files_are_refused(tmp_path, capsys, monkeypatch, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path])
    _refused(code, err, *words)


def test_a_zip_that_is_no_workbook_is_refused(tmp_path, capsys, monkeypatch):
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not a workbook")
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path])
    _refused(code, err, "archive.xlsx", "workbook")


def test_one_customer_is_refused(tmp_path, capsys, monkeypatch):
    path = write_csv(tmp_path / "one.csv", HEADER, [f"C1,2024-01-0{i + 1},{i + 3}" for i in range(5)])
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path])
    _refused(code, err, "one.csv", "only 1 customer")


def test_fewer_customers_than_k_is_refused(tmp_path, capsys, monkeypatch):
    rows = [f"C{i % 3},2024-01-0{i + 1},{(i + 1) * 7}" for i in range(9)]
    path = write_csv(tmp_path / "three.csv", HEADER, rows)
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path], "--k", "5")
    _refused(code, err, "three.csv", "--k")


def test_identical_customers_are_refused(tmp_path, capsys, monkeypatch):
    path = write_csv(tmp_path / "same.csv", HEADER, [f"C{i},2024-01-01,10" for i in range(30)])
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path])
    _refused(code, err, "same.csv", "same", "--features")


def test_all_spending_zero_alone_is_refused_but_other_features_segment(tmp_path, capsys, monkeypatch):
    rows = [f"C{i % 10},2024-01-0{1 + (i * 7) % 9},0" for i in range(40)]
    path = write_csv(tmp_path / "zero.csv", HEADER, rows)
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path], "--features", "total_spending")
    _refused(code, err, "zero.csv", "total_spending")
    code, err, out = _run(tmp_path, capsys, monkeypatch, [path])  # recency and orders still vary
    assert code == 0, err
    assert (pd.read_csv(out / "segments.csv").total_spending == 0).all()


def test_missing_columns_are_refused_with_the_columns_found(tmp_path, capsys, monkeypatch):
    path = write_csv(tmp_path / "nocol.csv", "client,when", ["a,2024-01-01", "b,2024-01-02"])
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path])
    _refused(code, err, "nocol.csv", "client", "--map")


def test_every_line_unusable_is_refused_with_the_rule_and_lines(tmp_path, capsys, monkeypatch):
    path = write_csv(tmp_path / "words.csv", HEADER, ["C1,2024-01-01,ten", "C2,2024-01-02,twelve", "C3,2024-01-03,-"])
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path])
    _refused(code, err, "words.csv", "invalid_amount", "lines 2, 3")


def test_workbook_sheets(tmp_path, capsys, monkeypatch):
    orders = [["customer_id", "order_date", "amount"]] + [r.split(",") for r in order_rows()]
    orders = [orders[0]] + [[c, d, float(a)] for c, d, a in orders[1:]]
    path = write_xlsx(tmp_path / "book.xlsx", {"Notes": [["exported by", "shop"]], "Orders": orders})
    # The first sheet has no order columns: refused, naming the sheets.
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path])
    _refused(code, err, "book.xlsx", "--sheet", "Orders")
    code, err, _ = _run(tmp_path, capsys, monkeypatch, [path], "--sheet", "Returns")
    _refused(code, err, "book.xlsx", "Returns", "Notes, Orders")
    for sheet in ("Orders", "1"):
        code, err, out = _run(tmp_path, capsys, monkeypatch, [path], "--sheet", sheet, "--force")
        assert code == 0, err
        assert len(pd.read_csv(out / "segments.csv")) == 20


# ---------------------------------------------------------------------------- read as they are


def _segments_bytes(tmp_path, capsys, monkeypatch, path, *options) -> bytes:
    code, err, out = _run(tmp_path, capsys, monkeypatch, [path], "--force", *options)
    assert code == 0, err
    return (out / "segments.csv").read_bytes()


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters_give_the_same_segments_as_commas(tmp_path, capsys, monkeypatch, sep):
    comma = write_csv(tmp_path / "comma.csv", HEADER, order_rows())
    other = write_csv(tmp_path / "other.csv", HEADER.replace(",", sep), order_rows(sep=sep))
    expected = _segments_bytes(tmp_path, capsys, monkeypatch, comma)
    assert _segments_bytes(tmp_path, capsys, monkeypatch, other) == expected


def test_semicolons_with_decimal_commas_are_read_in_quotes(tmp_path, capsys, monkeypatch):
    # A European export: ';' between fields; an amount "1.234,50" is not a number we can trust.
    rows = [r.replace(",", ";") for r in order_rows()]
    rows[3] = 'C003;2024-04-13;"1.234,50"'
    path = write_csv(tmp_path / "eu.csv", HEADER.replace(",", ";"), rows)
    code, err, out = _run(tmp_path, capsys, monkeypatch, [path])
    assert code == 0, err
    quality = _quality(out)
    assert quality["rows_read"] == 60


@pytest.mark.parametrize("encoding, product", [("latin-1", "Café crème"), ("cp1252", "“Smart” shirt – €5")])
def test_single_byte_encodings_are_decoded(tmp_path, capsys, monkeypatch, encoding, product):
    rows = [r + f",{product if i % 2 else 'Plain'}" for i, r in enumerate(order_rows())]
    path = write_csv(tmp_path / f"{encoding}.csv", HEADER + ",product", rows, encoding=encoding)
    code, err, out = _run(tmp_path, capsys, monkeypatch, [path])
    assert code == 0, err
    sellers = pd.read_csv(out / "best_sellers.csv")
    assert product in set(sellers["product_name"]), sellers["product_name"].unique()


def test_utf8_with_bom_is_read(tmp_path, capsys, monkeypatch):
    plain = write_csv(tmp_path / "plain.csv", HEADER, order_rows())
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert _segments_bytes(tmp_path, capsys, monkeypatch, bom) == _segments_bytes(tmp_path, capsys, monkeypatch, plain)


def test_duplicate_header_names_use_the_first_column(tmp_path, capsys, monkeypatch):
    rows = [r + ",1000" for r in order_rows()]
    path = write_csv(tmp_path / "dup.csv", HEADER + ",amount", rows)
    code, err, out = _run(tmp_path, capsys, monkeypatch, [path], "--features", "total_spending,order_count")
    assert code == 0, err
    spending = pd.read_csv(out / "segments.csv").set_index("customer_id").total_spending
    expected = pd.Series({r.split(",")[0]: 0.0 for r in order_rows()})
    for r in order_rows():
        c, _, amount = r.split(",")
        expected[c] += float(amount)
    assert spending.to_dict() == pytest.approx(expected.to_dict(), abs=1e-9)


def test_an_extreme_outlier_is_kept_exactly(tmp_path, capsys, monkeypatch):
    rows = order_rows() + ["C999,2024-09-19,99999999999.99"]
    path = write_csv(tmp_path / "outlier.csv", HEADER, rows)
    code, err, out = _run(tmp_path, capsys, monkeypatch, [path])
    assert code == 0, err
    segments = pd.read_csv(out / "segments.csv", dtype={"customer_id": str}).set_index("customer_id")
    assert segments.loc["C999", "total_spending"] == 99999999999.99
    # the outlier does not share its segment with anyone
    assert (segments.segment == segments.loc["C999", "segment"]).sum() == 1


def test_dates_in_day_first_month_first_and_dotted_formats(tmp_path, capsys, monkeypatch):
    iso = write_csv(tmp_path / "iso.csv", HEADER, order_rows())
    expected = _segments_bytes(tmp_path, capsys, monkeypatch, iso)

    def reformat(template):
        out = []
        for r in order_rows():
            c, d, a = r.split(",")
            y, m, day = d.split("-")
            out.append(f"{c},{template.format(y=y, m=m, d=day)},{a}")
        return out

    for name, template in [("dmy", "{d}/{m}/{y}"), ("mdy", "{m}/{d}/{y}"), ("dotted", "{d}.{m}.{y}"),
                           ("with_time", "{y}-{m}-{d} 13:45:00")]:
        path = write_csv(tmp_path / f"{name}.csv", HEADER, reformat(template))
        assert _segments_bytes(tmp_path, capsys, monkeypatch, path) == expected, name


# ---------------------------------------------------------------------------- read with lines dropped


def _dropped(tmp_path, capsys, monkeypatch, name, rows, header=HEADER, end="\n"):
    path = write_csv(tmp_path / name, header, rows, end=end)
    code, err, out = _run(tmp_path, capsys, monkeypatch, [path], "--force")
    assert code == 0, err
    return _quality(out), err


def test_text_in_a_number_column_drops_those_lines(tmp_path, capsys, monkeypatch):
    rows = order_rows()
    rows[4] = "C004,2024-05-14,abc"   # line 6
    rows[9] = "C009,2024-01-10,N/A"   # line 11
    rows[12] = 'C012,2024-04-13,"$1,234.50"'  # a currency sign and a thousands comma are read
    quality, err = _dropped(tmp_path, capsys, monkeypatch, "text.csv", rows)
    rule = _rule(quality, "invalid_amount")
    assert rule["rows_dropped"] == 2 and [p["line"] for p in rule["first_lines"]] == [6, 11]
    assert quality["rows_used"] == 58
    assert "dropped 2 of 60 lines" in err and "invalid_amount 2 (lines 6, 11)" in err


def test_numbers_that_overflow_to_infinity_are_dropped(tmp_path, capsys, monkeypatch):
    rows = order_rows()
    rows[1], rows[2], rows[3] = "C001,2024-02-11,1e400", "C002,2024-03-12,-1e400", "C003,2024-04-13,1e300"
    rows[5] = "C005,2024-06-15,inf"
    quality, err = _dropped(tmp_path, capsys, monkeypatch, "overflow.csv", rows)
    rule = _rule(quality, "invalid_amount")
    assert [p["line"] for p in rule["first_lines"]] == [3, 4, 5, 7] and rule["rows_dropped"] == 4


def test_invalid_dates_are_dropped(tmp_path, capsys, monkeypatch):
    rows = order_rows()
    rows[1], rows[2], rows[3], rows[4] = ("C001,2024-02-31,3", "C002,not a date,4", "C003,2024-13-01,5",
                                          "C004,,6")
    quality, _ = _dropped(tmp_path, capsys, monkeypatch, "dates.csv", rows)
    rule = _rule(quality, "invalid_date")
    assert rule["rows_dropped"] == 4 and [p["line"] for p in rule["first_lines"]] == [3, 4, 5, 6]


def test_placeholder_and_mistyped_years_are_dropped_not_read_as_centuries_old(tmp_path, capsys, monkeypatch):
    """'0201-03-11' is a date to every reading, and would make its customer's tenure 1800 years long."""
    rows = order_rows()
    rows[1], rows[2], rows[3], rows[4] = ("C001,0201-03-11,3", "C002,1900-01-01,4", "C003,1899-12-30,5",
                                          "C004,1970-01-01,6")  # the Unix epoch: a placeholder too
    rows[5] = "C005,1970-01-02,7"  # the first date kept
    quality, err = _dropped(tmp_path, capsys, monkeypatch, "years.csv", rows)
    rule = _rule(quality, "invalid_date")
    assert rule["rows_dropped"] == 4 and [p["line"] for p in rule["first_lines"]] == [3, 4, 5, 6]
    assert quality["date_range"][0] == "1970-01-02"
    assert "invalid_date 4 (lines 3, 4, 5, 6)" in err


def test_ragged_rows(tmp_path, capsys, monkeypatch):
    """More or fewer fields than the header: the line is malformed (its values may be shifted)."""
    rows = order_rows()
    rows[3] += ",extra,fields"              # line 5: more fields than the header
    rows[7] = rows[7].rsplit(",", 1)[0]     # line 9: a field short
    rows[10] = "C010"                       # line 12: two fields short
    rows[12] = "C012,2024-04-13,"           # line 14: all fields, the amount empty -> invalid_amount
    quality, err = _dropped(tmp_path, capsys, monkeypatch, "ragged.csv", rows)
    malformed = _rule(quality, "malformed_line")
    path = str(tmp_path / "ragged.csv")
    assert malformed["rows_dropped"] == 3
    assert malformed["first_lines"] == [{"file": path, "line": n} for n in (5, 9, 12)]
    assert _rule(quality, "invalid_amount")["first_lines"] == [{"file": path, "line": 14}]
    assert quality["rows_read"] == 60 and quality["rows_used"] == 56
    assert "malformed_line 3 (lines 5, 9, 12)" in err and "invalid_amount 1 (line 14)" in err


def test_quoted_line_breaks_are_read_and_counted_as_one_line(tmp_path, capsys, monkeypatch):
    rows = [r + ",plain" for r in order_rows()]
    rows[1] = rows[1].rsplit(",", 1)[0] + ',"two\nlines"'     # lines 3-4
    rows[2] = rows[2].rsplit(",", 1)[0] + ',"carriage\rreturn"'
    rows[5] = "C005,2024-06-15,oops,hat"                      # line 8 (one line break before it)
    quality, _ = _dropped(tmp_path, capsys, monkeypatch, "multiline.csv", rows, header=HEADER + ",product")
    assert quality["rows_read"] == 60
    assert [p["line"] for p in _rule(quality, "invalid_amount")["first_lines"]] == [8]


def test_a_truncated_last_line(tmp_path, capsys, monkeypatch):
    rows = order_rows() + ["C019,2024-0"]        # cut in the middle of the date, no newline
    quality, _ = _dropped(tmp_path, capsys, monkeypatch, "cut.csv", rows, end="")
    assert [p["line"] for p in _rule(quality, "malformed_line")["first_lines"]] == [62]
    assert quality["rows_used"] == 60
    rows = order_rows() + ["C019,2024-0,1"]      # all fields, but the date is cut
    quality, _ = _dropped(tmp_path, capsys, monkeypatch, "cut2.csv", rows, end="")
    assert [p["line"] for p in _rule(quality, "invalid_date")["first_lines"]] == [62]


def test_a_truncated_quoted_last_line(tmp_path, capsys, monkeypatch):
    rows = order_rows() + ['C019,2024-09-19,"12.']   # an unclosed quote at the end of the file
    quality, err = _dropped(tmp_path, capsys, monkeypatch, "cutquote.csv", rows, end="")
    assert _rule(quality, "malformed_line")["first_lines"][0]["line"] == 62
    assert quality["rows_used"] == 60


def test_blank_lines_do_not_shift_line_numbers(tmp_path, capsys, monkeypatch):
    rows = order_rows()
    rows[2] = "\n" + rows[2]                 # a blank line 4; the old line 4 is now line 5
    rows[6] = "C006,2024-07-16,oops"         # line 9 (one blank line before it)
    quality, _ = _dropped(tmp_path, capsys, monkeypatch, "blank_lines.csv", rows)
    assert [p["line"] for p in _rule(quality, "invalid_amount")["first_lines"]] == [9]


def test_lines_dropped_in_several_files_name_the_file(tmp_path, capsys, monkeypatch):
    rows = order_rows()
    a = write_csv(tmp_path / "a.csv", HEADER, rows[:30])
    bad = rows[30:]
    bad[4] = "C014,2024-05-14,zzz"           # line 6 of b.csv
    b = write_csv(tmp_path / "b.csv", HEADER, bad)
    code, err, out = _run(tmp_path, capsys, monkeypatch, [a, b])
    assert code == 0, err
    rule = _rule(_quality(out), "invalid_amount")
    assert rule["first_lines"] == [{"file": str(b), "line": 6}]
    assert f"{b} line 6" in err


def test_shopify_line_numbers_match_an_independent_scan(tmp_path, capsys, monkeypatch, small_shopify):
    """The first lines dropped by each rule, against a plain csv.reader scan of the file."""
    import csv

    code, err, out = _run(tmp_path, capsys, monkeypatch, [small_shopify])
    assert code == 0, err
    quality = _quality(out)
    expected = {"missing_customer": [], "no_ordered_units": []}
    with open(small_shopify, newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            line = reader.line_num
            if not row["customer_id"].strip():
                expected["missing_customer"].append(line)
            elif float(row["ordered_item_quantity"]) <= 0:
                expected["no_ordered_units"].append(line)
    for name, lines in expected.items():
        rule = _rule(quality, name)
        assert rule["rows_dropped"] == len(lines)
        if lines:
            assert [p["line"] for p in rule["first_lines"]] == lines[:5]
