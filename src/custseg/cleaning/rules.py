"""Cleaning: named rules that drop order lines, each counted into data_quality.json.

A line is dropped by the first rule it breaks, so the counts add up to the lines
dropped. The rules per schema are documented in docs/features.md.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from ..sources.files import file_kind
from ..sources.read import Source
from ..sources.schemas import SCHEMAS


@dataclass(frozen=True)
class Rule:
    """A reason to drop an order line."""

    name: str
    description: str
    drops: Callable[[ir.Table], ir.BooleanValue]
    # A filter by design (the export's own bookkeeping, not a data problem): counted in
    # data_quality.json but not warned about on stderr.
    expected: bool = False


LARGEST_NUMBER = 1e18  # beyond this a number is an export error, and it would not fit an exact sum


def _not_finite(value: ir.NumericValue) -> ir.BooleanValue:
    return value.isnull() | value.isnan() | (value.abs() >= LARGEST_NUMBER)


MISSING_CUSTOMER = Rule(
    "missing_customer", "no customer id (e.g. a guest checkout): the line cannot be given to anyone",
    lambda t: t.customer_id.isnull(),
)
# No shop's order is this old: such a date is a placeholder (the Unix epoch 1970-01-01, 1900-01-01,
# Excel's 1899-12-30) or a mistyped year ('03/11/0201'), which would make the customer's tenure
# decades or centuries long.
LATEST_PLACEHOLDER_DATE = datetime.date(1970, 1, 1)
INVALID_DATE = Rule(
    "invalid_date",
    "the order date is missing, is not a date, or is 1970-01-01 or earlier (a placeholder or a mistyped year)",
    lambda t: t.order_date.isnull() | (t.order_date <= LATEST_PLACEHOLDER_DATE),
)
INVALID_AMOUNT = Rule(
    "invalid_amount", "the amount (or quantity x price) is missing, not a number, infinite or beyond ±1e18",
    lambda t: _not_finite(t.amount),
)
INVALID_QUANTITY = Rule(
    "invalid_quantity", "an ordered or returned quantity is missing, not a number, infinite or beyond ±1e18",
    lambda t: _not_finite(t.quantity) | _not_finite(t.returned_quantity),
)
NO_ORDERED_UNITS = Rule(
    "no_ordered_units",
    "ordered quantity <= 0: a line that only carries returns of an earlier order",
    lambda t: t.quantity <= 0, expected=True,
)
NON_POSITIVE_PRICE = Rule(
    "non_positive_price", "unit price <= 0 (free items, adjustments and bad-debt lines)",
    lambda t: t.unit_price <= 0,
)
MISSING_PRICE = Rule(
    "invalid_price", "the unit price is missing, not a number, infinite or beyond ±1e18",
    lambda t: _not_finite(t.unit_price),
)

RULES: dict[str, Rule] = {rule.name: rule for rule in (
    MISSING_CUSTOMER, INVALID_DATE, INVALID_AMOUNT, INVALID_QUANTITY, NO_ORDERED_UNITS, NON_POSITIVE_PRICE,
    MISSING_PRICE,
)}


def rules_for(schema: str) -> tuple[Rule, ...]:
    """The rules a schema's entry names (sources/schemas.py), in its order."""
    return tuple(RULES[name] for name in SCHEMAS[schema].rules)


def drop_reason(lines: ir.Table, rules: tuple[Rule, ...]) -> ir.IntegerValue:
    """0 for a kept line, otherwise 1 + the index of the first rule the line breaks."""
    return ibis.cases(*[(rule.drops(lines), index + 1) for index, rule in enumerate(rules)], else_=0)


@dataclass
class Cleaned:
    """Kept lines (lazy) and the rules that were applied."""

    lines: ir.Table
    rules: tuple[Rule, ...]
    counts: ir.Table  # drop_reason -> rows, first and last date (lazy; one scan of the input)
    marked: ir.Table | None = None  # every line with its drop_reason (what `lines` and `counts` come from)
    cached: str | None = None  # the engine's table of marked lines (see cache_lines)
    name_is_product: bool = False  # product_name is the product itself (Shopify): no need to aggregate it


def clean(source: Source) -> Cleaned:
    rules = rules_for(source.schema)
    marked = source.lines.mutate(drop_reason=drop_reason(source.lines, rules))
    return _from_marked(marked, rules)


def _from_marked(marked: ir.Table, rules: tuple[Rule, ...], cached: str | None = None) -> Cleaned:
    kept = marked.filter(marked.drop_reason == 0).drop("drop_reason")
    counts = marked.group_by("drop_reason").aggregate(
        rows=marked.count(), first_date=marked.order_date.min(), last_date=marked.order_date.max()
    )
    return Cleaned(lines=kept, rules=rules, counts=counts, marked=marked, cached=cached)


CACHED_BYTES_PER_LINE = 100  # a parsed line in DuckDB's temp table (measured: ~80 bytes)


def worth_caching(engine, source: Source) -> bool:
    """Cache the parsed lines: always from a database (engines/sql.py) and from text (CSV) files
    read by DuckDB, whose parsing costs most; from Parquet when the cache fits in half the memory limit (beyond that,
    reading the typed columns again is cheaper than spilling the cache)."""
    if engine.caches_lines and engine.reads_database:  # parsed once into a temporary table of the database's own
        return True
    if not engine.caches_lines or not source.files:
        return False
    kinds = {file_kind(f) for f in source.files}
    if kinds == {"csv"}:
        return True
    if kinds != {"parquet"}:
        return False
    try:
        import pyarrow.parquet as pq  # (only for Parquet inputs)

        lines = sum(pq.read_metadata(f).num_rows for f in source.files)
    except Exception:  # unreadable metadata: no cache (the query reports the file)
        return False
    limit = engine.memory_limit_bytes()
    return limit is not None and lines * CACHED_BYTES_PER_LINE <= limit // 2


def cache_lines(engine, cleaned: Cleaned, source: Source) -> Cleaned:
    """The parsed, marked order lines kept in a DuckDB temporary table (spilled to disk when large).

    Parsing text order lines (a CSV read as text, see sources/read.py) costs more than the
    aggregations that follow; with the lines cached, the CSV is read and parsed once
    instead of once per query (the rule counts, the two feature group-bys and the best
    sellers). A unit price the data does not provide (Shopify's, derived from gross sales)
    is not stored: only cleaning rules use unit prices. A product name that is the product
    itself is stored once.
    """
    marked = cleaned.marked
    stored = [c for c in marked.columns if c != "unit_price" or c in source.provided]
    same_name = "product" in stored and source.product_is_name  # Shopify, generic
    if same_name:
        stored.remove("product_name")
    name, table = engine.keep(marked.select(*stored), "custseg_lines")
    rebuilt = {c: ibis.null(marked[c].type()) for c in marked.columns if c not in stored}
    if same_name:
        rebuilt["product_name"] = table.product
    if rebuilt:
        table = table.mutate(**rebuilt).select(*marked.columns)
    cleaned = _from_marked(table, cleaned.rules, cached=name)
    cleaned.name_is_product = same_name
    return cleaned


def discard_cache(engine, cleaned: Cleaned) -> None:
    """Drop the engine's table of cached lines (a reading that is abandoned)."""
    engine.drop(cleaned.cached)


def data_quality(cleaned: Cleaned, counts: dict[int, int]) -> dict:
    """The data_quality.json structure from the counted drop reasons."""
    rows_read = int(sum(counts.values()))
    dropped = [
        {"rule": rule.name, "description": rule.description, "rows_dropped": int(counts.get(index + 1, 0))}
        for index, rule in enumerate(cleaned.rules)
    ]
    return {
        "rows_read": rows_read,
        "rows_dropped": rows_read - int(counts.get(0, 0)),
        "rows_used": int(counts.get(0, 0)),
        "rules": dropped,
    }
