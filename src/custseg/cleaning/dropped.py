"""Where the dropped lines are: malformed CSV lines the reader skipped, and the first lines each
cleaning rule dropped, with their line numbers (for data_quality.json and a summary on stderr).

Counting costs nothing extra: the reader records malformed lines in DuckDB "rejects" tables
while the cleaning counts are computed. Line numbers of lines dropped by a cleaning rule are
found only when a rule dropped something, by a query per rule over at most the first
`SCAN_ROWS` rows of each file (it stops at the rule's fifth example), then mapped to
physical line numbers by reading those lines once more (blank lines, which the reader skips,
and malformed lines are accounted for).
"""

from __future__ import annotations

from typing import Any

from .rules import Cleaned, drop_reason
from ..errors import CustsegError
from ..sources.files import file_kind
from ..sources.read import Source, SourceSpec, adapt, read_raw
from ..sources.schemas import column_roles
from ..sources.text_files import open_bytes

EXAMPLES = 5            # line numbers listed per rule
SCAN_ROWS = 1_000_000   # rows per file searched for examples (bounds the cost on huge files)
EXPECTED_SCAN_ROWS = 10_000  # the same for a filter by design (cleaning.Rule.expected), never warned about:
#   a courtesy that costs ~0.2 s per 100,000 rows it reads in vain (the file is read and parsed again)
MALFORMED = {
    "rule": "malformed_line",
    "description": "a CSV line that cannot be split into the header's fields (more fields than the header, "
                   "an unclosed quote, or bytes that are not text in the file's encoding); skipped by the reader",
}


def _row_lines(path: str, rows: set[int], skipped: set[int]) -> dict[int, int]:
    """Data row index (0-based, as the reader produced the rows) -> the line number (1-based) where
    the row starts. A quoted field may hold line breaks: a record goes on while its quotes are
    unbalanced. Blank lines (which the reader skips) and malformed lines are not rows."""
    out: dict[int, int] = {}
    if not rows:
        return out
    row = -1
    open_quote = False
    header = False
    with open_bytes(path) as fh:
        for number, line in enumerate(fh, start=1):
            starts = not open_quote
            if line.count(b'"') % 2:
                open_quote = not open_quote
            if not starts or number in skipped or not line.strip():
                continue
            if not header:  # the first line that is not blank
                header = True
                continue
            row += 1
            if row in rows:
                out[row] = number
                if len(out) == len(rows):
                    break
    return out


def first_dropped_lines(engine, source: Source, cleaned: Cleaned, spec: SourceSpec, rules: list[int],
                        malformed: dict[str, list[int]]) -> dict[int, list[dict[str, Any]]]:
    """Rule index (1-based) -> up to EXAMPLES places ({"file", "line"} in a CSV file, {"file", "row"}
    otherwise) of lines the rule dropped."""
    if not engine.numbers_dropped_lines or not source.files or not rules:
        return {}
    places: dict[int, list[dict[str, Any]]] = {r: [] for r in rules}
    with engine.file_order():  # rows numbered in file order
        for path in source.files:
            wanted = [r for r in rules if len(places[r]) < EXAMPLES]
            if not wanted:
                break
            kind = file_kind(path)
            roles = _typed_roles(source, spec) if kind == "csv" else None
            raw, columns = read_raw(engine, [path], spec.sheet, roles, source.date_format)
            again = SourceSpec(inputs=[path], schema=source.schema, mapping=dict(spec.mapping), sheet=spec.sheet,
                               date_format=source.date_format)
            bound = {r: EXPECTED_SCAN_ROWS if cleaned.rules[r - 1].expected else SCAN_ROWS for r in wanted}
            lines = adapt(engine, raw.limit(max(bound.values())), columns, again, [path],
                          formats=source.number_formats).lines
            reasons = lines.select(reason=drop_reason(lines, cleaned.rules))
            found = []
            for reason in wanted:
                rows = engine.rows_where(reasons, reason, bound[reason], EXAMPLES)  # stops at the last example
                found += [{"row_index": r[0], "reason": r[1]} for r in rows]
            if kind == "csv":
                lines_of = _row_lines(path, {f["row_index"] for f in found}, set(malformed.get(path, [])))
                label = "line"
            else:  # Parquet, .xlsx: the row below the header
                lines_of = {f["row_index"]: f["row_index"] + (2 if kind == "xlsx" else 1) for f in found}
                label = "row"
            for f in sorted(found, key=lambda f: f["row_index"]):
                number = lines_of.get(f["row_index"])
                if number is not None and len(places[f["reason"]]) < EXAMPLES:
                    places[f["reason"]].append({"file": path, label: int(number)})
    return places


def _typed_roles(source: Source, spec: SourceSpec) -> dict[str, str] | None:
    """The column roles of the run's typed CSV reading (csv_dialect.py), so that the search reads the
    file exactly as the run did: typed columns compile to a fifth of the text parser's SQL (70k
    lines: the search 0.25-0.30 s -> 0.08 s). Only for one file: the types are decided from the
    files' samples, so one file of several read alone could be typed otherwise, and a row the run
    parsed could be rejected here (every later row's number shifted). None: read as text."""
    if not source.typed_rejects or len(source.files) != 1:  # (a typed reading always has its rejects tables)
        return None
    return column_roles(source.schema, source.columns, spec.mapping)  # as sources/read.py read_typed


def describe_drops(engine, source: Source, cleaned: Cleaned, spec: SourceSpec, quality: dict[str, Any]) -> list[str]:
    """Add the malformed lines and the first dropped lines of each rule to `quality`;
    return the stderr summary (no lines when nothing was dropped)."""
    malformed = engine.malformed_lines(source.files)
    n_malformed = sum(len(v) for v in malformed.values())
    read_csv = engine.numbers_dropped_lines and any(file_kind(f) == "csv" for f in source.files)
    if n_malformed or read_csv:  # always listed for CSV files read by DuckDB, so the schema is stable
        first = [{"file": p, "line": n} for p, lines in malformed.items() for n in lines]
        entry = dict(MALFORMED, rows_dropped=n_malformed)
        if first:
            entry["first_lines"] = first[:EXAMPLES]
        quality["rules"].insert(0, entry)
        quality["rows_read"] += n_malformed
        quality["rows_dropped"] += n_malformed
    with_drops = [i + 1 for i, r in enumerate(cleaned.rules) if _rule_entry(quality, r.name)["rows_dropped"]]
    if with_drops:
        try:
            places = first_dropped_lines(engine, source, cleaned, spec, with_drops, malformed)
        except (KeyboardInterrupt, CustsegError):
            raise
        except Exception:  # the examples are a courtesy: never fail a run for them
            places = {}
        for index, found in places.items():
            _rule_entry(quality, cleaned.rules[index - 1].name)["first_lines"] = found
    expected = {rule.name for rule in cleaned.rules if rule.expected}
    if not any(e["rows_dropped"] for e in quality["rules"] if e["rule"] not in expected):
        return []  # nothing dropped, or only by a filter by design
    several = len(source.files) > 1
    parts = []
    for entry in quality["rules"]:
        if entry["rows_dropped"]:
            where = entry.get("first_lines")
            text = f"{entry['rule']} {entry['rows_dropped']:,}"
            if where:
                more = ", …" if entry["rows_dropped"] > len(where) else ""
                text += f" ({place_text(where, several)}{more})"
            parts.append(text)
    return [f"dropped {quality['rows_dropped']:,} of {quality['rows_read']:,} lines: " + "; ".join(parts)
            + " (data_quality.json lists every rule)"]


def place_text(places: list[dict[str, Any]], several: bool = False) -> str:
    """[{"file": f, "line": 3}, {"file": f, "line": 5}] -> "lines 3, 5" (with file names when several)."""
    if not places:
        return ""
    label = "line" if "line" in places[0] else "row"
    if several:
        return ", ".join(f"{p['file']} {label} {p[label]}" for p in places)
    numbers = ", ".join(str(p[label]) for p in places)
    return f"{label}s {numbers}" if len(places) > 1 else f"{label} {numbers}"


def refuse_if_nothing_used(source: Source, quality: dict[str, Any]) -> None:
    """Every line dropped: refuse with the reasons instead of an empty segmentation."""
    if quality["rows_read"] and not quality["rows_used"]:
        where = source.files[0] if len(source.files) == 1 else (f"{len(source.files)} input files" if source.files
                                                                 else "the data")
        reasons = [e for e in quality["rules"] if e["rows_dropped"]]
        reasons.sort(key=lambda e: -e["rows_dropped"])
        top = reasons[0]
        example = f" ({place_text(top['first_lines'][:3], len(source.files) > 1)} …)" if top.get("first_lines") else ""
        raise CustsegError(
            f"{where}: none of the {quality['rows_read']:,} lines can be used; most were dropped as "
            f"{top['rule']}{example}: {top['description']}. Check the delimiter, the columns (--map) and "
            "the --date-format."
        )


def _rule_entry(quality: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in quality["rules"] if e["rule"] == name)
