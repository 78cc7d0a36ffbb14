"""Reading: input files (or an in-memory table) -> canonical order lines (a lazy Ibis table).

Files are found by sources/files.py, CSV dialects sniffed by sources/csv_dialect.py, values parsed
by sources/values.py and the schema's adapter taken from the registry (sources/schemas.py); the
engine reads the files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from ..engines.base import unique_names
from ..errors import CustsegError, first_line
from .csv_dialect import CsvDialect, checked_keys, sniff_csv, typed_for_files
from .currency import data_currency
from .keep import check_keep
from .files import expand_inputs, expand_url_inputs, file_kind, is_url
from .casts import casts_of
from .number_formats import formats_for
from .schemas import SCHEMA_CHOICES, SCHEMAS, SHARED_WARNING, column_roles, detect_schema, normalised_headers
from .values import detect_date_format

DATE_FORMATS = ("auto", "iso", "dmy", "mdy", "excel")


@dataclass
class SourceSpec:
    """What the user asked to read and how to interpret it."""

    inputs: list[Any]
    schema: str = "auto"
    mapping: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    date_format: str = "auto"
    keep: list[str] = field(default_factory=list)  # --keep: user columns carried per customer (keep.py)


@dataclass
class Source:
    """Canonical order lines and what is known about where they came from."""

    lines: ir.Table
    schema: str
    files: list[str]
    columns: list[str]          # the source's own column names
    provided: set[str]          # canonical columns that come from the data (not defaults)
    return_rate_level: str      # "order" (returns on the order line) or "customer" (separate lines)
    date_format: str
    notes: list[str] = field(default_factory=list)
    # The rejects tables of a typed CSV reading (csv_dialect.py); empty when everything was read as text.
    typed_rejects: list[str] = field(default_factory=list)
    typed_dates: bool = False  # the order dates were parsed by the typed reading
    product_is_name: bool = False  # product_name is the product itself (the schema's entry says so)
    warnings: list[str] = field(default_factory=list)  # said on stderr (skipped files, ...)
    parsed_from: dict[str, str] = field(default_factory=dict)  # canonical -> the source column parsed
    number_formats: dict = field(default_factory=dict)  # column -> number_formats.NumberFormat
    raw: ir.Table | None = None  # the table as read, and the canonical expressions over it (`lines`
    values: dict[str, ir.Value] = field(default_factory=dict)  # selects them; cleaning/parse_failures.py)
    currency: str | None = None  # named by a column of the data (Shopify: `currency`), when it names one
    kept: ir.Table | None = None  # --keep: customer_id (as adapted) and the kept user columns, one row per line


def read_raw(engine, files: list[str], sheet: str | None, roles: dict[str, str] | None = None,
             date_format: str = "iso") -> tuple[ir.Table, list[str]]:
    """One Ibis table over all files (they must share their columns).

    `roles` (schemas.column_roles): CSV columns DuckDB may parse as typed columns where the
    files' first 64 KB allow it (csv_dialect.py; dates in `date_format`); without, every CSV
    column is read as text."""
    kinds = {file_kind(f) for f in files}
    if len(kinds) > 1:
        raise CustsegError(f"the inputs mix file types ({', '.join(sorted(kinds))}); give files of one type.")
    kind = kinds.pop()
    if kind == "csv":
        dialects = [sniff_csv(f) for f in files] if not any(map(is_url, files)) \
            else [CsvDialect(*engine.sniff_remote_csv(files[0]))] * len(files)
        first = dialects[0]
        for path, dialect in zip(files[1:], dialects[1:]):
            if set(dialect.header) != set(first.header):
                raise CustsegError(
                    f"{path}: its columns ({', '.join(dialect.header)}) differ from those of {files[0]}; "
                    "give files with the same columns."
                )
        groups: dict[CsvDialect, list[str]] = {}
        for path, dialect in zip(files, dialects):
            groups.setdefault(dialect, []).append(path)
        columns = unique_names(first.header)  # a repeated name is read as name_1, name_2, ...
        typed = None
        if roles and engine.reads_typed_csv and not any(map(is_url, files)):
            typed = typed_for_files(files, dialects, columns, roles, date_format)
        tables = [engine.read_csv(paths, dialect, typed) for dialect, paths in groups.items()]
        if typed and typed.keys:  # ids: integers only where every value round-trips
            tables = [checked_keys(t, typed.keys) for t in tables]
    elif kind == "parquet":
        tables = [engine.read_parquet(files)]
        columns = list(tables[0].columns)
    else:
        tables = [read_xlsx(f, sheet) for f in files]
        columns = list(tables[0].columns)
        for path, table in zip(files[1:], tables[1:]):
            if set(table.columns) != set(columns):
                raise CustsegError(f"{path}: its columns differ from those of {files[0]}; give files with the same columns.")
    tables = [t.select(*columns) for t in tables]
    raw = tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=False)
    renamed = normalised_headers(columns)  # Customer_ID -> customer_id (headers.py)
    if renamed != columns:
        raw = raw.rename({new: old for new, old in zip(renamed, columns) if new != old})
        columns = renamed
    return raw, columns


def read_xlsx(path: str, sheet: str | None) -> ir.Table:
    import fastexcel  # heavy: only for workbooks

    try:
        reader = fastexcel.read_excel(path)
    except Exception as exc:
        raise CustsegError(f"{path}: not a readable .xlsx workbook ({first_line(exc)}); export it again.") from exc
    names = reader.sheet_names
    if sheet is None:
        chosen: str | int = 0
    elif sheet in names:
        chosen = sheet
    elif sheet.isdigit() and int(sheet) < len(names):
        chosen = int(sheet)
    else:
        raise CustsegError(f"{path}: no sheet {sheet!r}; the workbook has: {', '.join(names)}.")
    try:
        table = reader.load_sheet(chosen).to_arrow()
    except Exception as exc:
        raise CustsegError(f"{path}: sheet {chosen!r} cannot be read: {first_line(exc)}") from exc
    if table.num_rows == 0:
        hint = f" The workbook has the sheets {', '.join(names)}: pick one with --sheet." if len(names) > 1 else ""
        raise CustsegError(f"{path}: sheet {names[chosen] if isinstance(chosen, int) else chosen!r} has no rows.{hint}")
    return ibis.memtable(table)


def is_table_like(data) -> bool:
    """A DataFrame (pandas, Arrow, Spark) rather than paths."""
    return hasattr(data, "columns") and not isinstance(data, (str, bytes, os.PathLike))


def read_source(engine, spec: SourceSpec, typed: bool = False) -> Source:
    """Read the input files and return their canonical order lines (_read_source); files whose line
    endings change beyond the sniffed 64 KB are read again in the engine's lenient mode (text_files.py)."""
    try:
        return _read_source(engine, spec, typed)
    except Exception as exc:
        if "state machine reached an invalid state" not in str(exc) or not engine.read_leniently():
            raise
        return _read_source(engine, spec, typed)


def _read_source(engine, spec: SourceSpec, typed: bool = False) -> Source:
    """Read the input files and return their canonical order lines.

    `typed`: read a CSV's clean id and number columns as typed columns (csv_dialect.py): faster,
    but the caller must then check csv_dialect.typed_reading_failed and read again without when it did."""
    _check_spec(spec)
    warnings: list[str] = []
    files = expand_url_inputs(spec.inputs) if engine.reads_urls else expand_inputs(spec.inputs, warnings)
    if not files:
        raise CustsegError("no input file given; name one or more CSV, Parquet or .xlsx files.")
    raw, columns = read_raw(engine, files, spec.sheet)
    typed = typed and file_kind(files[0]) == "csv"
    try:
        source = adapt(engine, raw, columns, spec, files, scan=not typed)
    except CustsegError as exc:
        sheets = _other_sheets(files[0]) if spec.sheet is None and "missing column" in str(exc) else []
        if sheets:  # the columns may be on another sheet of the workbook
            raise CustsegError(f"{exc} The workbook has the sheets {', '.join(sheets)}: pick one with --sheet.") \
                from exc
        raise
    if typed:
        source = read_typed(engine, source, spec, files) or adapt(engine, raw, columns, spec, files)
    source.warnings = warnings + source.warnings
    return source


def read_typed(engine, source: Source, spec: SourceSpec, files: list[str]) -> Source | None:
    """The same source with the columns the files' samples allow read as typed columns (None: no
    column qualifies). The caller must check `csv_dialect.typed_reading_failed` once the lines are read."""
    roles = column_roles(source.schema, source.columns, spec.mapping)
    before = engine.csv_reads()
    raw, columns = read_raw(engine, files, spec.sheet, roles, source.date_format)
    after = engine.csv_reads()
    if all(raw[c].type().is_string() for c in roles if c in raw.columns):
        return None
    fixed = SourceSpec(inputs=spec.inputs, schema=source.schema, mapping=spec.mapping, sheet=spec.sheet,
                       date_format=source.date_format, keep=spec.keep)
    typed = adapt(engine, raw, columns, fixed, files)
    typed.notes = source.notes
    typed.warnings = source.warnings
    typed.typed_rejects = engine.rejects_of(before + 1, after)
    typed.typed_dates = any(raw[c].type().is_temporal() for c, role in roles.items()
                            if role == "date" and c in raw.columns)
    return typed


def _other_sheets(path: str) -> list[str]:
    """The sheet names of a workbook with more than one sheet (else [])."""
    if file_kind(path) != "xlsx":
        return []
    try:
        import fastexcel  # heavy: only for workbooks

        names = list(fastexcel.read_excel(path).sheet_names)
    except Exception:
        return []
    return names if len(names) > 1 else []


def read_source_table(engine, data, spec: SourceSpec) -> Source:
    """Canonical order lines from an in-memory table (pandas, Arrow or a Spark DataFrame)."""
    _check_spec(spec)
    raw = engine.table_of(data)
    columns = [str(c) for c in raw.columns]
    return adapt(engine, raw, columns, spec, [])


def read_source_database(engine, spec: SourceSpec) -> Source:
    """Canonical order lines from the database the engine is connected to (--table or --query):
    the same schemas, --map and value parsing as for files, as a query that runs in the database."""
    _check_spec(spec)
    raw, label = engine.database_lines()
    columns = [str(c) for c in raw.columns]
    source = adapt(engine, raw, columns, spec, [], where=label)
    source.files = [label]  # where the lines come from, password masked (summary.json, errors)
    return source


def _check_spec(spec: SourceSpec) -> None:
    if spec.schema not in SCHEMA_CHOICES:
        raise CustsegError(f"--schema {spec.schema!r} is unknown; use one of: {', '.join(SCHEMA_CHOICES)}.")
    if spec.date_format not in DATE_FORMATS:
        raise CustsegError(f"--date-format {spec.date_format!r} is unknown; use one of: {', '.join(DATE_FORMATS)}.")


def adapt(engine, raw: ir.Table, columns: list[str], spec: SourceSpec, files: list[str],
          where: str | None = None, scan: bool = True, formats: dict | None = None) -> Source:
    """Apply the schema adapter (detected from the columns unless given); `where` names the data in
    errors (default: the first file). Number formats (number_formats.py) are decided per column;
    `scan` False: from the sample alone (a typed reading that follows scans its text columns);
    `formats` given: those of an earlier reading of the same files (cleaning/dropped.py)."""
    path = where or (files[0] if files else "the data")
    schema = spec.schema
    if schema == "auto":
        schema = "generic" if spec.mapping else detect_schema(columns)
    elif spec.mapping and schema != "generic":
        raise CustsegError(f"--map works with the generic schema, not with --schema {schema}; drop one of them.")

    entry = SCHEMAS[schema]
    if spec.keep:  # refused by name before any data is read
        check_keep(spec.keep, columns)
    resolved = entry.resolve(columns, spec.mapping, path)
    notes = list(resolved.notes)
    delimiter = sniff_csv(files[0]).delimiter if files and file_kind(files[0]) == "csv" else None
    number_columns = [c for c, role in column_roles(schema, columns, spec.mapping).items() if role == "number"]
    if formats is None:
        formats = formats_for(engine, raw, number_columns, delimiter, path, notes, scan)
    date_format = spec.date_format
    if date_format == "auto":
        date_format = detect_date_format(engine, raw, resolved.date_column, resolved.default_date_format, path)
    with casts_of(engine):  # text is parsed with the engine's own safe cast
        values = entry.adapt(raw, resolved, date_format, formats)
    lines = raw.select(**values)
    kept = None
    if spec.keep:  # the user's columns beside the customer id as the adapter reads it
        kept = raw.select(customer_id=values["customer_id"], **{name: raw[name] for name in spec.keep})
    warnings = [n for n in notes if n.startswith(SHARED_WARNING) or n.startswith(path + ": column")]
    return Source(
        lines=lines, schema=schema, files=files, columns=columns, provided=resolved.provided,
        return_rate_level=entry.return_rate_level, date_format=date_format,
        notes=[n for n in notes if n not in warnings], product_is_name=entry.product_is_name,
        warnings=warnings, parsed_from=entry.parsed_from(columns, resolved), number_formats=formats,
        raw=raw, values=values, currency=data_currency(engine, raw), kept=kept,
    )
