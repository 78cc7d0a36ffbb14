"""The schema registry: one entry per kind of export (its columns, how it is detected, its adapter
to canonical order lines, the columns a typed reading may parse, its default features and its
cleaning rules). Adding a schema is one entry here and its adapter.

Canonical columns (DESIGN.md): customer_id, order_id, order_date, product, quantity,
returned_quantity, amount, unit_price; plus product_name (what a product is called in reports).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from ..errors import CustsegError
from .headers import find_column, respelled
from .values import as_date, as_key, as_text, number_parser

CANONICAL = (
    "customer_id", "order_id", "order_date", "product", "quantity", "returned_quantity", "amount", "unit_price",
)


SHOPIFY_COLUMNS = {"customer_id", "order_id", "day", "product_type", "total_sales",
                   "ordered_item_quantity", "returned_item_quantity"}


# Online Retail (UCI) and Online Retail II name the same things differently.
ONLINE_RETAIL_ALIASES = {
    "invoice": ("InvoiceNo", "Invoice"),
    "stock_code": ("StockCode",),
    "description": ("Description",),
    "quantity": ("Quantity",),
    "invoice_date": ("InvoiceDate",),
    "unit_price": ("UnitPrice", "Price"),
    "customer": ("CustomerID", "Customer ID"),
}


# Names the generic adapter recognises without --map (compared lower-case, letters and digits only).
GENERIC_GUESSES = {
    "customer_id": ("customerid", "customer", "customerno", "clientid", "client", "userid", "buyerid", "memberid"),
    "order_id": ("orderid", "order", "orderno", "ordernumber", "invoiceno", "invoice", "invoiceid",
                 "transactionid", "receiptid"),
    "order_date": ("orderdate", "date", "invoicedate", "day", "purchasedate", "transactiondate", "createdat",
                   "timestamp", "datetime"),
    "product": ("product", "productid", "sku", "stockcode", "item", "itemid", "producttype"),
    "quantity": ("quantity", "qty", "units", "orderedquantity"),
    "returned_quantity": ("returnedquantity", "returnedqty", "returnedunits"),
    "amount": ("amount", "totalprice", "total", "totalamount", "sales", "totalsales", "revenue", "value",
               "ordervalue", "netsales", "spend"),
    "unit_price": ("unitprice", "price", "itemprice"),
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    for alias in aliases:
        if alias in columns:
            return alias
    return None


def canonical_values(
    customer_id, order_id, order_date, product, quantity, returned_quantity, amount, unit_price, product_name,
) -> dict[str, ir.Value]:
    return {
        "customer_id": customer_id, "order_id": order_id, "order_date": order_date, "product": product,
        "quantity": quantity, "returned_quantity": returned_quantity, "amount": amount,
        "unit_price": unit_price, "product_name": product_name,
    }


def adapt_shopify(raw: ir.Table, date_format: str, formats: dict | None = None) -> dict[str, ir.Value]:
    num = number_parser(formats)
    ordered = num(raw.ordered_item_quantity)
    product = as_text(raw.product_type)
    return canonical_values(
        customer_id=as_key(raw.customer_id),
        order_id=as_key(raw.order_id),
        order_date=as_date(raw.day, date_format),
        product=product,
        quantity=ordered,
        returned_quantity=num(raw.returned_item_quantity).abs(),
        amount=num(raw.total_sales),
        unit_price=ibis.ifelse(ordered > 0, num(raw.gross_sales) / ordered, ibis.null("float64"))
        if "gross_sales" in raw.columns else ibis.null("float64"),
        product_name=product,
    )


def adapt_online_retail(raw: ir.Table, date_format: str, formats: dict | None = None) -> dict[str, ir.Value]:
    num = number_parser(formats)
    col = {key: raw[pick(raw.columns, aliases)] for key, aliases in ONLINE_RETAIL_ALIASES.items()}
    invoice = as_text(col["invoice"])
    quantity = num(col["quantity"])
    price = num(col["unit_price"])
    # A cancellation ('C' invoice, negative quantity) returns units; it is no purchase.
    cancelled = invoice.upper().startswith("C") | (quantity < 0)
    stock = as_text(col["stock_code"])
    return canonical_values(
        customer_id=as_text(col["customer"]),
        order_id=invoice,
        order_date=as_date(col["invoice_date"], date_format),
        product=stock,
        quantity=ibis.ifelse(cancelled, 0.0, quantity),
        returned_quantity=ibis.ifelse(cancelled, quantity.abs(), 0.0),
        amount=ibis.ifelse(cancelled, 0.0, quantity * price),
        unit_price=price,
        product_name=ibis.coalesce(as_text(col["description"]), stock),
    )


def generic_mapping(columns: list[str], mapping: dict[str, str], path: str) -> dict[str, str]:
    """canonical -> source column, from --map and, where not given, recognised names."""
    mapping = {k: find_column(columns, v) or v for k, v in mapping.items()}  # ' Price ' for price
    for canonical, source in mapping.items():
        if canonical not in CANONICAL:
            raise CustsegError(f"--map {canonical}={source}: {canonical!r} is not a canonical column; "
                               f"use one of: {', '.join(CANONICAL)}.")
        if source not in columns:
            raise CustsegError(f"--map {canonical}={source}: {path} has no column {source!r}; "
                               f"its columns are: {', '.join(columns)}.")
    resolved = dict(mapping)
    by_norm = {}
    for column in columns:
        by_norm.setdefault(_norm(column), column)
    taken = set(resolved.values())
    for canonical, guesses in GENERIC_GUESSES.items():
        if canonical in resolved:
            continue
        for guess in guesses:
            column = by_norm.get(guess)
            if column is not None and column not in taken:
                resolved[canonical] = column
                taken.add(column)
                break
    return resolved


def adapt_generic(raw: ir.Table, resolved: dict[str, str], date_format: str, formats: dict | None = None) -> dict[str, ir.Value]:
    num = number_parser(formats)
    get = {name: raw[column] for name, column in resolved.items()}
    quantity = num(get["quantity"]) if "quantity" in get else None
    unit_price = num(get["unit_price"]) if "unit_price" in get else ibis.null("float64")
    amount = num(get["amount"]) if "amount" in get else quantity * unit_price
    if quantity is None:
        # Without quantities every line with a non-negative amount is a purchase of one
        # unit; a negative amount (a refund) is no purchase but still counts in spending.
        quantity = ibis.ifelse(amount < 0, 0.0, 1.0)
    order_date = as_date(get["order_date"], date_format)
    customer = as_key(get["customer_id"])
    product = as_text(get["product"]) if "product" in get else ibis.null("string")
    return canonical_values(
        customer_id=customer,
        # Without an order id an order is one customer's lines on one calendar day.
        order_id=as_key(get["order_id"]) if "order_id" in get else order_date.cast("string"),
        order_date=order_date,
        product=product,
        quantity=quantity,
        returned_quantity=num(get["returned_quantity"]).abs() if "returned_quantity" in get
        else ibis.literal(0.0),
        amount=amount,
        unit_price=unit_price,
        product_name=product,
    )


SHARED_WARNING = "one column feeds two roles"
# Canonical columns one source column may sensibly feed together.
_RELATED = ({"customer_id", "order_id"}, {"quantity", "returned_quantity"}, {"amount", "unit_price"})


def shared_column_warnings(resolved: dict[str, str]) -> list[str]:
    """A source column mapped to two unrelated canonical columns (customer_id and amount): a
    likely --map mistake, said rather than refused (it can be meant)."""
    by_source: dict[str, list[str]] = {}
    for canonical, source in resolved.items():
        by_source.setdefault(source, []).append(canonical)
    out = []
    for source, roles in by_source.items():
        if len(roles) > 1 and not any(set(roles) <= pair for pair in _RELATED):
            out.append(f"{SHARED_WARNING}: column {source!r} is used as {' and '.join(sorted(roles))}; "
                       "check the --map options")
    return out


def missing_error(path: str, schema: str, columns: list[str], needed: list[str]) -> CustsegError:
    return CustsegError(
        f"{path}: missing column(s) {', '.join(needed)} for the {schema} schema; found: {', '.join(columns)}. "
        "Map them with --map canonical=COLUMN (e.g. --map customer_id=Client)."
    )


# ---------------------------------------------------------------------------- the registry


@dataclass
class Resolved:
    """What a schema found in a source's columns."""

    date_column: str
    default_date_format: str   # when --date-format is auto and the values leave it open
    provided: set[str]         # canonical columns that come from the data (not defaults)
    mapping: dict[str, str] = field(default_factory=dict)  # canonical -> source column (generic)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Schema:
    """One kind of export."""

    name: str
    detect: Callable[[set[str]], bool]                          # do these columns look like it?
    resolve: Callable[[list[str], dict[str, str], str], Resolved]  # columns, --map, path (raises when missing)
    adapt: Callable[[ir.Table, Resolved, str, bool], dict[str, ir.Value]]  # raw, resolved, date format, number formats
    roles: Callable[[list[str], dict[str, str]], dict[str, str]]  # source column -> key/number/date (typed reading)
    default_features: tuple[str, ...]
    rules: tuple[str, ...]                 # cleaning rules (cleaning/rules.py), in the order they apply
    return_rate_level: str = "order"       # "order" (returns on the order line) or "customer" (separate lines)
    product_is_name: bool = False          # product_name is the product itself: stored once
    # columns, resolved -> canonical -> the source column it is parsed from (cleaning/parse_failures.py)
    parsed_from: Callable[[list[str], Resolved], dict[str, str]] = lambda columns, resolved: {}


def _resolve_shopify(columns: list[str], mapping: dict[str, str], path: str) -> Resolved:
    missing = sorted(SHOPIFY_COLUMNS - set(columns))
    if missing:
        raise missing_error(path, "shopify", columns, missing)
    return Resolved("day", "dmy", set(CANONICAL) - {"unit_price"})


def _roles_shopify(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    roles = {"customer_id": "key", "order_id": "key", "ordered_item_quantity": "number",
             "returned_item_quantity": "number", "total_sales": "number", "day": "date"}
    if "gross_sales" in columns:
        roles["gross_sales"] = "number"
    return roles if SHOPIFY_COLUMNS <= set(columns) else {}


def _resolve_online_retail(columns: list[str], mapping: dict[str, str], path: str) -> Resolved:
    missing = [aliases[0] for aliases in ONLINE_RETAIL_ALIASES.values() if not pick(columns, aliases)]
    if missing:
        raise missing_error(path, "online-retail", columns, missing)
    return Resolved(pick(columns, ONLINE_RETAIL_ALIASES["invoice_date"]), "mdy", set(CANONICAL))


def _roles_online_retail(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    # ids and invoices are text there ('17850.0', 'C536379')
    roles = {c: "number" for c in (pick(columns, ONLINE_RETAIL_ALIASES["quantity"]),
                                   pick(columns, ONLINE_RETAIL_ALIASES["unit_price"])) if c}
    date = pick(columns, ONLINE_RETAIL_ALIASES["invoice_date"])
    return {**roles, date: "date"} if date else roles


def _resolve_generic(columns: list[str], mapping: dict[str, str], path: str) -> Resolved:
    resolved = generic_mapping(columns, mapping, path)
    needed = [c for c in ("customer_id", "order_date") if c not in resolved]
    if "amount" not in resolved and not {"quantity", "unit_price"} <= set(resolved):
        needed.append("amount (or quantity and unit_price)")
    if needed:
        raise missing_error(path, "generic", columns, needed)
    provided = set(resolved) | ({"amount"} if "amount" not in resolved else set())
    notes = shared_column_warnings(resolved)
    notes.append("columns: " + ", ".join(f"{k}={v}" for k, v in sorted(resolved.items())))
    return Resolved(resolved["order_date"], "auto", provided, resolved, notes)


def _roles_generic(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    try:
        resolved = generic_mapping(columns, mapping, "the data")
    except Exception:  # the adapter reports a bad --map with its own message
        return {}
    roles = {}
    for canonical in CANONICAL:
        column = resolved.get(canonical)
        if column is None:
            continue
        if canonical in ("customer_id", "order_id"):
            roles[column] = "key"
        elif canonical == "order_date":
            roles[column] = "date"
        elif canonical in ("quantity", "returned_quantity", "amount", "unit_price"):
            roles[column] = "number"
    return roles


# Detection tries the entries in this order; generic (detects anything) comes last.
SCHEMAS: dict[str, Schema] = {s.name: s for s in (
    Schema("shopify", detect=lambda names: SHOPIFY_COLUMNS <= names, resolve=_resolve_shopify,
           adapt=lambda raw, r, fmt, dc: adapt_shopify(raw, fmt, dc), roles=_roles_shopify,
           default_features=("products_ordered", "average_return_rate", "total_spending"),
           rules=("missing_customer", "invalid_date", "invalid_amount", "invalid_quantity", "no_ordered_units"),
           product_is_name=True,
           parsed_from=lambda columns, r: {"order_date": "day", "amount": "total_sales",
                                           "quantity": "ordered_item_quantity",
                                           "returned_quantity": "returned_item_quantity"}),
    Schema("online-retail",
           detect=lambda names: all(any(alias in names for alias in aliases)
                                    for aliases in ONLINE_RETAIL_ALIASES.values()),
           resolve=_resolve_online_retail, adapt=lambda raw, r, fmt, dc: adapt_online_retail(raw, fmt, dc),
           roles=_roles_online_retail, default_features=("total_spending", "order_count", "avg_order_value"),
           rules=("missing_customer", "invalid_date", "invalid_quantity", "invalid_price", "non_positive_price",
                  "invalid_amount"),
           return_rate_level="customer",
           parsed_from=lambda columns, r: {"order_date": r.date_column,
                                           "quantity": pick(columns, ONLINE_RETAIL_ALIASES["quantity"]),
                                           "unit_price": pick(columns, ONLINE_RETAIL_ALIASES["unit_price"])}),
    Schema("generic", detect=lambda names: True, resolve=_resolve_generic,
           adapt=lambda raw, r, fmt, dc: adapt_generic(raw, r.mapping, fmt, dc), roles=_roles_generic,
           default_features=("recency_days", "order_count", "total_spending"),
           rules=("missing_customer", "invalid_date", "invalid_amount", "invalid_quantity"),
           product_is_name=True,
           parsed_from=lambda columns, r: {k: v for k, v in r.mapping.items() if k in PARSED}),
)}
SCHEMA_CHOICES = ("auto", *SCHEMAS)
PARSED = ("order_date", "amount", "quantity", "returned_quantity", "unit_price")  # canonicals that are parsed


def known_names() -> tuple[str, ...]:
    """Column names the schemas recognise."""
    names = set(SHOPIFY_COLUMNS) | {"gross_sales"}
    for aliases in ONLINE_RETAIL_ALIASES.values():
        names.update(aliases)
    return tuple(sorted(names))


def normalised_headers(columns: list[str]) -> list[str]:
    """The columns with known names respelled (Customer_ID -> customer_id, ' Day ' -> day), when
    that makes a schema recognisable (else the columns as they are: --map names them)."""
    renamed = respelled(columns, known_names())
    if renamed != columns and detect_schema(renamed) != "generic" and detect_schema(columns) == "generic":
        return renamed
    return columns


def detect_schema(columns: list[str]) -> str:
    names = set(columns)
    return next(s.name for s in SCHEMAS.values() if s.detect(names))


def column_roles(schema: str, columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """source column -> "key", "number" or "date", for the columns the schema's adapter parses
    that way (as_key, as_number, as_date); others are not listed."""
    return SCHEMAS[schema].roles(columns, mapping)
