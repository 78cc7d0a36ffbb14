"""--keep email,country: carry user columns that are constant per customer into the segments table
and the audiences (issue 17).

A kept column must hold one value per customer: lines of one customer that disagree (two
e-mail addresses, two countries) are refused with the column and an example customer, since
either value would be a guess. Missing values are not a disagreement: a customer whose lines hold
one e-mail address and some blanks keeps that address; a customer with only blanks keeps a blank.

Constancy is checked as min == max per customer rather than with a distinct count: both answer
"more than one distinct non-null value?", but min and max are plain aggregates that every engine
computes in constant memory per group and DuckDB spills, where a distinct count keeps a set of
values per customer in memory.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CustsegError
from ..options import flag

# Columns of the segments table a kept column may not replace.
RESERVED = ("customer_id", "segment", "segment_name")


def parse_keep(text: str | Sequence[str] | None) -> list[str]:
    """`--keep email,country` (or a list) as a list of distinct column names, in order."""
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else [p for item in text for p in str(item).split(",")]
    names = [p.strip() for p in parts if p.strip()]
    return list(dict.fromkeys(names))


def check_keep(keep: Sequence[str], columns: Iterable[str], reserved: Iterable[str] = RESERVED) -> None:
    """Refuse a kept column the lines do not have (naming those they have), or one that would
    replace a column of the segments table."""
    columns = list(columns)
    reserved = set(reserved)
    for name in keep:
        if name in reserved:
            raise CustsegError(f"{flag('keep')} {name}: the segments table has a column {name!r} already; keep "
                               "other columns.")
    unknown = [n for n in keep if n not in columns]
    if unknown:
        offer = [c for c in columns if c not in reserved]
        raise CustsegError(f"{flag('keep')} {', '.join(unknown)}: no such column in the data; the columns are "
                           f"{', '.join(offer) or '(none besides the customer id)'}.")


def kept_columns(lines: ir.Table, keep: str | Sequence[str] | None, reserved: Iterable[str] = RESERVED,
                 check: bool = True) -> ir.Table | None:
    """customer_id and the kept columns, one row per customer (lazy); None when nothing is kept.

    `lines`: order lines with a customer_id column and the user's columns. With `check`, runs one
    small query first (at most one row comes back) and raises CustsegError naming the first column
    and customer (in id order) whose lines hold two different values."""
    keep = parse_keep(keep)
    if not keep:
        return None
    check_keep(keep, lines.columns, reserved)
    if check:
        check_constant(lines, keep)
    return lines.group_by("customer_id").aggregate(**{name: lines[name].max() for name in keep})


def check_constant(lines: ir.Table, keep: Sequence[str]) -> None:
    """Raise CustsegError if a kept column holds two different values for one customer."""
    metrics = {}
    for name in keep:
        metrics[f"{name}__lo"] = lines[name].min()
        metrics[f"{name}__hi"] = lines[name].max()
    per_customer = lines.group_by("customer_id").aggregate(**metrics)
    differs = [per_customer[f"{n}__lo"] != per_customer[f"{n}__hi"] for n in keep]
    condition = differs[0]
    for d in differs[1:]:
        condition = condition | d
    bad = per_customer.filter(condition.fill_null(False)).order_by("customer_id").limit(1).to_pyarrow().to_pylist()
    if not bad:
        return
    row = bad[0]
    for name in keep:
        lo, hi = row[f"{name}__lo"], row[f"{name}__hi"]
        if lo is not None and lo != hi:
            raise CustsegError(
                f"{flag('keep')} {name}: customer {row['customer_id']} has more than one value ({_show(lo)} and "
                f"{_show(hi)}); keep only columns with one value per customer.")


def _show(value) -> str:
    text = str(value)
    return repr(text[:40] + "..." if len(text) > 40 else text)


def with_kept(segments: ir.Table, kept: ir.Table | None) -> ir.Table:
    """The segments table (customer_id first) with the kept columns joined on (a left join: every
    customer keeps their row)."""
    if kept is None:
        return segments
    return segments.left_join(kept, "customer_id").select(segments, *[kept[c] for c in kept.columns
                                                                      if c != "customer_id"])



def kept_table(kept_lines: ir.Table | None, keep: str | Sequence[str] | None) -> pa.Table | None:
    """customer_id (as text, as the customer table has it) and the kept columns, one row per
    customer, checked for one value per customer; None when nothing is kept."""
    if kept_lines is None or not parse_keep(keep):
        return None
    lines = kept_lines.filter(kept_lines.customer_id.notnull())
    lines = lines.mutate(customer_id=lines.customer_id.cast("string"))
    table = kept_columns(lines, keep).to_pyarrow()
    return table.combine_chunks() if isinstance(table, pa.Table) else table


def attach(segments: pa.Table, kept: pa.Table | None) -> pa.Table:
    """The segments table (any column order, customer_id text) with the kept columns appended,
    row for row (a customer without a value gets a null); refuses a kept column named like one of
    the table's columns (a feature, say)."""
    if kept is None:
        return segments
    clash = [c for c in kept.column_names if c != "customer_id" and c in segments.column_names]
    if clash:
        raise CustsegError(f"{flag('keep')} {', '.join(clash)}: the segments table has a column of that name already "
                           "(a feature); keep other columns.")
    ids = segments.column("customer_id")
    if not pa.types.is_string(ids.type):
        ids = ids.cast(pa.string())
    where = pc.index_in(ids, value_set=kept.column("customer_id").cast(pa.string()))
    for name in kept.column_names:
        if name != "customer_id":
            segments = segments.append_column(name, kept.column(name).take(where))
    return segments
