"""Numbers written for people: the format of each number column, decided from its values, and
the expression that parses it in the engine.

Exports write amounts as `1,234.50`, `1.234,50`, `€ 139,12`, `77.183,60 €`, `(12.50)`,
`1 234,56` (with a plain, no-break or narrow no-break space), `EUR 12`, `12.50-`. Which of
'.' and ',' is the decimal mark is decided per column from a sample of its values:

* a value with both marks: the last one is the decimal mark (`77.183,60` -> ',');
* a mark that appears twice in a value groups thousands (`1.234.567` -> '.' groups, ',' decimal);
* one mark followed by other than three digits is the decimal mark (`139,12`, `12.5`);
* one mark followed by exactly three digits (`77.184`, `1,234`) says nothing alone.

What the values say wins; when they say nothing, the file's convention decides: in a
';'-delimited file ',' is the decimal mark and '.' groups thousands (`77.184` = 77184), in other
files '.' is the decimal mark. Values that say both (`1.234,50` and `1,234.50` in one column)
are refused, naming examples: never a silent guess.

The parsing is one Ibis expression (it runs in the engine): a value that casts as it is (a plain
number) costs one cast; the others are cleaned (currency, spaces, parentheses, group marks) and
checked against the decided format; what does not fit becomes NULL (a counted, dropped line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from .casts import cast_number_text, cheap_try_cast, try_cast

from ..errors import CustsegError

SAMPLE_ROWS = 10_000
# Currency signs, the spaces that group digits (plain, no-break, narrow no-break, thin) and the
# apostrophe (Swiss grouping), removed before parsing.
_NOISE = "[\\s\u00a0\u202f\u2009'£$€¥₹₽₩₺₪¢]"
_CODE = r"^[A-Z]{3}|[A-Z]{3}$"  # EUR 12, 12 USD
_CLEAN = re.compile(_NOISE)
_CODE_RE = re.compile(_CODE)


@dataclass(frozen=True)
class NumberFormat:
    decimal: str = "."        # the decimal mark; the other of '.' and ',' groups thousands
    reason: str = "default"   # "values" (the values show it) or "convention"


POINT = NumberFormat(".", "default")


def _bare(value: str) -> str:
    text = _CODE_RE.sub("", _CLEAN.sub("", value.strip()))
    return text.strip("()+-\u2212")


def vote(value: str) -> str | None:
    """'.' or ',' when this one value shows its decimal mark, else None."""
    text = _bare(value)
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        return "." if text.rfind(".") > text.rfind(",") else ","
    for mark, other, count in ((".", ",", dots), (",", ".", commas)):
        if count > 1:
            return other  # a mark repeated groups thousands
        if count == 1:
            after = text.split(mark, 1)[1]
            digits = re.match(r"\d*", after).group(0)
            if len(digits) != 3 or len(after) != len(digits):
                return mark
    return None


def _undecided(value: str) -> bool:
    """One mark followed by exactly three digits ('77.184', '1,234'): it says nothing alone."""
    return vote(value) is None and ("." in value or "," in value)


def _mixed_error(where: str, column: str, comma: list[str], point: list[str], undecided: list[str]) -> CustsegError:
    return CustsegError(
        f"{where}: column {column!r} mixes number formats ({', '.join(map(repr, comma[:2]))} with a decimal comma, "
        f"{', '.join(map(repr, point[:2]))} with a decimal point), so {undecided[0]!r} could mean either; "
        "export the column in one format and run again.")


@dataclass
class _Tally:
    """What a column's values show: up to three examples of each decimal mark, and of values that
    show none ('77.184')."""
    shown: dict[str, list[str]]
    undecided: list[str]

    def add(self, values: list[str]) -> _Tally:
        for value in values:
            if "." not in value and "," not in value:
                continue  # shows no mark and is not undecided: nothing to count
            mark = vote(value)
            if mark and len(self.shown[mark]) < 3:
                self.shown[mark].append(value)
            elif mark is None and len(self.undecided) < 3:
                self.undecided.append(value)
            if len(self.undecided) == 3 and all(len(v) == 3 for v in self.shown.values()):
                break  # every list full: no further value changes the decision
        return self


def _tally(values: list[str]) -> _Tally:
    return _Tally({".": [], ",": []}, []).add(values)


def decide(tally: _Tally, delimiter: str | None, where: str, column: str) -> NumberFormat:
    """The decimal mark of the column's values that do not show theirs ('77.184'), from sampled
    values (see the module's docstring). reason: "values" (other values show the mark),
    "convention" (none does: the file's convention decides), "mixed" (values show both marks:
    each is read with its own, and a value showing none is refused) or "plain" (no mark at all).
    `tally`: what the sampled values show (_tally)."""
    shown, undecided = tally.shown, tally.undecided
    convention = "," if delimiter == ";" else "."
    if shown["."] and shown[","]:
        if undecided:
            raise _mixed_error(where, column, shown[","], shown["."], undecided)
        return NumberFormat(convention, "mixed")
    if shown["."]:
        return NumberFormat(".", "values")
    if shown[","]:
        return NumberFormat(",", "values")
    return NumberFormat(convention, "convention" if undecided else "plain")


def parse(value: ir.Value, fmt: NumberFormat | None = None) -> ir.FloatingValue:
    """A float64, NULL where the text is not a number in the format.

    Each intermediate value is used as few times as possible: Ibis inlines a value at every
    use, and DuckDB evaluates what a CASE repeats for every row (the slow path therefore sees
    only the values the plain cast did not take; the others are NULL there)."""
    fmt = fmt or POINT
    dtype = value.type()
    if dtype.is_numeric() or dtype.is_boolean():
        return value.cast("float64")
    text = value.cast("string")
    # A plain number casts as it is (the cast ignores surrounding whitespace). With a decimal
    # comma a plain '77.184' means 77184: the fast path only takes values without a dot.
    fast = try_cast(text, "float64")
    if fmt.decimal == ",":
        fast = ibis.ifelse(text.contains("."), ibis.null("float64"), fast)
    # Where the engine's cast is a guard of several patterns, the slow path reads every value
    # (its SQL would otherwise repeat the guard at each use of `rest`: SQLite's parser overflows).
    rest = ibis.ifelse(fast.isnull(), text, ibis.null("string")) if cheap_try_cast() else text
    # Currency signs and codes, grouping spaces; the minus sign U+2212 as '-'.
    cleaned = rest.re_replace(f"{_NOISE}|{_CODE}", "").replace("\u2212", "-")
    negative = cleaned.re_search(r"^\(.*\)$|^[^-].*-$")        # (12.50), 12.50-
    body = cleaned.re_replace(r"^\(|\)$|-$", "")
    default_comma = ibis.literal(fmt.decimal == ",")
    # Each value is read with the decimal mark it shows; one that shows none with the column's.
    as_comma = body.re_search(_SHOWS_COMMA) | (default_comma & ~body.re_search(_SHOWS_POINT))
    plain = ibis.ifelse(
        as_comma,
        ibis.ifelse(body.re_search(r"^[-+]?(\d{1,3}(\.\d{3})+|\d*)(,\d+)?$"),
                    body.replace(".", "").replace(",", "."), ibis.null("string")),
        ibis.ifelse(body.re_search(r"^[-+]?(\d{1,3}(,\d{3})+|\d*)(\.\d+)?([eE][-+]?\d+)?$"),
                    body.replace(",", ""), ibis.null("string")))
    number = cast_number_text(plain)
    return ibis.coalesce(fast, ibis.ifelse(negative, -number, number))


def sample_values(engine, raw: ir.Table, columns: list[str]) -> dict[str, list[str]]:
    """Up to SAMPLE_ROWS non-empty text values of each text column (one query). Values with a mark
    ('.' or ',') come first: they are the ones that tell the format."""
    text = [c for c in dict.fromkeys(columns) if c in raw.columns and raw[c].type().is_string()]
    if not text:
        return {}
    out: dict[str, list[str]] = {}
    head = engine.execute(raw.select(*text).limit(SAMPLE_ROWS))
    for column in text:
        out[column] = [str(v) for v in head[column] if v is not None and str(v).strip()]
    return out


def formats_for(engine, raw: ir.Table, columns: list[str], delimiter: str | None, where: str,
                warnings: list[str] | None = None, scan: bool = True) -> dict[str, NumberFormat]:
    """column -> its NumberFormat, for the number columns read as text (`scan`: the whole columns are
    searched for values that decide or refuse, one query; else the sample alone)."""
    samples = sample_values(engine, raw, columns)
    tallies = {column: _tally(values) for column, values in samples.items()}
    for column, tally in tallies.items():
        decide(tally, delimiter, where, column)  # the sample alone may already be refused
    further = _further_down(engine, raw, list(samples)) if scan else {}
    formats = {column: decide(tally.add(further.get(column, [])), delimiter, where, column)
               for column, tally in tallies.items()}
    for column, fmt in formats.items():
        if fmt.reason == "convention" and delimiter != ";" and warnings is not None:
            example = next((v for v in samples[column] if _undecided(v)), "")
            mark = "decimal point" if fmt.decimal == "." else "decimal comma"
            warnings.append(
                f"{where}: column {column!r}: no value shows its decimal mark (e.g. {example!r}); read with a "
                f"{mark}, the convention of a {'comma' if delimiter == ',' else 'non-semicolon'}-delimited file")
    return formats


# A value that shows its decimal mark (vote() in SQL): both marks, one mark repeated, or one mark
# followed by other than three digits.
_SHOWS_COMMA = r"\.[0-9]*,|,([0-9]{1,2}|[0-9]{4,})([^0-9]|$)|\.[0-9]+\."
_SHOWS_POINT = r",[0-9]*\.|\.([0-9]{1,2}|[0-9]{4,})([^0-9]|$)|,[0-9]+,"
_UNDECIDED = r"^[^.,]*[0-9][.,][0-9]{3}[^0-9.,]*$"


def _further_down(engine, raw: ir.Table, columns: list[str]) -> dict[str, list[str]]:
    """One scan (in the engine) of the whole of each column: a value that shows a decimal comma,
    one that shows a decimal point, one that shows none ('77.184'), where there are such values."""
    if not columns:
        return {}
    shows = {}
    for i, column in enumerate(columns):
        value = raw[column]
        marked = value.contains(".") | value.contains(",")
        for key, pattern in (("c", _SHOWS_COMMA), ("p", _SHOWS_POINT), ("u", _UNDECIDED)):
            shows[f"{key}{i}"] = ibis.ifelse(marked & value.re_search(pattern), value, ibis.null("string")).min()
    found = engine.execute(raw.aggregate(**shows)).iloc[0].to_dict()
    return {column: [v for v in (found[f"c{i}"], found[f"p{i}"], found[f"u{i}"]) if isinstance(v, str)]
            for i, column in enumerate(columns)}
