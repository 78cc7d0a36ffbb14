"""Best sellers of each segment by quantity and by revenue, as the pipeline makes them today (run by
the engine; profiles/best_sellers.py, ranked by buying customers, is to replace it)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from ..features import MONEY

def best_sellers(lines: ir.Table, assignment: ir.Table, top: int = 10, per_customer: bool = False) -> ir.Table:
    """Top products per segment by quantity and by revenue (lazy; run by the engine).

    `lines`: order lines, or with `per_customer` rows already unique per (customer, product)
    (features.customer_products), which are not grouped again."""
    purchases = lines.filter(lines.quantity > 0)
    joined = purchases.join(assignment, "customer_id")
    if not per_customer:
        # Two plain group-bys rather than one with a distinct count: a distinct count keeps a
        # set of customers per product in memory, which DuckDB cannot spill (tens of millions
        # of customers ran out of memory). Sums are exact decimals, so the two levels add up
        # to the same numbers.
        joined = joined.group_by(["segment", "product", "customer_id"]).aggregate(
            product_name=joined.product_name.max(),
            quantity=joined.quantity.cast(MONEY).sum(),
            amount=joined.amount.cast(MONEY).sum(),
        )
    per_product = joined.group_by(["segment", "product"]).aggregate(
        product_name=joined.product_name.max(),
        quantity=joined.quantity.cast(MONEY).sum().cast("float64"),
        revenue=joined.amount.cast(MONEY).sum().cast("float64"),
        customers=joined.count(),
    )
    ranked = []
    for by in ("quantity", "revenue"):
        rank = ibis.row_number().over(
            group_by=per_product.segment,
            order_by=[ibis.desc(per_product[by]), per_product.product],
        ) + 1
        ranked.append(per_product.mutate(by=ibis.literal(by), rank=rank).filter(ibis._.rank <= top))
    result = ranked[0].union(ranked[1])
    return result.select("segment", "by", "rank", "product", "product_name", "quantity", "revenue", "customers") \
        .order_by(["segment", "by", "rank"])
