"""`custseg run` from a PostgreSQL table against `custseg run` from the same lines in a CSV file.

    python benchmarks/database.py [--rows 1000000] [--url postgresql://user:pw@host/db] [--text]

Without --url, a throwaway PostgreSQL cluster is started on this machine (tests/pg_cluster.py:
initdb in a temporary directory, a free port on 127.0.0.1) and removed at the end. The lines come
from `custseg sample --rows N`; they are loaded with COPY (benchmarks/db_load.py) into a typed
table (or, with --text, a table of text columns, which exercises the guarded casts). Then each run
is timed (wall clock, with benchmarks/measure.py's process-tree measurement), the segments of the
two are compared, and the bytes the database sent (the customer table, as Arrow; from custseg's
progress line) are printed beside the size of the CSV file. The results are appended to
benchmarks/results/database.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from db_load import load  # noqa: E402
from measure import measure  # noqa: E402


def custseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "custseg.cli", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", help="a PostgreSQL database to create the table in (default: a throwaway cluster)")
    parser.add_argument("--text", action="store_true", help="load every column as text")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="custseg-dbbench-"))
    data = HERE / "data" / f"shopify_{args.rows}.csv"
    data.parent.mkdir(exist_ok=True)
    if not data.exists():
        subprocess.run(custseg("sample", str(data), "--rows", str(args.rows), "--seed", "42"), check=True)
    cluster = None
    url = args.url
    if url is None:
        from pg_cluster import start  # standard library only

        cluster = tempfile.mkdtemp(prefix="custseg-dbbench-pg-")  # (not inside `work`: the server's user must reach it)
        url = start(cluster)
    try:
        table = f"public.orders_{os.getpid()}"
        started = time.perf_counter()
        load(str(data), url, table, text=args.text)
        load_seconds = time.perf_counter() - started
        env = {**os.environ, "CUSTSEG_PROGRESS": "1"}
        runs = {}
        for name, inputs in (("csv", [str(data)]), ("postgresql", [url, "--table", table])):
            out = work / name
            log = work / f"{name}.log"
            with open(log, "w") as stderr:
                measured = measure(custseg("run", *inputs, "-o", str(out), "--no-report"), stdout=subprocess.DEVNULL,
                                   stderr=stderr, env=env)
            text = log.read_text()
            received = re.search(r"([\d,]+) bytes \(([\d,]+) customer rows\) received", text.replace("\n", " "))
            # (the CPU time is custseg's own: the PostgreSQL server's is not in its process tree)
            runs[name] = {"wall_s": measured.wall_s, "cpu_s": measured.cpu_s, "peak_rss_mb": measured.peak_rss_mb,
                          "received_bytes": int(received.group(1).replace(",", "")) if received else None}
            if measured.returncode != 0:
                sys.exit(f"{name} run failed:\n{text[-2000:]}")
        import pandas as pd  # (only to compare the two runs)

        a, b = (pd.read_csv(work / name / "segments.csv", dtype={"customer_id": str}) for name in ("csv", "postgresql"))
        same = bool(a.shape == b.shape and (a.customer_id == b.customer_id).all() and (a.segment == b.segment).all())
        features = [c for c in a.columns if c not in ("customer_id", "segment", "segment_name")]
        largest_difference = float(max((a[c] - b[c]).abs().max() for c in features)) if same else None
        result = {"rows": args.rows, "text_columns": args.text, "csv_bytes": data.stat().st_size,
                  "load_seconds": round(load_seconds, 1), "runs": runs, "same_customers_and_segments": same,
                  "largest_feature_difference": largest_difference,
                  "when": time.strftime("%Y-%m-%d %H:%M:%S")}
        (HERE / "results").mkdir(exist_ok=True)
        with open(HERE / "results" / "database.jsonl", "a") as fh:
            fh.write(json.dumps(result) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        if cluster is not None:
            from pg_cluster import stop

            stop(cluster)


if __name__ == "__main__":
    main()
