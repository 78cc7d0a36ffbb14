"""custseg against the seed notebook, side by side, on generated Shopify order lines.

    .venv/bin/python benchmarks/run.py                      # 70k, 1M and 10M lines, CSV; notebook too
    .venv/bin/python benchmarks/run.py --sizes 70k --repeat 3 --floor --help-time --report-open
    .venv/bin/python benchmarks/run.py --sizes 100m --formats parquet --no-notebook
    .venv/bin/python benchmarks/run.py --sizes 10m --quality  # + the inertia / k check

For every size and format: the data is generated once with `custseg sample` (kept in
benchmarks/data/), then the notebook baseline (benchmarks/notebook.py, CSV only) and
`custseg run` (its whole default job, report included) run one after the other, each
measured by benchmarks/measure.py (wall, CPU, peak RSS of the process tree). Results are
appended to benchmarks/results/results.jsonl and printed as a Markdown table with ratios.

70k is the seed case study's size (70,052 lines, ~26,000 customers), where imports and fixed
costs are most of a run. `--floor` adds, per size, what neither tool can go below on this
machine: the imports alone (a process that imports what custseg's run imports, and one that
imports what the notebook imports) and the engine work alone (benchmarks/duckdb_floor.py).
`--help-time` times `custseg --help` (best of 3), `--report-open` opens each run's report.html
in headless Chromium (benchmarks/report_open.py, median of 3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import measure  # noqa: E402

DATA = HERE / "data"
RESULTS = HERE / "results"
SIZES = {"70k": 70_052, "1m": 1_000_000, "10m": 10_000_000, "100m": 100_000_000}
BIN = Path(sys.executable).parent
CUSTSEG = str(BIN / "custseg") if (BIN / "custseg").exists() else "custseg"
SEED = 42


def data_file(size: str, fmt: str) -> Path:
    """The generated input for a size and format (made with `custseg sample` when absent)."""
    path = DATA / f"shopify_{size}.{fmt}"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        m = measure([CUSTSEG, "sample", str(path), "--rows", str(SIZES[size]), "--seed", str(SEED)],
                    stdout=subprocess.DEVNULL)
        if m.returncode != 0:
            sys.exit(f"custseg sample failed for {path}")
        record({"kind": "generate", "size": size, "format": fmt, "lines": SIZES[size], **m.to_dict(),
                "bytes": path.stat().st_size})
        print(f"  {m.wall_s:.0f} s, {m.cpu_s:.0f} s CPU, {m.peak_rss_mb:.0f} MB peak, "
              f"{path.stat().st_size / 2**20:,.0f} MB", file=sys.stderr)
    return path


def record(row: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    row = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(), "cpus": os.cpu_count(), **row}
    with open(RESULTS / "results.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


def run_notebook(path: Path, size: str) -> dict:
    out = RESULTS / f"notebook-{size}"
    log = RESULTS / f"notebook-{size}.log"
    with open(log, "w") as fh:
        m = measure([sys.executable, str(HERE / "notebook.py"), str(path), str(out)], stdout=fh, stderr=fh)
    row = {"kind": "notebook", "size": size, "format": path.suffix[1:], **m.to_dict()}
    if m.returncode == 0:
        summary = json.loads((out / "summary.json").read_text())
        row.update(customers=summary["customers"], inertia=summary["inertia"], stages=summary["seconds"])
    return row


def run_custseg(path: Path, size: str, extra: list[str]) -> dict:
    out = RESULTS / f"custseg-{size}-{path.suffix[1:]}"
    log = RESULTS / f"custseg-{size}-{path.suffix[1:]}.log"
    command = [CUSTSEG, "run", str(path), "--out", str(out), "--force", "--quiet", *extra]
    with open(log, "w") as fh:
        m = measure(command, stdout=fh, stderr=fh)
    row = {"kind": "custseg", "size": size, "format": path.suffix[1:], **m.to_dict()}
    if m.returncode == 0:
        summary = json.loads((out / "summary.json").read_text())
        row.update(customers=summary["customers"], k=summary["k"], inertia=summary["inertia"],
                   stages=summary["seconds"], outputs=summary.get("outputs"))
    return row


# What a `custseg run` imports (cli, the flow, the clustering, the report) and what the notebook imports.
CUSTSEG_IMPORTS = ("import custseg.cli, custseg.pipeline, custseg.outputs.run, custseg.clustering.estimator, "
                   "kneed, custseg.profiles.lifecycle, custseg.outputs.report.page, plotly.offline")
NOTEBOOK_IMPORTS = "import numpy, pandas, sklearn.cluster"


def best_of(command: list[str], repeat: int) -> dict:
    runs = [measure(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(repeat)]
    return min(runs, key=lambda m: m.wall_s).to_dict()


def help_time(repeat: int = 3) -> dict:
    """`custseg --help`, best of `repeat` (the CLI imports only typer and rich for it)."""
    return {"kind": "help", **best_of([CUSTSEG, "--help"], repeat)}


def floor(path: Path, size: str, repeat: int = 3) -> list[dict]:
    """The imports alone (custseg's, the notebook's) and the engine work alone (duckdb_floor.py)."""
    rows = [{"kind": "floor-imports-custseg", "size": size, **best_of([sys.executable, "-c", CUSTSEG_IMPORTS], repeat)},
            {"kind": "floor-imports-notebook", "size": size,
             **best_of([sys.executable, "-c", NOTEBOOK_IMPORTS], repeat)}]
    if path.suffix == ".csv":
        engine = []
        for _ in range(repeat):
            out = subprocess.run([sys.executable, str(HERE / "duckdb_floor.py"), str(path)], capture_output=True,
                                 text=True)
            total = [line for line in out.stdout.splitlines() if "total" in line]
            if out.returncode == 0 and total:
                engine.append(float(total[-1].split()[0]))
        if engine:
            rows.append({"kind": "floor-engine", "size": size, "returncode": 0, "wall_s": min(engine)})
    return rows


def report_open(size: str, fmt: str) -> dict:
    """Median opening times (ms) of the run's report.html in headless Chromium."""
    from report_open import open_times  # selenium: only with --report-open

    page = RESULTS / f"custseg-{size}-{fmt}" / "report.html"
    median, _ = open_times(page, repeat=3)
    return {"kind": "report-open", "size": size, "format": fmt, "bytes": page.stat().st_size, "median_ms": median}


def quality(size: str, fmt: str) -> dict:
    out = RESULTS / f"custseg-{size}-{fmt}"
    log = RESULTS / f"quality-{size}-{fmt}.json"
    m = measure([sys.executable, str(HERE / "quality.py"), str(out), "--json", str(log)], stdout=subprocess.DEVNULL)
    row = {"kind": "quality", "size": size, "format": fmt, **m.to_dict()}
    if m.returncode == 0:
        row.update(json.loads(log.read_text()))
    return row


def table(rows: list[dict]) -> str:
    """Markdown: one line per size/format, custseg next to the notebook, with ratios."""
    lines = ["| lines | format | customers | notebook wall / CPU / peak RSS | custseg wall / CPU / peak RSS "
             "| speed-up (wall) | peak RSS, notebook / custseg |", "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["size"], r["format"]) for r in rows if r["kind"] == "custseg"},
                  key=lambda sf: (SIZES[sf[0]], sf[1]))
    for size, fmt in keys:
        cs = next(r for r in rows if r["kind"] == "custseg" and (r["size"], r["format"]) == (size, fmt))
        nb = next((r for r in rows if r["kind"] == "notebook" and (r["size"], r["format"]) == (size, fmt)), None)

        def cell(r):
            if r is None:
                return "—"
            if r["returncode"] != 0:
                return f"failed (exit {r['returncode']})"
            return f"{r['wall_s']:.1f} s / {r['cpu_s']:.1f} s / {r['peak_rss_mb'] / 1024:.2f} GB"

        ok = nb is not None and nb["returncode"] == 0 and cs["returncode"] == 0
        speed = f"{nb['wall_s'] / cs['wall_s']:.1f}×" if ok else "—"
        memory = f"{nb['peak_rss_mb'] / cs['peak_rss_mb']:.1f}×" if ok else "—"
        label = f"{SIZES[size] // 1_000_000} M" if SIZES[size] >= 1_000_000 else f"{SIZES[size]:,}"
        lines.append(f"| {label} | {fmt} | {cs.get('customers', 0):,} | {cell(nb)} | {cell(cs)} "
                     f"| {speed} | {memory} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="custseg vs the seed notebook, timed side by side.")
    parser.add_argument("--sizes", default="70k,1m,10m", help="comma-separated: 70k, 1m, 10m, 100m")
    parser.add_argument("--formats", default="csv", help="comma-separated: csv, parquet")
    parser.add_argument("--no-notebook", action="store_true", help="run custseg only")
    parser.add_argument("--notebook-max", default="10m",
                        help="largest size the notebook is run on (it needs ~0.6 GB per million lines)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (the fastest is reported)")
    parser.add_argument("--quality", action="store_true",
                        help="after custseg, compare its model with full-data scikit-learn (benchmarks/quality.py)")
    parser.add_argument("--floor", action="store_true",
                        help="also time the imports alone (custseg's, the notebook's) and the engine work alone")
    parser.add_argument("--help-time", action="store_true", help="also time `custseg --help` (best of 3)")
    parser.add_argument("--report-open", action="store_true",
                        help="also open each run's report.html in headless Chromium (needs chromium, selenium)")
    parser.add_argument("custseg_args", nargs="*", help="extra options for custseg run (after --)")
    args = parser.parse_args()
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    rows: list[dict] = []
    extras: list[dict] = []
    if args.help_time:
        row = help_time()
        record(row)
        extras.append(row)
    for size in sizes:
        for fmt in formats:
            path = data_file(size, fmt)
            for attempt in range(args.repeat):
                runs = []
                if fmt == "csv" and not args.no_notebook and SIZES[size] <= SIZES[args.notebook_max]:
                    runs.append(("notebook", lambda: run_notebook(path, size)))
                runs.append(("custseg", lambda: run_custseg(path, size, args.custseg_args)))
                for name, fn in runs:
                    print(f"{name} on {path.name} (run {attempt + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
                    row = fn()
                    record(row)
                    rows.append(row)
                    print(f"  {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU, {row['peak_rss_mb']:,.0f} MB peak"
                          + ("" if row["returncode"] == 0 else f"  FAILED (exit {row['returncode']})"),
                          file=sys.stderr, flush=True)
            if args.floor:
                for row in floor(path, size):
                    record(row)
                    extras.append(row)
            if args.report_open and "--no-report" not in args.custseg_args:
                row = report_open(size, fmt)
                record(row)
                extras.append(row)
            if args.quality:
                print(f"quality check on {size} {fmt} ...", file=sys.stderr, flush=True)
                row = quality(size, fmt)
                record(row)
                print(json.dumps({k: row.get(k) for k in ("inertia_gap", "k_sample", "k_all", "k_agree")}),
                      file=sys.stderr)
    best = []
    for key in {(r["kind"], r["size"], r["format"]) for r in rows if r["kind"] in ("notebook", "custseg")}:
        same = [r for r in rows if (r["kind"], r["size"], r["format"]) == key]
        ok = [r for r in same if r["returncode"] == 0] or same
        best.append(min(ok, key=lambda r: r["wall_s"]))
    print(table(best))
    for row in extras:
        if row["kind"] == "report-open":
            print(f"report.html ({row['size']}, {row['bytes'] / 1e6:.2f} MB) in headless Chromium, median of 3, ms: "
                  + ", ".join(f"{k} {v:,}" for k, v in row["median_ms"].items()))
        else:
            print(f"{row['kind']}{' ' + row['size'] if 'size' in row else ''}: {row['wall_s']:.2f} s wall")


if __name__ == "__main__":
    main()
