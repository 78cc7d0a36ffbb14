"""Refuse data whose values mostly cannot be read, rather than segment what is left.

When more than MAX_SHARE of the lines hold a date, amount, quantity or price that is not empty
but cannot be parsed, the column is probably not what custseg took it for (a wrong --map, an
unknown number or date format): the run is refused, naming the file, the column and example
values. By-design filters (lines without a customer, cancellations) and empty cells are not
parse failures and do not count. The check costs one query, and only when a rule already
dropped more than MAX_SHARE of the lines.
"""

from __future__ import annotations

from typing import Any


from ..errors import CustsegError

MAX_SHARE = 0.20
# cleaning rule -> the canonical columns whose parsing it checks
PARSE_RULES = {
    "invalid_date": ("order_date",),
    "invalid_amount": ("amount",),
    "invalid_quantity": ("quantity", "returned_quantity"),
    "invalid_price": ("unit_price",),
}
WHAT = {"order_date": "dates", "amount": "numbers", "quantity": "numbers", "returned_quantity": "numbers",
        "unit_price": "numbers"}


def refuse_if_mostly_unparsed(engine, source, quality: dict[str, Any]) -> None:
    rows = quality.get("rows_read", 0)
    # the table as read and the canonical expressions over it (a Source from sources/read.py)
    raw, values = getattr(source, "raw", None), getattr(source, "values", {})
    if not rows or not getattr(source, "parsed_from", None) or raw is None:
        return
    where = source.files[0] if len(source.files) == 1 else (f"{len(source.files)} input files" if source.files
                                                             else "the data")
    for entry in quality["rules"]:
        canonicals = PARSE_RULES.get(entry["rule"], ())
        if entry["rows_dropped"] <= MAX_SHARE * rows:
            continue
        for canonical in canonicals:
            column = source.parsed_from.get(canonical)
            if column is None or column not in raw.columns or canonical not in values:
                continue
            parsed = values[canonical]
            text = raw[column].cast("string").strip()
            customer = values["customer_id"]
            failed = raw.filter(customer.notnull() & text.notnull() & (text != "") & parsed.isnull())
            count = int(engine.execute(failed.count()))
            if count <= MAX_SHARE * rows:
                continue
            examples = engine.execute(failed.select(v=text).distinct().order_by("v").limit(3))["v"].tolist()
            hint = ("give --date-format (iso, dmy, mdy or excel) or map the date column with --map order_date=COLUMN"
                    if canonical == "order_date" else
                    f"map the right column with --map {canonical}=COLUMN or export the numbers plainly")
            raise CustsegError(
                f"{where}: column {column!r} ({canonical}): {count:,} of {rows:,} lines ({count / rows:.0%}) hold "
                f"values that are not {WHAT[canonical]} (e.g. {', '.join(map(repr, examples))}); {hint}. "
                "Nothing was segmented.")
