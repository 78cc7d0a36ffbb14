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
  the text reading), when every date there is a plain date with a four-digit year; TIMESTAMP
  when every one is such a date and a time of one shape ('4/2/2019 17:29', '2019-02-04
  17:29:05', '2019-02-04T17:29'): the text reading reads the date and ignores the time, the
  dates are the same;
* every other column (text) stays text and goes through the usual expressions.

A value further down that the typed reader cannot parse ('$12', 'C123', '1,234.50',
'2024-01-05 10:30', '31/02/2024') does not become a dropped line: it is recorded as a CAST
error in the reader's rejects table, and the pipeline then reads the whole file again as text
(`typed_reading_failed`, pipeline.compute_features). So does a date the reader would take
differently: a two-digit year ('05/01/24'), which DuckDB reads as the year 24 and the text
reading as 2024, is caught by the dates before the year 1000.
Ids are read as text and made integers in SQL (checked_keys) only where they are plain
integers that round-trip; any other id further down ('00100', '+7', '1e3') makes the pipeline read
the file again with ids as text, so '00100' and '100' stay two customers. That check costs about
nothing next to DuckDB's own integer reading (3M Shopify lines: 2.8-3.3 s either way; ids read as
text throughout: 4.3-5.5 s).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

import ibis

from ..engines.base import unique_names
from ..errors import CustsegError
from .encodings import known_encoding, single_byte_encoding
from .text_files import head, leading_blank_lines, mixed_line_endings, utf16_encoding


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    encoding: str
    header: tuple[str, ...]
    skip: int = 0           # blank lines before the header (text_files.py)
    lenient: bool = False   # lines end in different ways (LF and CRLF): the engine's non-strict mode


def sniff_csv(path: str) -> CsvDialect:
    """Delimiter, encoding and header of a CSV file, from its first 64 KB (decompressed: text_files.py)."""
    raw = head(path)
    utf16 = utf16_encoding(raw)
    if utf16:  # transcoded to UTF-8 for the engine
        text = raw.decode(utf16, errors="ignore").lstrip("\ufeff")
        return _dialect_of(path, text, utf16, mixed_line_endings(text.encode("utf-8")))
    if not raw.strip():
        raise CustsegError(f"{path}: the file is empty; export the order lines again.")
    if b"\x00" in raw:
        raise CustsegError(f"{path}: this is not a text (CSV) file; give a CSV, Parquet or .xlsx export.")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        if known_encoding(path):  # a reading found bytes that are not UTF-8 further down (encodings.py)
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "not UTF-8 further down")
        text = raw.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3 and not known_encoding(path):  # a character cut by the 64 KB window
            text, encoding = raw[: exc.start].decode("utf-8"), "utf-8"
        else:
            text, encoding = raw.decode("latin-1"), known_encoding(path) or single_byte_encoding(path)
    return _dialect_of(path, text, encoding, mixed_line_endings(raw))


def _dialect_of(path: str, text: str, encoding: str, lenient: bool) -> CsvDialect:
    skip = leading_blank_lines(text)
    lines = text.splitlines()[skip:]
    if not lines:
        raise CustsegError(f"{path}: the file is empty; export the order lines again.")
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
    return CsvDialect(delimiter, encoding, tuple(header), skip, lenient)


SAMPLE_BYTES = 1 << 16


_KEY = re.compile(r"[1-9][0-9]{0,17}")  # fits BIGINT; '007' and '+7' are text ids


_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


_DAY_FIRST = re.compile(r"[0-9]{1,2}([/.\-])[0-9]{1,2}\1[0-9]{4}")   # 4/2/2024, 04.02.2024


_ISO = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")


_TIME = re.compile(r"([ T])[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?")  # after a date: ' 17:29', 'T17:29:05'


@dataclass
class Typed:
    """What the typed reading parses: column -> DuckDB type, and the format of the date column
    (DuckDB's `dateformat` or `timestampformat` by the column's type)."""

    types: dict[str, str] = field(default_factory=dict)
    date_pattern: str | None = None  # the date column's strptime format

    def __bool__(self) -> bool:
        return bool(self.types)

    @property
    def dateformat(self) -> str | None:
        return self.date_pattern if "DATE" in self.types.values() else None

    @property
    def timestampformat(self) -> str | None:
        return self.date_pattern if "TIMESTAMP" in self.types.values() else None

    @property
    def keys(self) -> list[str]:
        """BIGINT id columns: read as text, made integers by checked_keys (DuckDB's integer reader
        would take a later '00100' as 100 and merge two customers)."""
        return [name for name, kind in self.types.items() if kind == "BIGINT"]

    def read_types(self) -> dict[str, str]:
        return {name: "VARCHAR" if kind == "BIGINT" else kind for name, kind in self.types.items()}


NOT_AN_INTEGER_ID = -1  # what checked_keys gives an id that is no plain integer (the typed reading fails)


def checked_keys(table, keys: list[str]):
    """Id columns read as text, as BIGINT where the text is a plain integer that round-trips
    ('100', not '00100', '+100' or '1e2'); NOT_AN_INTEGER_ID elsewhere, which makes
    typed_reading_failed read the file again with ids as text. The whole column is checked,
    in the engine, at the cost of a cast."""
    values = {}
    for name in keys:
        text = table[name]
        plain = text.re_search(r"^[1-9][0-9]{0,17}$")
        values[name] = ibis.cases((text.isnull() | (text == ""), ibis.null("int64")),
                                  (plain, text.try_cast("int64")), else_=ibis.literal(NOT_AN_INTEGER_ID, "int64"))
    return table.mutate(**values) if values else table


def sample_rows(path: str, dialect: CsvDialect) -> list[list[str]]:
    """The data rows within the first 64 KB of the file (the last, perhaps cut, row left out)."""
    raw = head(path, SAMPLE_BYTES)
    cut = len(raw) == SAMPLE_BYTES
    text = raw.decode(dialect.encoding if dialect.encoding != "cp1252" else "latin-1", errors="replace")
    # Lines kept with their own endings (CR-only, mixed), blank lines before the header left out.
    lines = text.lstrip("\ufeff").splitlines(keepends=True)[dialect.skip:]
    rows = list(csv.reader(lines, delimiter=dialect.delimiter))[1:]
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
            kind, found = _date_type(values, date_format)
            if kind:
                typed.types[name], typed.date_pattern = kind, found
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
            same_dates = found.date_pattern == typed.date_pattern
            typed.types = {k: v for k, v in typed.types.items()
                           if found.types.get(k) == v and (v not in ("DATE", "TIMESTAMP") or same_dates)}
        if not typed:
            return Typed()
    return typed


def _date_type(values: list[str], date_format: str) -> tuple[str | None, str | None]:
    """("DATE", format) for plain dates, ("TIMESTAMP", format) for such dates each followed by a
    time of one shape, else (None, None)."""
    plain = _dateformat(values, date_format)
    if plain:
        return "DATE", plain
    times = [_TIME.search(v) for v in values]
    if not all(times) or len({(t.group(1), t.group(2) is not None) for t in times}) != 1:
        return None, None
    if not all(t.end() == len(v) for t, v in zip(times, values)):
        return None, None
    dates = _dateformat([v[:t.start()] for t, v in zip(times, values)], date_format)
    if not dates:
        return None, None
    separator, seconds = times[0].group(1), times[0].group(2) is not None
    return "TIMESTAMP", dates + separator + ("%H:%M:%S" if seconds else "%H:%M")


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
    if cached_table is None:
        return False
    if engine.integer_column_holds(cached_table, ("customer_id", "order_id"), NOT_AN_INTEGER_ID):
        return True  # an id that is no plain integer (checked_keys)
    if not source.typed_dates:
        return False
    year = engine.earliest_year(cached_table, "order_date")
    return year is not None and year < 1000
