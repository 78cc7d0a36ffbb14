"""The baseline: the seed notebook's pipeline, as a pandas + scikit-learn user runs it.

A faithful reimplementation of the seed case study's notebook on a Shopify-schema CSV:

1. `pd.read_csv` of the whole export (default parser, default dtypes);
2. drop lines whose `ordered_item_quantity` <= 0 (the seed's filter);
3. the seed's three features, with the seed's group-bys:
   - products_ordered    = distinct `product_type` per customer,
   - average_return_rate = mean over the customer's orders of
                           -sum(returned_item_quantity) / sum(ordered_item_quantity) per order,
   - total_spending      = sum of `total_sales` per customer;
4. log1p of the three features;
5. the elbow sweep: `KMeans(n_clusters=k, random_state=42)` for k = 1..15 on *all* customers,
   with scikit-learn's defaults otherwise (init="k-means++", n_init="auto" = 1 start for
   k-means++, max_iter=300, algorithm="lloyd"), recording inertia;
6. the final model: `KMeans(n_clusters=4, random_state=42)` on all customers, labels joined
   back to the customers, the per-segment means (the seed's profile table) printed, and the
   customer -> segment table written as CSV (what the notebook's user takes away).

Group-bys are written the idiomatic, vectorised way (no row-wise `apply`), so the baseline is
the notebook at its fastest, not a strawman.

    python benchmarks/notebook.py ORDERS.csv OUT_DIR [--k-max 15] [--k 4] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans


def seed_features(df: pd.DataFrame) -> pd.DataFrame:
    """customer_id, products_ordered, average_return_rate, total_spending (the seed's definitions)."""
    df = df[df["ordered_item_quantity"] > 0]
    products = df.groupby("customer_id")["product_type"].nunique().rename("products_ordered").reset_index()
    per_order = df.groupby(["customer_id", "order_id"])[["ordered_item_quantity", "returned_item_quantity"]] \
        .sum().reset_index()
    per_order["average_return_rate"] = -per_order["returned_item_quantity"] / per_order["ordered_item_quantity"]
    return_rate = per_order.groupby("customer_id")["average_return_rate"].mean().reset_index()
    spending = df.groupby("customer_id")["total_sales"].sum().rename("total_spending").reset_index()
    customers = products.merge(return_rate, on="customer_id").merge(spending, on="customer_id")
    return customers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("out")
    parser.add_argument("--k-max", type=int, default=15)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    df = pd.read_csv(args.csv)
    seconds["read_csv"] = time.perf_counter() - t

    t = time.perf_counter()
    customers = seed_features(df)
    del df
    features = customers[["products_ordered", "average_return_rate", "total_spending"]]
    X = np.log1p(features)
    seconds["features"] = time.perf_counter() - t

    t = time.perf_counter()
    sse = []
    for k in range(1, args.k_max + 1):
        sse.append(KMeans(n_clusters=k, random_state=args.seed).fit(X).inertia_)
    seconds["elbow"] = time.perf_counter() - t

    t = time.perf_counter()
    model = KMeans(n_clusters=args.k, random_state=args.seed).fit(X)
    customers["segment"] = model.labels_
    profile = customers.groupby("segment")[["products_ordered", "average_return_rate", "total_spending"]].mean()
    profile["customers"] = customers.groupby("segment").size()
    print(profile.to_string())
    customers.to_csv(out / "segments.csv", index=False)
    seconds["final_fit_and_write"] = time.perf_counter() - t

    (out / "summary.json").write_text(json.dumps({
        "customers": int(len(customers)), "k": args.k, "inertia": float(model.inertia_),
        "elbow_inertia": [float(v) for v in sse], "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
