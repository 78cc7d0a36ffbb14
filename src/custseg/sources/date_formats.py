"""Order dates as exports write them: the format of a date column, decided from its values, and
the parts of the parsing expression beyond values.as_date's ISO and day/month/year reading.

A column may hold dates in more than one format (ISO `2024-01-15` and `15/01/2024`): each value
is read in the format it is written in; a slashed date follows the column's order (day first or
month first), decided by the slashed values whose day is above 12. When nothing decides it and
no --date-format or schema says it, the column is refused with examples; so is a column that
shows both orders. Excel serial dates (`40513`) and dates with month names (`1 Dec 2010`,
`01-Dec-2010`, `Dec 1, 2010`) are read too.
"""

from __future__ import annotations

import re

import ibis
import ibis.expr.types as ir

from .casts import try_cast

from ..errors import CustsegError

ISO = r"^\s*(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})"
SLASHED = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})"
SERIAL = r"^\s*([2-7]\d{4})(\.\d+)?\s*$"   # Excel day numbers 20000-79999 (1954-2118)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
DAY_MONTH_NAME = rf"^\s*(\d{{1,2}})[\s\-/]+{_MONTH}[\s\-/,]+(\d{{4}})"      # 1 Dec 2010, 01-Dec-2010
MONTH_NAME_DAY = rf"^\s*{_MONTH}\s+(\d{{1,2}})(st|nd|rd|th)?,?\s+(\d{{4}})"   # Dec 1, 2010
EXCEL_EPOCH = "1899-12-30"


def named_date(text: ir.StringValue) -> ir.DateValue:
    """A date written with a month name; NULL otherwise."""
    low = text.lower()
    day1, month1, year1 = (low.re_extract(DAY_MONTH_NAME, i) for i in (1, 2, 3))
    month2, day2, year2 = (low.re_extract(MONTH_NAME_DAY, i) for i in (1, 2, 4))
    first = low.re_search(DAY_MONTH_NAME)
    day = ibis.ifelse(first, day1, day2)
    month = ibis.ifelse(first, month1, month2)
    year = ibis.ifelse(first, year1, year2)
    number = ibis.cases(*[(month == name, f"{i + 1:02d}") for i, name in enumerate(_MONTHS)], else_=ibis.null("string"))
    iso = year + "-" + number + "-" + day.lpad(2, "0")
    return try_cast(ibis.ifelse(low.re_search(r"[a-z]") & (year.length() == 4), iso, ibis.null("string")), "date")


def serial_date(text: ir.StringValue) -> ir.DateValue:
    """An Excel serial day number (days since 1899-12-30); NULL otherwise."""
    days = try_cast(text.re_extract(SERIAL, 1).nullif(""), "int64")
    return ibis.ifelse(days.notnull(), ibis.date(EXCEL_EPOCH) + days.as_interval("D"), ibis.null("date"))


def detect(values: list[str], column: str, default: str, path: str) -> str:
    """iso, dmy, mdy (slashed dates, in that order; ISO values are read too) or excel, from values."""
    iso = sum(bool(re.match(ISO, v)) for v in values)
    slashed = [m for m in (re.match(SLASHED, v) for v in values) if m]
    named = sum(bool(re.match(DAY_MONTH_NAME, v.lower()) or re.match(MONTH_NAME_DAY, v.lower())) for v in values)
    serial = sum(bool(re.match(SERIAL, v)) for v in values)
    if slashed:
        day_first = [m.group(0).strip() for m in slashed if int(m.group(1)) > 12]
        month_first = [m.group(0).strip() for m in slashed if int(m.group(2)) > 12]
        if day_first and month_first:
            raise CustsegError(
                f"{path}: column {column!r} holds dates written day first ({day_first[0]!r}) and month first "
                f"({month_first[0]!r}), so {_undecided(slashed)!r} could be either; export the dates in one format "
                "and run again.")
        if day_first:
            return "dmy"
        if month_first:
            return "mdy"
        if default in ("dmy", "mdy"):
            return default
        example = slashed[0].group(0).strip()
        raise CustsegError(
            f"{path}: column {column!r}: no date decides whether {example!r} is day/month or month/day; give "
            "--date-format dmy or --date-format mdy.")
    if serial and serial >= max(iso, named):
        return "excel"
    if iso or named:
        return "iso"  # with month names read too
    raise CustsegError(
        f"{path}: column {column!r} does not hold dates (e.g. {values[0]!r}); dates are read as 2024-01-31, "
        "31/01/2024, 1 Jan 2024, Jan 1, 2024 or Excel day numbers. Map the date column with --map "
        "order_date=COLUMN.")


def _undecided(slashed) -> str:
    for m in slashed:
        if int(m.group(1)) <= 12 and int(m.group(2)) <= 12:
            return m.group(0).strip()
    return slashed[0].group(0).strip()
