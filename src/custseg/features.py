"""Customer features: a registry of names, definitions and the Ibis aggregation behind each.

All features come out of two grouped passes over the kept order lines, written once
in Ibis so that DuckDB and Spark run the same expressions:

* orders: one row per (customer, order) with its amount, ordered and returned units;
* customers: one row per customer from the orders (and, for products_ordered, from
  the lines).

A "purchase line" is a line with ordered quantity > 0; orders and products count
purchase lines only, so a cancellation or a refund line is never an order.
Exact definitions: docs/features.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import CustsegError
from .runtime.parallel import ordered_stream
from .sources.schemas import SCHEMAS


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    unit: str                 # products | rate | money | orders | days
    needs: frozenset[str]     # canonical columns that must come from the data


MONEY = "decimal(38, 9)"   # |amount| < 1e18 is guaranteed by cleaning
RATE = "decimal(38, 18)"


def _feature(name: str, unit: str, description: str, *columns: str) -> Feature:
    """A feature computed per customer from `columns` (customer_id, which every feature needs, added)."""
    return Feature(name, description, unit, frozenset({"customer_id", *columns}))


REGISTRY: dict[str, Feature] = {f.name: f for f in (
    _feature("products_ordered", "products", "distinct products the customer ordered", "product"),
    _feature("average_return_rate", "rate", "share of ordered units the customer returned (0 = none, 1 = all)",
             "quantity", "returned_quantity"),
    _feature("total_spending", "money", "sum of the customer's line amounts", "amount"),
    _feature("order_count", "orders", "distinct orders", "order_date"),
    _feature("avg_order_value", "money", "total spending / orders", "amount", "order_date"),
    _feature("recency_days", "days", "days from the last order to the day after the last date in the data",
             "order_date"),
    _feature("tenure_days", "days", "days from the first to the last order", "order_date"),
    _feature("first_order_age_days", "days", "days from the first order to the day after the last date in the data "
             "(recency_days + tenure_days)", "order_date"),
)}

# Always computed when the data has dates (names, strategies and RFM read them), clustered or not.
LIFECYCLE = ("recency_days", "first_order_age_days", "order_count")



def parse_features(text: str | list[str] | tuple[str, ...] | None, schema: str) -> list[str]:
    """Feature names from --features (comma-separated) or the schema's defaults."""
    if text is None or text == "" or text == []:
        return list(SCHEMAS[schema].default_features)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise CustsegError(f"--features: unknown feature {unknown[0]!r}; choose from: {', '.join(REGISTRY)}.")
    if len(set(names)) != len(names):
        raise CustsegError("--features: a feature is named twice; name each once.")
    return names


def available(provided: set[str]) -> list[str]:
    """Features whose columns the source provides."""
    return [name for name, feature in REGISTRY.items() if feature.needs <= provided]


def check_features(names: list[str], provided: set[str], path: str) -> None:
    for name in names:
        missing = REGISTRY[name].needs - provided
        if missing:
            raise CustsegError(
                f"{path}: feature {name!r} needs the column(s) {', '.join(sorted(missing))}, which the data does "
                f"not have; map them with --map or choose other --features."
            )


def customer_products(lines: ir.Table, with_names: bool = True) -> ir.Table:
    """One row per (customer, product) bought: product_name, units and amount (exact decimal sums).

    What products_ordered counts and what the best sellers add up per segment: computed
    once (and kept by the engine, see pipeline.compute_features), both read it instead of
    grouping all order lines again. Without `with_names` there is no product_name (for
    products that are their own name, not worth aggregating).
    """
    purchases = lines.filter(lines.quantity > 0)
    names = {"product_name": purchases.product_name.max()} if with_names else {}
    return purchases.group_by(["customer_id", "product"]).aggregate(
        **names, quantity=purchases.quantity.cast(MONEY).sum(), amount=purchases.amount.cast(MONEY).sum())


#: The lifecycle models' summary of each customer's orders, computed beside the features from the
#: same (customer, order) table (customer_features(lifecycle=True)): purchase orders (order_count),
#: the first and last purchase order's day and the net mean value of the repeat orders — the
#: definitions of profiles.backtest.lifecycle_summary, without a second grouping of the lines.
LIFECYCLE_COLUMNS = ("lifecycle_orders", "lifecycle_first_day", "lifecycle_last_day", "lifecycle_mean_value")
#: The canonical columns the lifecycle models (and LIFECYCLE_COLUMNS) need.
LIFECYCLE_NEEDS = ("order_date", "amount")


def lifecycle_missing(provided: set[str]) -> list[str]:
    """The canonical columns the lifecycle models need and the data lacks."""
    return [c for c in LIFECYCLE_NEEDS if c not in provided]


def customer_features(lines: ir.Table, names: list[str], return_rate_level: str = "order",
                      products: ir.Table | None = None, text_ids: bool = True, lifecycle: bool = False) -> ir.Table:
    """One row per customer who made at least one purchase: customer_id and the named features.

    `return_rate_level` is "order" when returns are booked on the order line (the seed's
    mean over orders of returned / ordered units) and "customer" when they arrive as
    separate lines (returned / ordered units over all the customer's lines, capped at 1).
    `products` is customer_products(lines) when already computed. Ids come out as text
    unless `text_ids` is False (then integer ids stay integers: the caller makes them text).
    `lifecycle` adds :data:`LIFECYCLE_COLUMNS` after the features (an engine whose aggregates take
    an ORDER BY: the first order's value is the first by day, then order id).

    It is customer_columns(customer_totals(...)): an engine that keeps the totals as a table
    takes the two steps itself (pipeline.fetch_customers).
    """
    totals = customer_totals(lines, names, return_rate_level, products, lifecycle)
    return customer_columns(totals, names, text_ids, lifecycle)


def customer_totals(lines: ir.Table, names: list[str], return_rate_level: str = "order",
                    products: ir.Table | None = None, lifecycle: bool = False) -> ir.Table:
    """customer_features' group-bys: one row per purchasing customer with the sums, counts and dates
    the features are computed from (customer_columns)."""
    purchase = lines.quantity > 0
    # Money is summed as an exact decimal: the result does not depend on the order in
    # which parallel workers add the lines, so every run gives the same bytes.
    orders = lines.group_by(["customer_id", "order_id"]).aggregate(
        order_amount=lines.amount.cast(MONEY).sum(),
        ordered_units=lines.quantity.sum(where=purchase),
        returned_units=lines.returned_quantity.sum(),
        is_purchase=purchase.any(),
        first_date=lines.order_date.min(where=purchase),
        last_date=lines.order_date.max(where=purchase),
        any_date=lines.order_date.max(),
    )
    o = orders
    metrics: dict[str, ir.Value] = {
        "total_spending": o.order_amount.sum(),
        "order_count": o.is_purchase.sum().cast("float64"),
        "first_order": o.first_date.min(),
        "last_order": o.last_date.max(),
        "last_seen": o.any_date.max(),
    }
    if "average_return_rate" in names:
        if return_rate_level == "order":
            counted = o.is_purchase & (o.ordered_units > 0)
            # capped at 1: a dirty export may book more returned units than ordered on an order
            order_rate = ibis.least(o.returned_units / o.ordered_units, 1.0).cast(RATE)
            metrics["return_rate_sum"] = order_rate.sum(where=counted)
            metrics["rated_orders"] = counted.sum()
        else:
            metrics["returned_units"] = o.returned_units.sum()
            metrics["ordered_units"] = o.ordered_units.sum()
    if lifecycle:  # a purchase order's day: its first purchase line's (first_date; null for no purchase)
        metrics["lifecycle_last_date"] = o.first_date.max()
        metrics["lifecycle_first_value"] = o.order_amount.first(
            where=o.is_purchase, order_by=[o.first_date.cast("date"), o.order_id])
    customers = o.group_by("customer_id").aggregate(**metrics)
    customers = customers.filter(customers.order_count > 0)

    if "average_return_rate" in names and return_rate_level == "customer":
        rate = customers.returned_units / customers.ordered_units
        customers = customers.mutate(average_return_rate=ibis.least(rate, 1.0)).drop("returned_units", "ordered_units")
    elif "average_return_rate" in names:
        customers = customers.mutate(
            average_return_rate=customers.return_rate_sum.cast("float64") / customers.rated_orders.cast("float64")
        ).drop("return_rate_sum", "rated_orders")
    if "products_ordered" in names:
        if products is not None:  # distinct products = (customer, product) rows with a product
            products = products.group_by("customer_id").aggregate(
                products_ordered=products.product.count().cast("float64")
            )
        else:
            products = lines.filter(purchase).group_by("customer_id").aggregate(
                products_ordered=lines.filter(purchase).product.nunique().cast("float64")
            )
        customers = customers.join(products, "customer_id", how="left")
        customers = customers.mutate(products_ordered=customers.products_ordered.fill_null(0.0))
        if "customer_id_right" in customers.columns:  # (a left join keeps the right side's key)
            customers = customers.drop("customer_id_right")

    if lifecycle:  # the repeat orders' net value, exact (decimal) before total_spending becomes a float
        customers = customers.mutate(lifecycle_repeat_value=customers.total_spending - customers.lifecycle_first_value)
    return customers.mutate(total_spending=customers.total_spending.cast("float64"))


def customer_columns(customers: ir.Table, names: list[str], text_ids: bool = True, lifecycle: bool = False,
                     joined_reference: bool = False) -> ir.Table:
    """customer_features from customer_totals: the named features (and the lifecycle columns).

    Recency and age count days to the last date in the data, the latest `last_seen`: a window
    maximum over the whole table, or with `joined_reference` a one-row aggregate joined to every
    row, for a table the engine keeps (the window gathers every row in one partition: 9.8 s of CPU
    and a spill at 37M customers on DuckDB; the aggregate is one scan of a stored column)."""
    if joined_reference:
        latest = customers.aggregate(custseg_reference=customers.last_seen.max())
        customers = customers.cross_join(latest)
        reference = customers.custseg_reference
    else:
        reference = customers.last_seen.max()  # the last date in the data
    derived = {
        "avg_order_value": customers.total_spending / customers.order_count,
        "recency_days": (reference.delta(customers.last_order, unit="day") + 1).cast("float64"),
        "tenure_days": customers.last_order.delta(customers.first_order, unit="day").cast("float64"),
        "first_order_age_days": (reference.delta(customers.first_order, unit="day") + 1).cast("float64"),
    }
    customers = customers.mutate(**{name: derived[name] for name in names if name in derived})
    if "average_return_rate" in names:
        customers = customers.mutate(average_return_rate=customers.average_return_rate.fill_null(0.0))
    ids = customers.customer_id.cast("string") if text_ids else customers.customer_id  # ids may be integers
    extra = {}
    if lifecycle:
        c = customers
        repeats = c.order_count - 1
        extra = {
            "lifecycle_orders": c.order_count.cast("int32"),
            "lifecycle_first_day": c.first_order.cast("date"),
            "lifecycle_last_day": c.lifecycle_last_date.cast("date"),
            # the repeat orders' net mean (Gamma-Gamma); a one-time buyer's: their net spend
            "lifecycle_mean_value": ibis.cases(
                (repeats > 0, c.lifecycle_repeat_value.cast("float64") / repeats),
                else_=c.total_spending).fill_null(0.0),
        }
    return customers.select(ids.name("customer_id"), *[customers[name].cast("float64").name(name) for name in names],
                            **extra)


def natural_order_indices(ids) -> "pa.Array":
    """natural_order on ids held in memory (an Arrow array): the indices that sort text ids by
    length (characters), then by text (bytes), stable; integer ids (a customer table's: unique, so
    any sort gives one order) as integers."""
    if pa.types.is_integer(ids.type):  # (numpy's sort: 1.4 s on 37M ids, Arrow's 2.9 s)
        return pa.array(np.argsort(ids.to_numpy()))
    keys = pa.table({"length": pc.utf8_length(ids), "id": ids})
    return pc.sort_indices(keys, sort_keys=[("length", "ascending"), ("id", "ascending")])


def in_natural_order(columns: dict) -> None:
    """natural_order on a customer table held in memory as {name: column}, in place: each column
    is replaced by itself in that order (in one piece), so that, with no other reference to the
    table, the memory beside it is two columns, not a second table.

    The columns are put in that order two at a time (numpy's take for numbers without nulls,
    Arrow's for the rest).
    """
    order = natural_order_indices(columns["customer_id"]).to_numpy()
    if len(order) and (order[1:] > order[:-1]).all():  # already in order
        return
    arrow_order = pa.array(order)

    def ordered(name: str) -> "pa.Array":
        column = columns[name]
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        if numeric and column.null_count == 0:
            return pa.array(np.take(column.to_numpy(), order))
        return pc.take(column, arrow_order).combine_chunks()

    names = list(columns)
    # (both takes release the interpreter lock; at most two columns in flight, each replacing its own)
    for name, column in zip(names, ordered_stream(ordered, names, workers=2, ahead=1)):
        columns[name] = column


def natural_order(table: ir.Table) -> ir.Table:
    """Customers sorted by id length then id: numeric ids come out in numeric order.

    Integer ids (customer_features(text_ids=False)) are sorted as integers, which is quicker
    and the same order for ids >= 0 (negative ones come first)."""
    if table.customer_id.type().is_integer():
        return table.order_by(table.customer_id)
    return table.order_by([table.customer_id.length(), table.customer_id])
