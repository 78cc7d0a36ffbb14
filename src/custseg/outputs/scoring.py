"""Writing scored customers (pipeline.score): CSV or Parquet, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq

from ..errors import CustsegError
from .atomic import atomic_file
from .run import write_table_csv

PREDICTION_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def write_predictions(predictions, path: str | os.PathLike, force: bool = False) -> Path:
    """Write scored customers to CSV or Parquet (by extension), atomically: complete or absent."""
    path = Path(path)
    fmt = PREDICTION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CustsegError(f"{path}: write predictions to a .csv or .parquet file.")
    if path.exists() and (path.is_dir() or not force):
        raise CustsegError(f"{path}: exists; use --force to overwrite it or choose another --out."
                           if not path.is_dir() else f"{path}: is a directory; give a file name for --out.")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise CustsegError(f"{parent}: no such directory for --out; create it first.")
    error = lambda exc: CustsegError(f"{path}: cannot write the predictions ({exc.strerror or exc}).")  # noqa: E731
    with atomic_file(parent / path.name, error) as tmp:
        if fmt == "parquet":
            pq.write_table(predictions.table, tmp, compression="zstd")
        else:
            write_table_csv(tmp, predictions.table)  # formula-like text cells neutralised (run.neutralise_table)
    return path

