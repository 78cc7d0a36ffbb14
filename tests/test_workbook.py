"""segments.xlsx: read back with fastexcel (an independent reader) and from the sheet XML itself."""

from __future__ import annotations

import zipfile

import fastexcel
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from custseg.errors import CustsegError
from custseg.outputs.workbook import MAX_DATA_ROWS, run_sheets, write_workbook


def _segments() -> pa.Table:
    return pa.table({
        "customer_id": ["00123", "=1+1", "-5", "@home", "42"],
        "total_spending": [17.3, 0.0, 1e9, float("nan"), -2.5],
        "segment": pa.array([0, 1, 0, 1, 1], pa.int32()),
        "segment_name": pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1, 1], pa.int32()),
                                                       pa.array(["Loyal", "=HYPERLINK(\"x\")"])),
    })


def _read(path, sheet) -> list[dict]:
    return fastexcel.read_excel(str(path)).load_sheet(sheet).to_arrow().to_pylist()


def test_ids_stay_text_exactly_and_numbers_stay_numbers(tmp_path):
    path = write_workbook(tmp_path / "segments.xlsx", {"segments": _segments()})
    rows = _read(path, "segments")
    assert [r["customer_id"] for r in rows] == ["00123", "=1+1", "-5", "@home", "42"]
    assert [r["total_spending"] for r in rows] == [17.3, 0.0, 1e9, None, -2.5]  # NaN is a blank cell
    assert [r["segment"] for r in rows] == [0.0, 1.0, 0.0, 1.0, 1.0]
    # a text column other than the id that a spreadsheet would run gets the apostrophe
    assert [r["segment_name"] for r in rows] == ["Loyal", "'=HYPERLINK(\"x\")", "Loyal", "'=HYPERLINK(\"x\")",
                                                 "'=HYPERLINK(\"x\")"]
    info = {c.name: c.dtype for c in fastexcel.read_excel(str(path)).load_sheet("segments").available_columns()}
    assert info["customer_id"] == "string" and info["total_spending"] == "float"


def test_no_formula_and_ids_are_string_cells_in_the_xml(tmp_path):
    path = write_workbook(tmp_path / "w.xlsx", {"segments": _segments()})
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    assert '<c r="A2" t="inlineStr"><is><t>00123</t>' in xml
    assert '<c r="A3" t="inlineStr"><is><t>=1+1</t>' in xml
    assert '<c r="B2"><v>17.3</v>' in xml
    assert "#NUM" not in xml and "nan" not in xml.lower().replace("inlinestr", "")


def test_run_sheets_in_order_from_pandas(tmp_path):
    profiles = pd.DataFrame({"segment": [0, 1], "segment_name": ["A", "B"], "customers": [3, 2],
                             "customer_share": [0.6, 0.4]})
    sellers = pd.DataFrame({"segment": [0], "product": ["0042"], "customers": [2], "revenue": [9.5]})
    k_sel = pd.DataFrame({"k": np.arange(2, 5), "inertia": [3.0, 2.0, 1.5]})
    path = write_workbook(tmp_path / "s.xlsx", run_sheets(_segments(), profiles, sellers, k_sel))
    reader = fastexcel.read_excel(str(path))
    assert reader.sheet_names == ["segments", "profiles", "best sellers", "k selection"]
    assert _read(path, "best sellers") == [{"segment": 0.0, "product": "0042", "customers": 2.0, "revenue": 9.5}]
    assert _read(path, "k selection")[2] == {"k": 4.0, "inertia": 1.5}
    assert _read(path, "profiles")[1]["customer_share"] == 0.4


def test_too_many_rows_refused_before_writing(tmp_path):
    big = pa.table({"customer_id": pa.array(["1"] * (MAX_DATA_ROWS + 1))})
    target = tmp_path / "segments.xlsx"
    with pytest.raises(CustsegError, match="1,048,576 rows.*parquet"):
        write_workbook(target, {"profiles": pd.DataFrame({"a": [1]}), "segments": big})
    assert list(tmp_path.iterdir()) == []


def test_exactly_the_limit_is_accepted_by_the_check():
    from custseg.outputs.workbook import check_sheets

    table = pa.table({"x": pa.array(np.zeros(MAX_DATA_ROWS))})
    assert check_sheets({"s": table})["s"].num_rows == MAX_DATA_ROWS


@pytest.mark.parametrize("name", ["", "a" * 32, "a/b", "x[1]", "what?"])
def test_bad_sheet_names_refused(tmp_path, name):
    with pytest.raises(CustsegError):
        write_workbook(tmp_path / "w.xlsx", {name: pd.DataFrame({"a": [1]})})
    assert not (tmp_path / "w.xlsx").exists()
