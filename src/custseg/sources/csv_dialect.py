"""CSV files: their dialect (delimiter, encoding, header), and the fast typed reading of a clean CSV.

The typed reading: typed columns, with the text reading as the fallback.

sources/read.py reads a CSV as text and parses every value with forgiving expressions (spaces,
currency signs, thousands separators, '17850.0' ids). That costs about twice the reading
itself. Most exports are clean: their ids are plain integers and their numbers plain
decimals. For those, DuckDB's reader parses the columns itself, with the same results:

* a column the adapter reads as an id (as_key) becomes BIGINT when every id in the first
  64 KB is a plain positive integer without leading zeros;
* a column it reads as a number (as_number) becomes DOUBLE when every value there is a plain
  decimal number (not in a ';'-delimited file, where a comma may be the decimal mark);
* the order date column becomes DATE, parsed with the file's date format (detected as for
  the text reading), when every date there is a plain date with a four-digit year;
* every other column (text) stays text and goes through the usual expressions.

A value further down that the typed reader cannot parse ('$12', 'C123', '1,234.50',
'2024-01-05 10:30', '31/02/2024') does not become a dropped line: it is recorded as a CAST
error in the reader's rejects table, and the pipeline then reads the whole file again as text
(`typed_reading_failed`, pipeline.compute_features). So does a date the reader would take
differently: a two-digit year ('05/01/24'), which DuckDB reads as the year 24 and the text
reading as 2024, is caught by the dates before the year 1000.
One caveat, documented in docs/formats.md: DuckDB's integer reader also takes '007', '+7',
' 7', '1e3', '1_000' and '0x1F' as integers, so such an id *after* the first 64 KB (where the
sample had only plain integers) is read as the integer it spells (7, 1000, 31), while the text
reading would keep it as a distinct id. Number columns have no such gap: the text reading
parses them with the same DuckDB cast.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

from ..engines.base import unique_names
from ..errors import CustsegError


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    encoding: str
    header: tuple[str, ...]


def sniff_csv(path: str) -> CsvDialect:
    """Delimiter, encoding and header of a CSV file, from its first 64 KB."""
    with open(path, "rb") as fh:
        raw = fh.read(1 << 16)
    if not raw.strip():
        raise CustsegError(f"{path}: the file is empty; export the order lines again.")
    if b"\x00" in raw:
        raise CustsegError(f"{path}: this is not a text (CSV) file; give a CSV, Parquet or .xlsx export.")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3:  # a character cut by the 64 KB window
            text, encoding = raw[: exc.start].decode("utf-8"), "utf-8"
        else:
            text, encoding = raw.decode("latin-1"), _single_byte_encoding(path)
    lines = text.splitlines()
    sample = "\n".join(lines[:50])
    first = lines[0] if lines else ""
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: first.count(d) for d in ",;\t|"}
        delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    header = [h.strip() for h in header]
    if not any(header):
        raise CustsegError(f"{path}: the first line is empty; it must hold the column names.")
    return CsvDialect(delimiter, encoding, tuple(header))


def _single_byte_encoding(path: str) -> str:
    """latin-1, or cp1252 (Windows) when the file has bytes 0x80-0x9F (€, curly quotes, dashes),
    which Latin-1 leaves to control characters and DuckDB refuses."""
    pattern = re.compile(rb"[\x80-\x9f]")
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            if pattern.search(chunk):
                return "cp1252"
    return "latin-1"


SAMPLE_BYTES = 1 << 16


_KEY = re.compile(r"[1-9][0-9]{0,17}")  # fits BIGINT; '007' and '+7' are text ids


_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


_DAY_FIRST = re.compile(r"[0-9]{1,2}([/.\-])[0-9]{1,2}\1[0-9]{4}")   # 4/2/2024, 04.02.2024


_ISO = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")


@dataclass
class Typed:
    """What the typed reading parses: column -> DuckDB type, and the format of the DATE column."""

    types: dict[str, str] = field(default_factory=dict)
    dateformat: str | None = None

    def __bool__(self) -> bool:
        return bool(self.types)


def sample_rows(path: str, dialect: CsvDialect) -> list[list[str]]:
    """The data rows within the first 64 KB of the file (the last, perhaps cut, row left out)."""
    with open(path, "rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    cut = len(raw) == SAMPLE_BYTES
    text = raw.decode(dialect.encoding if dialect.encoding != "cp1252" else "latin-1", errors="replace")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=dialect.delimiter))[1:]
    if cut and rows:
        rows.pop()
    return [r for r in rows if any(r)]


def typed_columns(path: str, dialect: CsvDialect, names: list[str], roles: dict[str, str],
                  date_format: str = "iso") -> Typed:
    """The columns whose sampled values all read as BIGINT, DOUBLE or DATE (in `date_format`:
    iso, dmy or mdy); empty: nothing to gain, read everything as text."""
    if not roles:
        return Typed()
    rows = sample_rows(path, dialect)
    if not rows:
        return Typed()
    typed = Typed()
    for index, name in enumerate(names):
        role = roles.get(name)
        if role is None or (role == "number" and dialect.delimiter == ";"):
            continue
        values = [r[index] for r in rows if index < len(r) and r[index] != ""]
        if not values:
            continue
        if role == "date":
            typed.dateformat = _dateformat(values, date_format)
            if typed.dateformat:
                typed.types[name] = "DATE"
            continue
        pattern = _KEY if role == "key" else _NUMBER
        if all(pattern.fullmatch(v) for v in values):
            typed.types[name] = "BIGINT" if role == "key" else "DOUBLE"
    return typed


def typed_for_files(files: list[str], dialects: list[CsvDialect], names: list[str], roles: dict[str, str],
                    date_format: str) -> Typed:
    """The types every file's sample allows (the files are read as one table)."""
    typed: Typed | None = None
    for path, dialect in zip(files, dialects):
        if unique_names(dialect.header) != names:  # same columns in another order: keep it simple
            return Typed()
        found = typed_columns(path, dialect, names, roles, date_format)
        if typed is None:
            typed = found
        else:
            same_dates = found.dateformat == typed.dateformat
            typed.types = {k: v for k, v in typed.types.items()
                           if found.types.get(k) == v and (v != "DATE" or same_dates)}
        if not typed:
            return Typed()
    if "DATE" not in typed.types.values():
        typed.dateformat = None
    return typed


def _dateformat(values: list[str], date_format: str) -> str | None:
    """DuckDB's format for dates like these (all plain dates, one separator), or None."""
    if date_format == "iso":
        return "%Y-%m-%d" if all(_ISO.fullmatch(v) for v in values) else None
    if date_format not in ("dmy", "mdy"):
        return None
    found = [_DAY_FIRST.fullmatch(v) for v in values]
    separators = {m.group(1) for m in found if m}
    if not all(found) or len(separators) != 1:
        return None
    sep = separators.pop()
    return sep.join(("%d", "%m", "%Y") if date_format == "dmy" else ("%m", "%d", "%Y"))


def typed_reading_failed(engine, source, cached_table: str | None) -> bool:
    """Must the lines be read again as text? A value the typed reader could not parse (recorded
    in its rejects tables), or a date before the year 1000 (a two-digit year read as such)."""
    if engine.cast_failed(source.typed_rejects):
        return True
    if cached_table is None or not source.typed_dates:
        return False
    year = engine.earliest_year(cached_table, "order_date")
    return year is not None and year < 1000
