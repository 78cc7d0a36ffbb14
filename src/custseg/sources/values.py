"""Values as the order lines need them: ids, text, numbers and dates, parsed by Ibis expressions.

A CSV file is read as text and parsed here with `try_cast`-style expressions, so that a stray word
in a number column becomes a counted, dropped line instead of a failed run, and so that the same
expressions run on every engine.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import ibis
import ibis.expr.types as ir

from ..errors import CustsegError

# The cast that parses text: Ibis' try_cast unless an engine gives its own (engines/sql.py guards
# it on PostgreSQL, MySQL and SQLite, where Ibis' try_cast fails the query or turns text into 0).
_CAST: ContextVar[Callable[[ir.Value, str], ir.Value]] = ContextVar(
    "custseg_cast", default=lambda value, to: value.try_cast(to))
# A date from its year, month and day as digit texts, when the engine has a quicker way than
# casting 'Y-M-D' (None: cast the text).
_DATE_FROM_PARTS: ContextVar[Callable[..., ir.DateValue] | None] = ContextVar("custseg_date_from_parts", default=None)


@contextlib.contextmanager
def casts_of(engine) -> Iterator[None]:
    """Within the block, the value parsers below cast text the way `engine` does (Engine.try_cast)."""
    token = _CAST.set(engine.try_cast)
    parts = _DATE_FROM_PARTS.set(engine.date_from_parts)
    try:
        yield
    finally:
        _DATE_FROM_PARTS.reset(parts)
        _CAST.reset(token)


def try_cast(value: ir.Value, to: str) -> ir.Value:
    """`value` cast to `to`, NULL where it is not one, with the current engine's cast."""
    return _CAST.get()(value, to)


def as_text(value: ir.Value) -> ir.StringValue:
    """Trimmed text, empty -> NULL; whole floats lose their '.0' (Excel's 17850.0 -> '17850')."""
    dtype = value.type()
    if dtype.is_string():
        text = _strip(value)
        # Only a text with a dot can be a whole float; the test spares most lines the regex.
        # re_extract, not re_replace with a back-reference: Spark's regexp_replace reads "\1"
        # as a literal "1" (it wants "$1"), DuckDB reads "$1" literally.
        whole = text.re_extract(r"^(-?\d+)\.0+$", 1)
        text = ibis.ifelse(text.contains("."), ibis.coalesce(whole.nullif(""), text), text)
    elif dtype.is_floating():
        # The bound keeps NaN and infinity (equal to their floor on Spark) and overflowing
        # values away from the int64 cast, which fails under Spark's ANSI mode.
        whole = (value == value.floor()) & (value.abs() < 1e15)
        text = ibis.ifelse(whole, value.cast("int64").cast("string"), value.cast("string"))
    else:
        text = value.cast("string")
    return ibis.ifelse(text == "", ibis.null("string"), text)


def as_key(value: ir.Value) -> ir.Value:
    """An identifier (customer, order): whole numbers stay numbers, anything else is as_text.

    Grouping tens of millions of lines by integers is about twice as fast as by their
    text, and uses less memory; features.customer_features turns customer ids into
    text at the end, so outputs do not change.
    """
    return value if value.type().is_integer() else as_text(value)


_SPACE = " \t\n\r\v\f"


def _strip(value: ir.StringValue) -> ir.StringValue:
    """value.strip(), skipped (it is costly) when neither end is whitespace."""
    return ibis.ifelse(value.re_search(f"^[{_SPACE}]|[{_SPACE}]$"), value.strip(), value)


def as_number(value: ir.Value, decimal_comma: bool = False) -> ir.FloatingValue:
    """A float64, NULL where the text is not a number.

    Currency signs and spaces are ignored; so are thousands separators: commas, or with
    `decimal_comma` (a ';'-delimited file, the European convention) dots, the comma then
    being the decimal mark ('1.234,50' -> 1234.5).
    """
    dtype = value.type()
    if dtype.is_numeric() or dtype.is_boolean():
        return value.cast("float64")
    text = value.cast("string")
    # Casts ignore surrounding whitespace; only a value that does not cast as it is goes
    # through the (costly) regex.
    if decimal_comma:
        cleaned = text.strip().re_replace(r"[£$€\s.]", "").replace(",", ".")
    else:
        cleaned = text.strip().re_replace(r"[£$€\s,]", "")
    return ibis.coalesce(try_cast(text, "float64"), try_cast(cleaned, "float64"))


_DMY = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})"


_ISO = r"^\s*(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})"


_DMY_FIXED = r"^\d\d[/.\-]\d\d[/.\-]\d\d\d\d"  # what _DMY reads, with 2-digit day and month, 4-digit year


_ISO_FIXED = r"^\d\d\d\d[/.\-]\d\d[/.\-]\d\d"


def as_date(value: ir.Value, date_format: str) -> ir.DateValue:
    """A date; NULL where the value is not a date in the given format."""
    dtype = value.type()
    if dtype.is_timestamp() or dtype.is_date():
        return value.cast("date")
    text = value.cast("string")
    if date_format == "iso":
        y, m, d = (text.re_extract(_ISO, i) for i in (1, 2, 3))
    else:
        a, b, y = (text.re_extract(_DMY, i) for i in (1, 2, 3))
        d, m = (a, b) if date_format == "dmy" else (b, a)
        y = ibis.ifelse(y.length() == 2, "20" + y, y)
    from_parts = _DATE_FROM_PARTS.get()
    if from_parts is not None:
        parsed = from_parts(ibis.ifelse(y.length() == 4, y, ibis.null("string")), m, d)
    else:
        iso = y + "-" + m.lpad(2, "0") + "-" + d.lpad(2, "0")
        parsed = try_cast(ibis.ifelse(y.length() == 4, iso, ibis.null("string")), "date")
    # Fast path, same result: a value that starts with fixed-width digits (31/12/2024,
    # 2024-12-31 ...) is cut by position instead of by three regex extractions.
    if date_format == "iso":
        fixed, (y, m, d) = _ISO_FIXED, (text.substr(0, 4), text.substr(5, 2), text.substr(8, 2))
    else:
        fixed, (a, b, y) = _DMY_FIXED, (text.substr(0, 2), text.substr(3, 2), text.substr(6, 4))
        d, m = (a, b) if date_format == "dmy" else (b, a)
    fast = from_parts(y, m, d) if from_parts is not None else try_cast(y + "-" + m + "-" + d, "date")
    return ibis.ifelse(text.re_search(fixed), fast, parsed)


def detect_date_format(engine, raw: ir.Table, column: str, default: str, path: str) -> str:
    """iso, dmy or mdy, judged from up to 10,000 values of the column."""
    if raw[column].type().is_temporal():
        return "native"
    sample = engine.execute(raw.select(v=raw[column].cast("string")).filter(ibis._.v.notnull()).limit(10_000))
    values = [str(v).strip() for v in sample["v"] if str(v).strip()]
    if not values:
        return default if default != "auto" else "iso"
    iso = sum(bool(re.match(_ISO, v)) for v in values)
    dmy_like = [re.match(_DMY, v) for v in values]
    slashed = [m for m in dmy_like if m]
    if iso >= len(slashed) and iso:
        return "iso"
    if not slashed:
        raise CustsegError(
            f"{path}: column {column!r} does not hold dates (e.g. {values[0]!r}); "
            "map the date column with --map order_date=COLUMN."
        )
    first_big = any(int(m.group(1)) > 12 for m in slashed)
    second_big = any(int(m.group(2)) > 12 for m in slashed)
    if first_big and not second_big:
        return "dmy"
    if second_big and not first_big:
        return "mdy"
    return default if default in ("dmy", "mdy") else "dmy"
