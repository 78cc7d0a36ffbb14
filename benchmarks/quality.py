"""Did speed cost quality? custseg's model against full-data scikit-learn on the same features.

    .venv/bin/python benchmarks/quality.py benchmarks/results/custseg-10m-csv [--json OUT] [--no-sweep]

Reads a custseg output directory (segments, summary.json, model.json) and checks:

* inertia: custseg's final model (k-means++ starts on a sample, then one run on everyone)
  against `KMeans(n_clusters=k, n_init=10, max_iter=500, random_state=seed)` fitted on *all*
  customers, on the same scaled features; the gap is (custseg - sklearn) / sklearn
  (negative: custseg is better);
* k: the k custseg chose on its sweep sample against the k chosen by the same sweep and the
  same elbow rule (custseg.clustering.kmeans.sweep_k + choose_k) run on all customers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sklearn.cluster import KMeans

from custseg.clustering.choose_k import choose_k
from custseg.clustering.kmeans import sweep_k
from custseg.clustering.scaling import assign
from custseg.model import load_model


def load_features(directory: Path, features: list[str]) -> np.ndarray:
    if (directory / "segments.parquet").exists():
        table = pq.read_table(directory / "segments.parquet", columns=features)
    else:
        table = pacsv.read_csv(directory / "segments.csv").select(features)
    return np.column_stack([table.column(f).to_numpy() for f in features]).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--json", type=Path, help="write the result here too")
    parser.add_argument("--n-init", type=int, default=10, help="starts of the scikit-learn reference fit")
    parser.add_argument("--no-sweep", action="store_true", help="skip the k sweep on all customers (slow)")
    args = parser.parse_args()
    summary = json.loads((args.directory / "summary.json").read_text())
    model = load_model(args.directory / "model.json")
    X = load_features(args.directory, summary["features"])
    Z = model.scaling.transform(X)
    del X
    k, seed = summary["k"], summary["seed"]
    result: dict = {"customers": len(Z), "k": k, "k_method": summary["k_method"]}

    _, custseg_inertia = assign(Z, model.centers, with_inertia=True)
    t = time.perf_counter()
    reference = KMeans(n_clusters=k, n_init=args.n_init, max_iter=summary.get("max_iter", 500),
                       random_state=seed).fit(Z)
    result.update(
        custseg_inertia=custseg_inertia, sklearn_inertia=float(reference.inertia_),
        sklearn_n_init=args.n_init, sklearn_seconds=round(time.perf_counter() - t, 1),
        inertia_gap=(custseg_inertia - reference.inertia_) / reference.inertia_,
    )
    if not args.no_sweep and summary["k_method"] != "given":
        t = time.perf_counter()
        rows = sweep_k(Z, summary.get("k_max", 15), seed, summary.get("silhouette_sample", 10_000),
                       max_iter=summary.get("max_iter", 500))
        choice = choose_k(rows["k"], rows["inertia"], rows["silhouette"])
        result.update(k_sample=k, k_all=choice.k, k_agree=choice.k == k, k_all_reason=choice.reason,
                      sweep_all_inertia=rows["inertia"], sweep_all_seconds=round(time.perf_counter() - t, 1))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
