"""Best sellers per segment, ranked by how many of the segment's customers bought them (issue 17).

Ranking by units let one bulk buyer of 108 hair clips put them second in a segment of 1,050
customers; what a segment has in common is what many of its customers buy. So the default rank
is the number of buying customers, ties broken by revenue, then units, then product code (a
stable order). Units, revenue and the share of the segment's customers who bought it stand beside
each product. `by` may also rank by "quantity" or "revenue" (one block of `top` rows per segment
and ranking, as in profiles.sellers.best_sellers, which this replaces).

Lazy (an Ibis expression run by the engine). A customer counts once per product however many
lines they bought it on: lines are summed per (segment, product, customer) with two plain
group-bys rather than a distinct count, which keeps a set of customers per product in memory
that DuckDB cannot spill. Only purchases count (quantity > 0); returns do not make a best seller.
"""

from __future__ import annotations

from typing import Sequence

import ibis
import ibis.expr.types as ir

from ..errors import CustsegError

RANKINGS = ("customers", "quantity", "revenue")
# what breaks ties after the ranking measure, in order
_TIE_BREAKS = {"customers": ("revenue", "quantity"), "quantity": ("customers", "revenue"),
               "revenue": ("customers", "quantity")}
COLUMNS = ("segment", "by", "rank", "product", "product_name", "customers", "customer_share", "quantity", "revenue")


def best_sellers(lines: ir.Table, assignment: ir.Table, top: int = 10, per_customer: bool = False,
                 by: Sequence[str] = ("customers",)) -> ir.Table:
    """Top `top` products per segment for each ranking in `by` (lazy).

    `lines`: order lines (customer_id, product, product_name, quantity, amount), or with
    `per_customer` rows already unique per (customer, product) (features.customer_products);
    `assignment`: customer_id, segment. Columns: COLUMNS; `customer_share` is the share of the
    segment's customers who bought the product (0 to 1)."""
    by = list(dict.fromkeys(by))
    unknown = [b for b in by if b not in RANKINGS]
    if not by or unknown:
        raise CustsegError(f"best sellers rank by {', '.join(RANKINGS)}, not {', '.join(unknown) or 'nothing'}.")
    if top < 1:
        raise CustsegError(f"best sellers: top must be at least 1, not {top}.")
    purchases = lines.filter(lines.quantity > 0)
    joined = purchases.join(assignment, "customer_id")
    if not per_customer:
        joined = joined.group_by(["segment", "product", "customer_id"]).aggregate(
            product_name=joined.product_name.max(),
            quantity=joined.quantity.cast("decimal(38, 9)").sum(),
            amount=joined.amount.cast("decimal(38, 9)").sum(),
        )
    per_product = joined.group_by(["segment", "product"]).aggregate(
        product_name=joined.product_name.max(),
        customers=joined.count(),
        quantity=joined.quantity.cast("decimal(38, 9)").sum().cast("float64"),
        revenue=joined.amount.cast("decimal(38, 9)").sum().cast("float64"),
    )
    sizes = assignment.group_by("segment").aggregate(segment_customers=assignment.count())
    per_product = per_product.join(sizes, "segment")
    per_product = per_product.mutate(
        customer_share=per_product.customers.cast("float64") / per_product.segment_customers.cast("float64"))
    ranked = []
    for measure in by:
        order = [ibis.desc(per_product[measure])] + [ibis.desc(per_product[t]) for t in _TIE_BREAKS[measure]]
        rank = ibis.row_number().over(group_by=per_product.segment, order_by=order + [per_product.product]) + 1
        ranked.append(per_product.mutate(by=ibis.literal(measure), rank=rank).filter(ibis._.rank <= top))
    result = ranked[0]
    for more in ranked[1:]:
        result = result.union(more)
    return result.select(*COLUMNS).order_by(["segment", "by", "rank"])
