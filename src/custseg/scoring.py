"""Scoring order lines with a saved model: the same sources and cleaning as a run, the model's
features, and every customer to the nearest of the model's centres (no refit).

Scoring a run's own input with its model.json gives that run's segments.csv exactly: the
features are computed by the same code and the centres and scaling read back bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .engines import EngineOptions, connect
from .errors import CustsegError
from .model import SegmentationModel, as_model, model_label
from .outputs import neutralise_table, write_table_csv
from .pipeline import ProgressCallback, RunOptions, Stages, compute_features

PREDICTION_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class Predictions:
    """Scored customers: customer_id, the model's features, segment, segment_name."""

    table: pa.Table
    model: SegmentationModel
    data_quality: dict[str, Any]

    @property
    def frame(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def counts(self) -> dict[str, int]:
        """Customers per segment name, in segment order (empty segments included)."""
        counts = np.bincount(self.table.column("segment").to_numpy(), minlength=self.model.k)
        return {name: int(c) for name, c in zip(self.model.segment_names, counts)}


def score(model: SegmentationModel | str | os.PathLike, data, *, schema: str = "auto",
          mapping: dict[str, str] | None = None, sheet: str | None = None, date_format: str = "auto",
          engine: EngineOptions | None = None, progress: ProgressCallback | None = None) -> Predictions:
    """Read order lines (paths, globs or a DataFrame), compute the model's features and assign segments."""
    label = model_label(model)
    model = as_model(model)
    options = RunOptions(schema=schema, mapping=dict(mapping or {}), sheet=sheet, date_format=date_format,
                         engine=engine or EngineOptions())
    stages = Stages(progress)
    backend = connect(options.engine)
    features = compute_features(backend, data, options, stages, model=model, model_name=label)
    if features.table.num_rows == 0:
        where = features.source.files[0] if features.source.files else "the data"
        raise CustsegError(f"{where}: no customer with orders after cleaning; there is nothing to score.")
    with stages.stage("scoring", f"assigning {features.table.num_rows:,} customers to the {model.k} segments"):
        labels = model.predict(features.matrix())
    table = pa.table({
        "customer_id": features.table.column("customer_id"),
        **{name: features.table.column(name) for name in model.features},
        "segment": pa.array(labels, pa.int64()),
        "segment_name": pa.array(model.segment_names, pa.string()).take(pa.array(labels)),
    })
    quality = dict(features.quality)
    quality["customers_kept"] = table.num_rows
    return Predictions(table=table, model=model, data_quality=quality)


def predict(model: SegmentationModel | str | os.PathLike, data, **options) -> pd.DataFrame:
    """Segments of the customers in order lines, with a saved model (no refit).

    `model` is a SegmentationModel or the path of a model.json (or of a run directory);
    `data` is what `custseg.segment` accepts; options: schema, mapping, sheet, date_format,
    engine. Returns customer_id, the model's features, segment and segment_name.
    """
    return score(model, data, **options).frame


def write_predictions(predictions: Predictions, path: str | os.PathLike, force: bool = False) -> Path:
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
    tmp = parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        if fmt == "parquet":
            pq.write_table(predictions.table, tmp, compression="zstd")
        else:
            write_table_csv(tmp, _neutralised(predictions.table))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CustsegError(f"{path}: cannot write the predictions ({exc.strerror or exc}).") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _neutralised(table: pa.Table) -> pa.Table:
    """Formula-like text cells neutralised (outputs.neutralise_table; write_table_csv does it too)."""
    return neutralise_table(table)
