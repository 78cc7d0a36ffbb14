"""Small helpers shared by tests: run the pipeline's lazy part on a file and fetch features."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from custseg.engines import connect
from custseg.options import EngineOptions, RunOptions
from custseg.pipeline import compute_features
from custseg.runtime.stages import Stages


def features_of(path, **options) -> tuple[pd.DataFrame, dict, object]:
    """(features by customer_id, data_quality, source) for an input, all available features."""
    backend = connect(EngineOptions())
    feats = compute_features(backend, path if isinstance(path, list) else [str(path)], RunOptions(**options),
                             Stages())
    frame = feats.table.to_pandas().set_index("customer_id")
    return frame, feats.quality, feats.source


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the custseg command line in a subprocess (as a user would)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "custseg.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=full_env)


def cli_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """The console script in-process: (exit code, stdout, stderr)."""
    from custseg.cli import entry

    capsys.readouterr()
    saved = sys.argv
    sys.argv = ["custseg", *args]
    try:
        entry()
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def split_by_date(path, directory):
    """The sample's order lines as two periods: before and from the middle date."""
    lines = pd.read_csv(path, dtype=str, keep_default_na=False)
    day = pd.to_datetime(lines["day"], format="%d/%m/%Y")
    middle = day.min() + (day.max() - day.min()) / 2
    first, second = directory / "period1.csv", directory / "period2.csv"
    lines[day < middle].to_csv(first, index=False)
    lines[day >= middle].to_csv(second, index=False)
    return first, second
