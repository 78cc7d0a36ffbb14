"""Values as the order lines need them: ids, text, numbers and dates, parsed by Ibis expressions.

A CSV file is read as text and parsed here with `try_cast`-style expressions, so that a stray word
in a number column becomes a counted, dropped line instead of a failed run, and so that the same
expressions run on every engine.
"""

from __future__ import annotations


import ibis
import ibis.expr.types as ir

from .casts import date_from_parts, fixed_date, try_cast
from .date_formats import detect, named_date, serial_date
from .number_formats import NumberFormat, parse

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


def _strip(value: ir.StringValue) -> ir.StringValue:
    """value.strip(), skipped (it is costly) when neither end can be whitespace: the code of the first
    and of the last character is above 32 (space; tab to carriage return are 9-13). The guard lets
    through every text strip() changes and a few it leaves as they are (other control characters,
    the empty text), so the values are strip()'s. Two character codes, not twelve prefix and suffix
    tests nor a regular expression: DuckDB, 10M product types of a CSV, the guard 0.2 s instead of
    0.55 s (a regular expression: twice the prefix tests)."""
    ends = (value.ascii_str() <= 32) | (value.right(1).ascii_str() <= 32)
    return ibis.ifelse(ends, value.strip(), value)


def as_number(value: ir.Value, decimal_comma: bool = False) -> ir.FloatingValue:
    """A float64, NULL where the text is not a number (number_formats.parse: currency signs and
    codes, spaces, accounting parentheses and thousands separators are read; `decimal_comma`:
    ',' is the decimal mark and '.' groups thousands ('1.234,50' -> 1234.5))."""
    return parse(value, NumberFormat("," if decimal_comma else "."))


def number_parser(formats: dict | None):
    """value -> float64, in the format decided for its column (number_formats.formats_for)."""
    formats = formats or {}

    def num(value: ir.Value) -> ir.FloatingValue:
        try:
            name = value.get_name()
        except Exception:
            name = None
        return parse(value, formats.get(name))

    return num


# Whitespace before a date: \s and the vertical tab, which DuckDB's \s (RE2) leaves out and Spark's,
# PostgreSQL's and Python's take (and DuckDB's own date parser skips: engines/duckdb.py fixed_date).
_BEFORE_DATE = r"^[\s\x0B]*"


_DMY = _BEFORE_DATE + r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})"


_ISO = _BEFORE_DATE + r"(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})"


_DMY_FIXED = r"^\d\d[/.\-]\d\d[/.\-]\d\d\d\d"  # what _DMY reads, with 2-digit day and month, 4-digit year


_ISO_FIXED = r"^\d\d\d\d[/.\-]\d\d[/.\-]\d\d"


def as_date(value: ir.Value, date_format: str) -> ir.DateValue:
    """A date; NULL where the value is not a date. Slashed dates are read in `date_format`
    (dmy or mdy); ISO dates and dates with month names always (date_formats.py); Excel day
    numbers with date_format "excel"."""
    dtype = value.type()
    if dtype.is_timestamp() or dtype.is_date():
        return value.cast("date")
    text = value.cast("string")
    if date_format == "excel":
        return ibis.coalesce(serial_date(text), _as_date(text, "iso"), named_date(text))
    parsed = _as_date(text, date_format)
    if date_format in ("dmy", "mdy"):  # ISO dates in a day/month column are read as ISO
        parsed = ibis.coalesce(parsed, _as_date(text, "iso"))
    # Month names only where the text has a letter (a cheap test that spares the regexes).
    named = ibis.ifelse(text.re_search("[A-Za-z]"), text, ibis.null("string"))
    return ibis.coalesce(parsed, named_date(named))


def _as_date(text: ir.StringValue, date_format: str) -> ir.DateValue:
    if date_format == "iso":
        y, m, d = (text.re_extract(_ISO, i) for i in (1, 2, 3))
    else:
        a, b, y = (text.re_extract(_DMY, i) for i in (1, 2, 3))
        d, m = (a, b) if date_format == "dmy" else (b, a)
        y = ibis.ifelse(y.length() == 2, "20" + y, y)
    from_parts = date_from_parts()
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
    read = ibis.ifelse(text.re_search(fixed), fast, parsed)
    # Quicker still where the engine parses dates itself (DuckDB: 0.5 s per 100M values instead of
    # ~9 s for the regular expression and the cut): a plain 'dd/mm/yyyy' or 'd/m/yyyy' (or the
    # format's order), alone or before a time, the same date as `read`; any other text is left to
    # `read` (tests/test_scaling.py).
    quick = fixed_date(text, date_format)
    return read if quick is None else ibis.coalesce(quick, read)


def detect_date_format(engine, raw: ir.Table, column: str, default: str, path: str) -> str:
    """iso, dmy, mdy or excel, judged from up to 10,000 values of the column (date_formats.detect)."""
    if raw[column].type().is_temporal():
        return "native"
    sample = engine.execute(raw.select(v=raw[column].cast("string")).filter(ibis._.v.notnull()).limit(10_000))
    values = [str(v).strip() for v in sample["v"] if str(v).strip()]
    if not values:
        return default if default != "auto" else "iso"
    return detect(values, column, default, path)
