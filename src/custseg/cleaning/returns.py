"""Cancellations and whether revenue is net of returns (issue 17): for data_quality.json and summary.json.

Online Retail marks a cancellation with a 'C' invoice and a negative quantity; the adapter keeps
such a line as returned units with no purchase (quantity 0, amount 0), so spending there is gross:
cancellations are not subtracted. Their count and value (returned units x unit price) are reported
so that a reader knows how much that is. Shopify's total_sales is net of returns; a generic table's
negative amounts (refunds) are summed into spending.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir

# schema -> (revenue net of returns?, how)
REVENUE_BASIS = {
    "online-retail": (False, "gross: cancellations ('C' invoices) are not subtracted from spending; their count "
                             "and value are in data_quality.json"),
    "shopify": (True, "net: Shopify's total_sales is net of discounts and returns"),
    "generic": (True, "as the amount column says: negative amounts (refunds) are subtracted from spending"),
}
CANCELLING_SCHEMAS = ("online-retail",)


def revenue_basis(schema: str) -> dict[str, Any]:
    net, how = REVENUE_BASIS.get(schema, (True, "as the amount column says"))
    return {"net_of_returns": net, "basis": how}


def cancellations(lines: ir.Table, schema: str) -> dict[str, Any] | None:
    """Count and value of the cancellation lines among the kept lines (None for schemas without them)."""
    if schema not in CANCELLING_SCHEMAS:
        return None
    cancelled = (lines.quantity <= 0) & (lines.returned_quantity > 0)
    row = lines.aggregate(
        lines=cancelled.cast("int64").sum(),
        value=(lines.returned_quantity * lines.unit_price).cast("decimal(38, 9)").sum(where=cancelled),
        purchases=lines.amount.cast("decimal(38, 9)").sum(where=~cancelled),
    ).to_pyarrow().to_pylist()[0]
    count = int(row["lines"] or 0)
    value = float(row["value"] or 0)
    purchases = float(row["purchases"] or 0)
    return {"lines": count, "value": round(value, 2),
            "share_of_purchase_value": round(value / purchases, 4) if purchases > 0 else 0.0,
            "subtracted_from_revenue": False,
            "description": "cancellation lines ('C' invoices, negative quantity) of customers kept: returned units "
                           "x unit price; they are no purchases and are not subtracted from spending"}
