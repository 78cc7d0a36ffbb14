"""Where a run's memory goes: `custseg run` with its process RSS polled every 50 ms, per stage.

    .venv/bin/python benchmarks/memory_by_stage.py benchmarks/data/shopify_100m.parquet --out /tmp/o100m --force --quiet

Prints the RSS at the start and end of every stage and the peak within it (a stage that runs twice,
such as lifecycle — its summary before the clustering, its scores after — is numbered), then every
peak. The RSS is read from /proc/self/statm (Linux); `/usr/bin/time`'s maximum is the same
high-water mark without the stages. Anything after the script's name goes to `custseg run`.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import time

from custseg.runtime import stages

_peaks: dict[str, float] = {}
_current = {"stage": "start"}
_count: dict[str, int] = {}
_stage = stages.Stages.stage


def rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**30


@contextlib.contextmanager
def _measured(self, name: str, message: str):
    _count[name] = _count.get(name, 0) + 1
    label = f"{name}#{_count[name]}"
    _current["stage"] = label
    print(f"RSS at start of {label}: {rss_gib():.2f} GiB", file=sys.stderr, flush=True)
    with _stage(self, name, message):
        yield
    print(f"RSS at end of {label}: {rss_gib():.2f} GiB (peak in it {_peaks.get(label, 0):.2f})", file=sys.stderr, flush=True)
    _current["stage"] = label + "-after"


def _poll() -> None:
    while True:
        rss, label = rss_gib(), _current["stage"]
        if rss > _peaks.get(label, 0.0):
            _peaks[label] = rss
        time.sleep(0.05)


def main() -> None:
    stages.Stages.stage = _measured
    threading.Thread(target=_poll, daemon=True).start()
    atexit.register(lambda: print("peaks (GiB):", {k: round(v, 2) for k, v in _peaks.items()}, file=sys.stderr))
    from custseg.cli import app

    sys.argv = ["custseg", "run", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
