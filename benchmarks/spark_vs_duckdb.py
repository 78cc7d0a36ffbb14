"""Wall time of `custseg run` with the DuckDB engine and with Spark (local[N]) on the built-in sample.

    .venv/bin/python benchmarks/spark_vs_duckdb.py [--rows 70000 1000000] [--master 'local[2]']
        [--spark-local-limit 2000000]

Each run is a fresh `custseg run FILE --k 4 --no-report` process (Spark's JVM start included,
as a user sees it); the stage times come from the run's summary.json. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUSTSEG = Path(sys.executable).with_name("custseg")


def run(data: Path, out: Path, extra: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run([str(CUSTSEG), "run", str(data), "--k", "4", "--no-report", "-q", "--force", "--out", str(out),
                    *extra], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return wall, json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[70_000, 1_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--spark-local-limit", type=int, default=2_000_000)
    args = parser.parse_args()
    from custseg.sample import write_sample

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| lines | customers | engine | clustering | wall s | read | clean | features | clustering | profiles |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
        for rows in args.rows:
            data = write_sample(Path(tmp) / f"shopify_{rows}.csv", "shopify", rows, 42)
            engines = [("duckdb", []), (f"spark {args.master}",
                                        ["--engine", "spark", "--spark-master", args.master,
                                         "--spark-local-limit", str(args.spark_local_limit),
                                         "--spark-conf", "spark.ui.enabled=false"])]
            for name, extra in engines:
                wall, summary = run(data, Path(tmp) / "out", extra)
                s = summary["seconds"]
                print(f"| {rows:,} | {summary['customers']:,} | {name} | {summary['clustering_backend']} | {wall:.1f} | "
                      + " | ".join(f"{s.get(k, 0):.1f}" for k in ("read", "clean", "features", "clustering",
                                                                   "profiles")) + " |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
