"""Writing scored customers (pipeline.score): CSV, Parquet or an Excel workbook, atomically; beside it
`<out>.json`: the model's segments, the data quality and the drift check (profiles/drift.py), which a
Parquet file also holds in its schema metadata (key `custseg`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CustsegError
from .atomic import atomic_file
from ..model import json_ready
from .run import write_table_csv
from .workbook import check_sheets, write_workbook

PREDICTION_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}


def write_predictions(predictions, path: str | os.PathLike, force: bool = False) -> Path:
    """Write scored customers to CSV or Parquet (by extension), atomically: complete or absent."""
    path = Path(path)
    fmt = PREDICTION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CustsegError(f"{path}: write predictions to a .csv, .parquet or .xlsx file.")
    meta_path = path.with_name(path.name + ".json")
    if meta_path.exists() and not force:
        raise CustsegError(f"{meta_path}: exists; use --force to overwrite it or choose another --out.")
    if path.exists() and (path.is_dir() or not force):
        raise CustsegError(f"{path}: exists; use --force to overwrite it or choose another --out."
                           if not path.is_dir() else f"{path}: is a directory; give a file name for --out.")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise CustsegError(f"{parent}: no such directory for --out; create it first.")
    error = lambda exc: CustsegError(f"{path}: cannot write the predictions ({exc.strerror or exc}).")  # noqa: E731
    metadata = json.dumps(json_ready(predictions.metadata()), indent=2, allow_nan=False, ensure_ascii=False)
    if fmt == "xlsx":
        check_sheets({"predictions": predictions.table})  # refused before anything is written
    with atomic_file(parent / meta_path.name, error) as tmp:
        Path(tmp).write_text(metadata + "\n", encoding="utf-8")
    with atomic_file(parent / path.name, error) as tmp:
        if fmt == "parquet":
            table = predictions.table
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"custseg": metadata.encode()})
            pq.write_table(table, tmp, compression="zstd")
        elif fmt == "xlsx":
            write_workbook(tmp, {"predictions": predictions.table})
        else:
            write_table_csv(tmp, predictions.table)  # formula-like text cells neutralised (run.neutralise_table)
    return path

