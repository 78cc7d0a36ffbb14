"""What the lifecycle models add to a run: `custseg run` with and without them, alternating.

    .venv/bin/python benchmarks/lifecycle_share.py benchmarks/data/shopify_1m.csv --repeat 3

"Without" is the same run with the lifecycle step told the data has no dates (no summary — neither
the columns the customer table's query adds nor a query of its own —, no fit, no scores): the difference of the wall times is everything the lifecycle costs the run,
including the fit's share of the cores while it runs beside K-means (which summary.json's
seconds.lifecycle, the time on the flow's path, does not show).  Each run is a fresh process;
best of --repeat for each, and the median over the pairs of runs made one after the other.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNNER = """
import sys
if sys.argv[1] == "without":
    import custseg.pipeline as P
    P.lifecycle_in_query = lambda engine, source: False
    def start_lifecycle(features, model, options, stages):
        from custseg.profiles.lifecycle import Begun  # where the flow imports it: pandas, SciPy (preloaded)
        return Begun(options.horizon, absent={"status": "absent", "reason": "benchmark: lifecycle off"})
    P.start_lifecycle = start_lifecycle
from custseg.cli import entry
sys.argv = ["custseg", "run", *sys.argv[2:]]
entry()
"""


def once(mode: str, data: str, out: Path, extra: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUNNER, mode, data, "--out", str(out), "--force", "--quiet", *extra],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return wall, json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--report", action="store_true", help="write the report too (default --no-report)")
    args = parser.parse_args()
    extra = [] if args.report else ["--no-report"]
    best: dict[str, tuple[float, dict]] = {}
    pairs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            walls = {}
            for mode in ("with", "without"):
                wall, summary = once(mode, args.data, Path(tmp) / mode, extra)
                print(f"{mode:8s} run {i + 1}: {wall:.2f} s  (summary.json {summary['seconds']}, "
                      f"lifecycle {summary['seconds'].get('lifecycle', 0):.2f} s, "
                      f"{summary['lifecycle'].get('seconds', {})})", flush=True)
                walls[mode] = wall
                if mode not in best or wall < best[mode][0]:
                    best[mode] = (wall, summary)
            pairs.append((walls["with"], walls["without"]))
    w, wo = best["with"][0], best["without"][0]
    print(f"\nbest of {args.repeat}: with {w:.2f} s, without {wo:.2f} s: the lifecycle adds {w - wo:.2f} s, "
          f"{(w - wo) / w:.1%} of the run")
    shares = sorted((a - b) / a for a, b in pairs)
    print(f"each pair (with, without, one after the other): the lifecycle's share "
          f"{', '.join(f'{x:.1%}' for x in shares)}; median {statistics.median(shares):.1%}")


if __name__ == "__main__":
    main()
