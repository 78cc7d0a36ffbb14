"""segments.xlsx: the run's tables as one Excel workbook, one sheet each (issue 17).

Marketers open Excel. The workbook is written with XlsxWriter (a maintained writer; fastexcel
only reads) in constant-memory mode, row by row, into a temporary file renamed into place, so
the file appears complete or not at all. Cell types are decided per column, never guessed from a
cell's text:

- customer ids and every text column are text cells (`write_string`), so "00123" keeps its
  zeros and "=1+1" is not a formula; the workbook's options that turn strings into formulas,
  numbers or links are off. Text cells other than customer ids that a spreadsheet would run as
  a formula when edited (starting with = + - @ tab or CR) get a leading apostrophe, as in the
  CSV outputs; a customer id is written exactly as read.
- numbers (integers, floats, decimals) are number cells; a number that is not finite (NaN,
  infinity) is left blank, never written as an error value.
- dates and timestamps are text in ISO form; booleans are boolean cells; nulls are blank.

A sheet holds at most 1,048,576 rows (Excel's limit), one of them the header: a table of more
data rows is refused before anything is written, with the reason and what to use instead.
"""

from __future__ import annotations

import decimal
import math
import os
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa

from ..errors import CustsegError

MAX_DATA_ROWS = 1_048_575  # Excel's 1,048,576 rows, less the header
MAX_SHEET_NAME = 31
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ID_COLUMNS = ("customer_id",)
_BAD_SHEET_CHARS = set("[]:*?/\\")
# Default sheet names for a run's tables, in the order they appear in the workbook.
RUN_SHEETS = ("segments", "profiles", "best sellers", "k selection")


def neutralise(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe (the CSV
    outputs do the same)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _as_arrow(table: Any) -> pa.Table:
    if isinstance(table, pa.Table):
        return table
    if hasattr(table, "to_arrow") and not hasattr(table, "columns"):
        return table.to_arrow()
    try:  # a pandas DataFrame
        return pa.Table.from_pandas(table, preserve_index=False)
    except (TypeError, pa.ArrowException) as exc:
        raise TypeError(f"a sheet must be a pyarrow Table or a pandas DataFrame, not {type(table).__name__}") from exc


def _kind(name: str, typ: pa.DataType) -> str:
    """How a column's cells are written: id, number, bool or text."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if name in ID_COLUMNS:
        return "id"
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "number"
    if pa.types.is_boolean(typ):
        return "bool"
    return "text"


def check_sheets(sheets: Mapping[str, Any]) -> dict[str, pa.Table]:
    """The sheets as Arrow tables, after checking names and sizes (nothing is written)."""
    if not sheets:
        raise CustsegError("a workbook needs at least one table to write.")
    out: dict[str, pa.Table] = {}
    seen: set[str] = set()
    for name, table in sheets.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_SHEET_NAME \
                or set(name) & _BAD_SHEET_CHARS or name.startswith("'") or name.endswith("'"):
            raise CustsegError(f"{name!r} cannot name an Excel sheet (1 to {MAX_SHEET_NAME} characters, "
                               "none of [ ] : * ? / \\).")
        if name.lower() in seen:
            raise CustsegError(f"two sheets would be called {name!r}; Excel needs distinct sheet names.")
        seen.add(name.lower())
        arrow = _as_arrow(table)
        if arrow.num_rows > MAX_DATA_ROWS:
            raise CustsegError(
                f"the {name} table has {arrow.num_rows:,} rows, more than the {MAX_DATA_ROWS:,} an Excel sheet "
                "holds (with its header); use --format parquet (or csv) for tables this large.")
        out[name] = arrow
    return out


def write_workbook(path: str | os.PathLike, sheets: Mapping[str, Any]) -> Path:
    """Write `sheets` (sheet name -> pyarrow Table or pandas DataFrame, in order) as an .xlsx file.

    Refuses (CustsegError, before writing anything) a table of more than MAX_DATA_ROWS rows.
    Written to a temporary file beside `path` and renamed into place."""
    import xlsxwriter  # only runs that ask for a workbook need it

    tables = check_sheets(sheets)
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        workbook = xlsxwriter.Workbook(str(tmp), {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": False,
        })
        try:
            header_format = workbook.add_format({"bold": True})
            for name, table in tables.items():
                _write_sheet(workbook.add_worksheet(name), table, header_format)
        finally:
            workbook.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_sheet(sheet, table: pa.Table, header_format) -> None:
    names = table.column_names
    kinds = [_kind(n, table.schema.field(n).type) for n in names]
    for c, name in enumerate(names):
        sheet.write_string(0, c, str(name), header_format)
    for c, name in enumerate(names):  # a readable width from the header and the first rows
        sample = table.column(name).slice(0, 100).to_pylist()
        width = max([len(str(name))] + [len(str(v)) for v in sample if v is not None])
        sheet.set_column(c, c, min(max(width + 2, 8), 60))
    if names:
        sheet.freeze_panes(1, 0)
    row = 1
    for batch in table.to_batches(max_chunksize=65_536):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for r in range(batch.num_rows):
            for c, kind in enumerate(kinds):
                _write_cell(sheet, row, c, kind, columns[c][r])
            row += 1


def _write_cell(sheet, row: int, col: int, kind: str, value: Any) -> None:
    if value is None:
        return
    if kind == "id":
        sheet.write_string(row, col, str(value))
    elif kind == "number":
        number = float(value) if isinstance(value, decimal.Decimal) else value
        if math.isfinite(number):
            sheet.write_number(row, col, number)
    elif kind == "bool":
        sheet.write_boolean(row, col, bool(value))
    else:
        text = value.isoformat() if hasattr(value, "isoformat") else (
            value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
        sheet.write_string(row, col, neutralise(text))


def run_sheets(segments: Any, profiles: Any, best_sellers: Any, k_selection: Any) -> dict[str, Any]:
    """The sheets of a run's segments.xlsx, in order (any table may be None to leave it out)."""
    tables = (segments, profiles, best_sellers, k_selection)
    return {name: t for name, t in zip(RUN_SHEETS, tables) if t is not None}
