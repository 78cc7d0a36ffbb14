"""A copy of a generated Shopify sample whose `day` column is written in another common form.

    .venv/bin/python benchmarks/date_forms.py benchmarks/data/shopify_10m.csv /tmp/dmy_hm_10m.csv dmy_hm
    .venv/bin/python benchmarks/date_forms.py benchmarks/data/shopify_100m.parquet /tmp/dmy_hm_100m.parquet dmy_hm

`custseg sample` writes `dd/mm/yyyy`; real exports also write a time and drop leading zeros. Forms:
dmy_hm ('4/2/2019 17:29', the UCI invoices' form), iso ('2019-02-04'), isotime ('2019-02-04 17:55:29'),
shopify_tz ('2019-02-04T17:55:29+01:00'). The time is drawn from the order id (the same for every line of
an order). The output's format follows its suffix (.csv or .parquet); the input is not changed.
"""

from __future__ import annotations

import argparse

import duckdb

DAY = "strptime(day, '%d/%m/%Y')"
SECONDS = "to_seconds((hash(order_id) % 86400)::bigint)"
FORMS = {
    "dmy_hm": f"strftime({DAY}, '%-d/%-m/%Y') || ' ' || ((hash(order_id) % 24)::int)::varchar || ':' "
              "|| lpad(((hash(order_id) % 60)::int)::varchar, 2, '0')",
    "iso": f"strftime({DAY}, '%Y-%m-%d')",
    "isotime": f"strftime({DAY} + {SECONDS}, '%Y-%m-%d %H:%M:%S')",
    "shopify_tz": f"strftime({DAY} + {SECONDS}, '%Y-%m-%dT%H:%M:%S') || '+01:00'",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("form", choices=sorted(FORMS))
    args = parser.parse_args()
    con = duckdb.connect(config={"preserve_insertion_order": True})
    if args.source.endswith(".parquet"):
        lines = f"read_parquet('{args.source}')"
    else:
        lines = f"read_csv('{args.source}', all_varchar = true)"
    query = f"SELECT * REPLACE ({FORMS[args.form]} AS day) FROM {lines}"
    if args.target.endswith(".parquet"):
        options = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000"
    else:
        options = "HEADER, QUOTE '\"', FORCE_QUOTE (day)"
    con.execute(f"COPY ({query}) TO '{args.target}' ({options})")


if __name__ == "__main__":
    main()
