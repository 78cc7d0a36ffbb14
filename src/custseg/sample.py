"""Built-in synthetic shop data for the demo, the tests and the benchmarks.

The generator is vectorised with numpy and writes in chunks, so 100 million
lines take minutes and bounded memory. The same rows, seed and schema always
give the same file. The data imitates the seed case study's Shopify export
(Nov 2018 - Apr 2019, about 2.8 lines per customer, most customers ordering one
product type, a minority returning goods, some return-only lines) and the UCI
Online Retail invoices (cancellations, lines without a customer, zero prices).
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import CustsegError
from .options import SEED
from .outputs.atomic import atomic_file

SAMPLE_SCHEMAS = ("shopify", "online-retail", "generic")

SHOPIFY_COLUMNS = [
    "product_title", "product_type", "variant_title", "variant_sku", "variant_id", "customer_id",
    "order_id", "day", "net_quantity", "gross_sales", "discounts", "returns", "net_sales", "taxes",
    "total_sales", "returned_item_quantity", "ordered_item_quantity",
]
ONLINE_RETAIL_COLUMNS = [
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country",
]
GENERIC_COLUMNS = ["customer_id", "order_date", "amount"]

PRODUCT_TYPES = [
    "Dresses", "Tops", "Jeans", "Knitwear", "Coats", "Shoes", "Boots", "Bags", "Scarves", "Hats",
    "Belts", "Socks", "Lingerie", "Swimwear", "Skirts", "Shorts", "Jackets", "Shirts", "Trousers",
    "Jumpsuits", "Sunglasses", "Jewellery", "Watches", "Gloves", "Nightwear", "Sportswear",
    "Accessories", "Gift Cards", "Home", "Beauty",
]
_COLOURS = ["Black", "White", "Navy", "Red", "Green", "Beige", "Grey", "Pink", "Blue", "Khaki"]
_SIZES = ["XS", "S", "M", "L", "XL"]
_COUNTRIES = ["United Kingdom"] * 8 + ["Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium"]

# Latent customer kinds: share, orders (base + Poisson), extra lines per order (Poisson),
# probability that a line is of the customer's main product type, chance a line is returned,
# extra units per line (Poisson), price multiplier.
_KINDS = {
    "share": np.array([0.55, 0.20, 0.20, 0.05]),
    "orders_base": np.array([1, 1, 2, 3]),
    "orders_extra": np.array([0.0, 0.3, 0.8, 2.5]),
    "lines_extra": np.array([0.4, 0.5, 0.6, 1.0]),
    "main_type": np.array([1.0, 0.9, 0.5, 0.3]),
    "return_chance": np.array([0.01, 0.7, 0.03, 0.02]),
    "units_extra": np.array([0.2, 0.3, 0.4, 1.0]),
    "price_factor": np.array([0.8, 1.0, 1.2, 2.0]),
}

_PERIODS = {
    "shopify": (dt.date(2018, 11, 1), dt.date(2019, 4, 30)),
    "online-retail": (dt.date(2010, 12, 1), dt.date(2011, 12, 9)),
    "generic": (dt.date(2023, 1, 1), dt.date(2024, 6, 30)),
}

CHUNK_CUSTOMERS = 200_000
_MODELS = 12  # models per product type: product_index = product_type * 12 + model


def _lines_of_customers(rng: np.random.Generator, n_customers: int, first_customer: int, first_order: int,
                        schema: str) -> dict[str, np.ndarray]:
    """One line per ordered product for a block of customers (all numpy arrays)."""
    kind = rng.choice(4, size=n_customers, p=_KINDS["share"])
    n_orders = _KINDS["orders_base"][kind] + rng.poisson(_KINDS["orders_extra"][kind])
    order_customer = np.repeat(np.arange(n_customers), n_orders)
    order_kind = kind[order_customer]
    n_order = order_customer.size
    order_id = first_order + np.arange(n_order)
    start, end = _PERIODS[schema]
    days = (end - start).days + 1
    # Newer customers dominate the one-off kind, which gives recency some structure.
    skew = np.where(order_kind == 0, rng.beta(2.0, 1.0, n_order), rng.random(n_order))
    order_day = (skew * days).astype(np.int64)
    lines_per_order = 1 + rng.poisson(_KINDS["lines_extra"][order_kind])
    line_order = np.repeat(np.arange(n_order), lines_per_order)
    n_line = line_order.size
    line_customer = order_customer[line_order]
    line_kind = kind[line_customer]

    n_types = len(PRODUCT_TYPES)
    popularity = 1.0 / np.arange(1, n_types + 1) ** 1.1
    popularity /= popularity.sum()
    main_type = rng.choice(n_types, size=n_customers, p=popularity)
    other_type = rng.choice(n_types, size=n_line, p=popularity)
    use_main = rng.random(n_line) < _KINDS["main_type"][line_kind]
    product_type = np.where(use_main, main_type[line_customer], other_type)
    model = rng.integers(0, _MODELS, size=n_line)
    product_index = product_type * _MODELS + model
    base_price = np.exp(2.5 + 1.3 * ((product_index * 7919) % 101) / 101.0) + 3.0
    price = np.round(base_price * _KINDS["price_factor"][line_kind] * rng.lognormal(0.0, 0.15, n_line), 2)
    units = 1 + rng.poisson(_KINDS["units_extra"][line_kind])
    returned = np.where(
        rng.random(n_line) < _KINDS["return_chance"][line_kind],
        np.maximum(1, np.round(units * rng.uniform(0.3, 1.0, n_line))).astype(np.int64),
        0,
    )
    return {
        "customer": first_customer + line_customer,
        "order": order_id[line_order],
        "day": order_day[line_order],
        "product_type": product_type,
        "product_index": product_index,
        "model": model,
        "price": price,
        "units": units.astype(np.int64),
        "returned": returned.astype(np.int64),
        "kind": line_kind,
        "n_orders": np.int64(n_order),
    }


def _dates(start: dt.date, day_offsets: np.ndarray) -> np.ndarray:
    return np.datetime64(start.isoformat(), "D") + day_offsets.astype("timedelta64[D]")


def _shopify_table(rng: np.random.Generator, lines: dict[str, np.ndarray]) -> pa.Table:
    n = lines["customer"].size
    # Some returned units come back later as return-only lines (ordered quantity 0),
    # as in the seed export; the rest are booked on the order line itself.
    separate = (lines["returned"] > 0) & (rng.random(n) < 0.3)
    ordered = lines["units"]
    returned_inline = np.where(separate, 0, lines["returned"])
    discount_rate = np.where(rng.random(n) < 0.3, np.round(rng.uniform(0.05, 0.3, n), 2), 0.0)
    gross = np.round(ordered * lines["price"], 2)
    discounts = -np.round(gross * discount_rate, 2)
    unit_net = lines["price"] * (1 - discount_rate)
    returns = -np.round(returned_inline * unit_net, 2)

    extra = np.flatnonzero(separate)
    later = np.minimum(lines["day"][extra] + rng.integers(3, 30, extra.size),
                       (_PERIODS["shopify"][1] - _PERIODS["shopify"][0]).days)
    idx = np.concatenate([np.arange(n), extra])
    is_return_line = np.concatenate([np.zeros(n, bool), np.ones(extra.size, bool)])
    ordered_all = np.where(is_return_line, 0, ordered[idx])
    returned_all = -np.where(is_return_line, lines["returned"][idx], returned_inline[idx])
    gross_all = np.where(is_return_line, 0.0, gross[idx])
    discounts_all = np.where(is_return_line, 0.0, discounts[idx])
    returns_all = np.where(is_return_line, -np.round(lines["returned"][idx] * unit_net[idx], 2), returns[idx])
    discounts_all = discounts_all + 0.0  # no negative zeros in the file
    returns_all = returns_all + 0.0
    net = np.round(gross_all + discounts_all + returns_all, 2) + 0.0
    taxes = np.round(net * 0.2, 2) + 0.0
    total = np.round(net + taxes, 2) + 0.0
    day = np.concatenate([lines["day"], later])
    # Text columns are taken from small lookup tables (a few hundred distinct values):
    # the same strings as formatting each line, at a fraction of the cost.
    product_index = lines["product_index"][idx]
    size_index = (product_index + lines["customer"][idx]) % len(_SIZES)
    variant = product_index * 10 + (lines["customer"][idx] % len(_SIZES))
    variant_id = 30_000_000_000 + variant
    return pa.table({
        "product_title": _PRODUCT_TITLES.take(product_index),
        "product_type": _PRODUCT_TYPE_TEXT.take(lines["product_type"][idx]),
        "variant_title": _VARIANT_TITLES.take((lines["model"][idx] % len(_COLOURS)) * len(_SIZES) + size_index),
        "variant_sku": _VARIANT_SKUS.take(variant % 10_000_000),
        "variant_id": pa.array(variant_id),
        "customer_id": pa.array(lines["customer"][idx]),
        "order_id": pa.array(lines["order"][idx]),
        "day": _shopify_days().take(day),
        "net_quantity": pa.array(ordered_all + returned_all),
        "gross_sales": pa.array(gross_all),
        "discounts": pa.array(discounts_all),
        "returns": pa.array(returns_all),
        "net_sales": pa.array(net),
        "taxes": pa.array(taxes),
        "total_sales": pa.array(total),
        "returned_item_quantity": pa.array(returned_all),
        "ordered_item_quantity": pa.array(ordered_all),
    })


_PRODUCT_TYPE_TEXT = pa.array(PRODUCT_TYPES)
_PRODUCT_TITLES = pa.array([f"{t} Model {m + 1}" for t in PRODUCT_TYPES for m in range(_MODELS)])
_VARIANT_TITLES = pa.array([f"{c} / {s}" for c in _COLOURS for s in _SIZES])
_VARIANT_SKUS = pa.array([f"SKU-{v}" for v in range(len(PRODUCT_TYPES) * _MODELS * 10)])


def _shopify_days() -> pa.Array:
    """Every day of the Shopify period as dd/mm/yyyy, indexed by its offset from the start."""
    start, end = _PERIODS["shopify"]
    return _day_month_year(_dates(start, np.arange((end - start).days + 1)))


def _day_month_year(dates: np.ndarray) -> pa.Array:
    """Dates as dd/mm/yyyy strings (the Shopify export's `day`)."""
    return pc.strftime(pa.array(dates.astype("datetime64[s]")), format="%d/%m/%Y")


def _join(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and literals."""
    return pc.binary_join_element_wise(*[p if isinstance(p, str) else pa.array(p).cast(pa.string()) for p in parts], "")


def _online_retail_table(rng: np.random.Generator, lines: dict[str, np.ndarray]) -> pa.Table:
    n = lines["customer"].size
    cancelled = lines["returned"] > 0
    anonymous_order = rng.random(int(lines["n_orders"])) < 0.25
    first_order = lines["order"].min() if n else 0
    anonymous = anonymous_order[lines["order"] - first_order]
    zero_price = rng.random(n) < 0.004
    extra = np.flatnonzero(cancelled)
    idx = np.concatenate([np.arange(n), extra])
    is_cancel = np.concatenate([np.zeros(n, bool), np.ones(extra.size, bool)])
    quantity = np.where(is_cancel, -lines["returned"][idx], lines["units"][idx])
    price = np.where(zero_price[idx] & ~is_cancel, 0.0, np.round(lines["price"][idx] / 6.0, 2))
    later = np.minimum(lines["day"][idx] + np.where(is_cancel, rng.integers(0, 20, idx.size), 0),
                       (_PERIODS["online-retail"][1] - _PERIODS["online-retail"][0]).days)
    minutes = 8 * 60 + (lines["order"][idx] * 7919 + is_cancel * 37) % (12 * 60)  # one time per invoice
    dates = _dates(_PERIODS["online-retail"][0], later).astype("datetime64[s]")
    month = pc.month(pa.array(dates))
    day = pc.day(pa.array(dates))
    year = pc.year(pa.array(dates))
    # The UCI file's own form: m/d/yyyy H:MM, no leading zeros on month, day and hour.
    stamp = _join(month, "/", day, "/", year, " ", minutes // 60, ":",
                  pc.utf8_lpad(pa.array(minutes % 60).cast(pa.string()), 2, "0"))
    invoice = pc.if_else(pa.array(is_cancel), _join("C", lines["order"][idx] + 536365),
                         pa.array(lines["order"][idx] + 536365).cast(pa.string()))
    customer = pc.if_else(pa.array(anonymous[idx]), pa.scalar(None, pa.string()),
                          pa.array(lines["customer"][idx] % 1_000_000 + 12000).cast(pa.string()))
    country = np.array(_COUNTRIES, dtype=object)[lines["customer"][idx] % len(_COUNTRIES)].astype(str)
    ptype = np.array(PRODUCT_TYPES, dtype=object)[lines["product_type"][idx]].astype(str)
    description = pc.utf8_upper(_join(ptype, " MODEL ", lines["model"][idx] + 1))
    return pa.table({
        "InvoiceNo": invoice,
        "StockCode": pa.array(20000 + lines["product_index"][idx]).cast(pa.string()),
        "Description": description,
        "Quantity": pa.array(quantity.astype(np.int64)),
        "InvoiceDate": stamp,
        "UnitPrice": pa.array(price),
        "CustomerID": customer,
        "Country": pa.array(country),
    })


def _generic_table(lines: dict[str, np.ndarray]) -> pa.Table:
    # One row per order: a customer id, a date and an amount, as many shops can export.
    order = lines["order"]
    first = np.r_[True, order[1:] != order[:-1]] if order.size else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    amount = np.round(np.add.reduceat(lines["price"] * (lines["units"] - lines["returned"]), starts), 2) \
        if starts.size else np.zeros(0)
    dates = _dates(_PERIODS["generic"][0], lines["day"][starts])
    return pa.table({
        "customer_id": _join("C", lines["customer"][starts]),
        "order_date": pa.array(dates),
        "amount": pa.array(amount),
    })


def generate(schema: str = "shopify", rows: int = 70_000, seed: int = SEED) -> Iterator[pa.Table]:
    """Yield the sample as Arrow tables (chunks) totalling exactly `rows` lines."""
    if schema not in SAMPLE_SCHEMAS:
        raise CustsegError(f"--schema {schema!r} is not a sample schema; use one of: {', '.join(SAMPLE_SCHEMAS)}.")
    if rows < 1:
        raise CustsegError(f"--rows must be at least 1, not {rows}.")
    rng = np.random.default_rng(seed)
    remaining = rows
    customer, order = 1_000_000, 1
    lines_per_customer = 2.7 if schema == "shopify" else (3.1 if schema == "online-retail" else 1.9)
    while remaining > 0:
        n_customers = int(min(CHUNK_CUSTOMERS, remaining / lines_per_customer + 50))
        lines = _lines_of_customers(rng, n_customers, customer, order, schema)
        customer += n_customers
        order += int(lines["n_orders"])
        if schema == "shopify":
            table = _shopify_table(rng, lines)
        elif schema == "online-retail":
            table = _online_retail_table(rng, lines)
        else:
            table = _generic_table(lines)
        if table.num_rows > remaining:
            table = table.slice(0, remaining)
        remaining -= table.num_rows
        yield table


def write_sample(path: str | os.PathLike, schema: str = "shopify", rows: int = 70_000, seed: int = SEED) -> Path:
    """Write the sample to `path` (.csv or .parquet), atomically; return the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CustsegError(f"{path}: the sample is written as .csv or .parquet; give a file name with one of those.")
    if path.parent and not path.parent.exists():
        raise CustsegError(f"{path.parent}: no such directory; create it first.")
    with atomic_file(path) as tmp:
        write_chunks_to(tmp, suffix, generate(schema, rows, seed))
    return path


def write_chunks_to(tmp: Path, suffix: str, tables: Iterator[pa.Table]) -> None:
    """Write the tables into one .csv or .parquet file at `tmp`."""
    writer = None
    # Generating a chunk (numpy) and writing the previous one (Arrow's CSV/Parquet writers,
    # which release the GIL) overlap: a writer thread takes chunks from a short queue.
    pending: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def write_chunks() -> None:
        while (table := pending.get()) is not None:
            if not failure:
                try:
                    writer.write_table(table)
                except BaseException as exc:  # reported by the main thread
                    failure.append(exc)

    thread = None
    try:
        for table in tables:
            if writer is None:
                if suffix == ".csv":
                    writer = pacsv.CSVWriter(str(tmp), table.schema,
                                             write_options=pacsv.WriteOptions(quoting_style="needed"))
                else:
                    writer = pq.ParquetWriter(str(tmp), table.schema, compression="zstd")
                thread = threading.Thread(target=write_chunks, name="custseg-sample-writer", daemon=True)
                thread.start()
            if failure:
                break
            pending.put(table)
        if thread is not None:
            pending.put(None)
            thread.join()
            thread = None
        if failure:
            raise failure[0]
        writer.close()
    except BaseException:
        if thread is not None:
            failure.append(RuntimeError("stopped"))
            pending.put(None)
            thread.join()
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass
        raise
