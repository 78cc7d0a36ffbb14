"""The floor of custseg's engine work: the same DuckDB steps written by hand, timed one by one.

custseg's read, clean and features stages run (through Ibis) a typed read of the 7 needed
columns into a temporary table with a drop reason per line, the rule counts, the (customer,
product) and (customer, order) group-bys, the customer aggregation, the join and an ordered
fetch. This script runs the plain SQL of those steps on a Shopify-schema CSV from
`custseg sample` (day/month/year dates), with nothing else: no preload, no rule line numbers,
no key normalisation. What custseg's stages cost above these numbers is its own overhead.

    .venv/bin/python benchmarks/duckdb_floor.py benchmarks/data/shopify_10m.csv [--money double]

`--money decimal` (default, as custseg) sums money as DECIMAL(38, 9) so that sums do not
depend on the order of parallel additions; `--money double` shows what float sums would save.
"""

from __future__ import annotations

import argparse
import time

import duckdb

COLUMNS = ["product_title", "product_type", "variant_title", "variant_sku", "variant_id", "customer_id", "order_id",
           "day", "net_quantity", "gross_sales", "discounts", "returns", "net_sales", "taxes", "total_sales",
           "returned_item_quantity", "ordered_item_quantity"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--money", choices=("decimal", "double"), default="decimal")
    parser.add_argument("--memory-limit", default="2400MB")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a DuckDB setting for the connection (repeatable), e.g. allocator_flush_threshold=4GB")
    args = parser.parse_args()
    money, rate = ("DECIMAL(38, 9)", "DECIMAL(38, 18)") if args.money == "decimal" else ("DOUBLE", "DOUBLE")
    types = {c: "VARCHAR" for c in COLUMNS}
    types.update(customer_id="BIGINT", order_id="BIGINT", day="DATE", total_sales="DOUBLE",
                 returned_item_quantity="DOUBLE", ordered_item_quantity="DOUBLE")
    source = (f"read_csv('{args.csv}', header = true, columns = {types}, dateformat = '%d/%m/%Y', "
              "quote = '\"', escape = '\"', delim = ',')")
    config = {"memory_limit": args.memory_limit, "preserve_insertion_order": False}
    config.update(setting.split("=", 1) for setting in args.set)
    con = duckdb.connect(config=config)
    steps = {
        "typed read into a temporary table": f"""
            CREATE TEMP TABLE lines AS SELECT customer_id, order_id, day AS order_date, product_type AS product,
              ordered_item_quantity AS quantity, abs(returned_item_quantity) AS returned_quantity, total_sales AS amount,
              (CASE WHEN customer_id IS NULL THEN 1 WHEN day IS NULL THEN 2
                    WHEN total_sales IS NULL OR isnan(total_sales) OR abs(total_sales) >= 1e18 THEN 3
                    WHEN ordered_item_quantity IS NULL OR isnan(ordered_item_quantity)
                      OR abs(ordered_item_quantity) >= 1e18 OR returned_item_quantity IS NULL
                      OR isnan(returned_item_quantity) OR abs(returned_item_quantity) >= 1e18 THEN 4
                    WHEN ordered_item_quantity <= 0 THEN 5 ELSE 0 END)::UTINYINT AS drop_reason
            FROM {source}""",
        "rule counts": "SELECT drop_reason, count(*), min(order_date), max(order_date) FROM lines GROUP BY ALL",
        "(customer, product) group-by": f"""
            CREATE TEMP TABLE products AS SELECT customer_id, product, sum(quantity::{money}) AS quantity,
              sum(amount::{money}) AS amount
            FROM lines WHERE drop_reason = 0 AND quantity > 0 GROUP BY ALL""",
        "(customer, order) group-by": f"""
            CREATE TEMP TABLE orders AS SELECT customer_id, order_id, sum(amount::{money}) AS order_amount,
              sum(quantity) FILTER (WHERE quantity > 0) AS ordered_units, sum(returned_quantity) AS returned_units,
              bool_or(quantity > 0) AS is_purchase, min(order_date) FILTER (WHERE quantity > 0) AS first_date,
              max(order_date) FILTER (WHERE quantity > 0) AS last_date, max(order_date) AS any_date
            FROM lines WHERE drop_reason = 0 GROUP BY ALL""",
        "customer aggregation": f"""
            CREATE TEMP TABLE customers AS SELECT customer_id, sum(order_amount)::DOUBLE AS total_spending,
              sum(is_purchase::INT)::DOUBLE AS order_count, min(first_date) AS first_order,
              max(last_date) AS last_order, max(any_date) AS last_seen,
              (sum(least(returned_units / ordered_units, 1.0)::{rate})
                 FILTER (WHERE is_purchase AND ordered_units > 0))::DOUBLE
                / count(*) FILTER (WHERE is_purchase AND ordered_units > 0) AS average_return_rate
            FROM orders GROUP BY ALL HAVING order_count > 0""",
        "products per customer": """
            CREATE TEMP TABLE product_counts AS
            SELECT customer_id, count(*)::DOUBLE AS products_ordered FROM products GROUP BY ALL""",
        "join and derived features": """
            CREATE TEMP TABLE features AS SELECT c.customer_id, coalesce(products_ordered, 0) AS products_ordered,
              coalesce(average_return_rate, 0) AS average_return_rate, total_spending, order_count,
              total_spending / order_count AS avg_order_value,
              (date_diff('day', last_order, (SELECT max(last_seen) FROM customers)) + 1)::DOUBLE AS recency_days,
              date_diff('day', first_order, last_order)::DOUBLE AS tenure_days
            FROM customers c LEFT JOIN product_counts USING (customer_id)""",
        "ordered fetch into Arrow": "SELECT * FROM features ORDER BY customer_id",
    }
    total = 0.0
    for label, sql in steps.items():
        started = time.perf_counter()
        result = con.sql(sql)
        rows = result.to_arrow_table().num_rows if result is not None and label.startswith("ordered") else None
        if result is not None and rows is None:
            result.fetchall()
        seconds = time.perf_counter() - started
        total += seconds
        print(f"{seconds:6.2f} s  {label}" + (f" ({rows:,} customers)" if rows else ""))
    print(f"{total:6.2f} s  total ({args.money} money sums)")


if __name__ == "__main__":
    main()
