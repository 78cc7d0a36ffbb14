"""The Python API: ``custseg.segment`` and ``custseg.predict`` (keyword arguments, warnings).

The flow itself is pipeline.py; here the keywords become RunOptions (options.py checks them and
names a bad one by its keyword), and what the run tells the user becomes CustsegWarnings.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import pandas as pd

from .engines import engine_of
from .errors import CustsegWarning
from .model import SegmentationModel
from .options import (K_MAX, MAX_ITER, N_INIT, SEED, SILHOUETTE_SAMPLE, SWEEP_SAMPLE, TOP_PRODUCTS, EngineOptions,
                      RunOptions, python_naming)
from .pipeline import SegmentationResult, run, score
from .runtime.stages import ProgressCallback


class Relay:
    """The run's progress callback for the API: passes everything on to the caller's callback (if
    any) and keeps the warnings, which `warn` emits after the run, pointing at the caller's line."""

    def __init__(self, progress: ProgressCallback | None):
        self.said: list[str] = []
        self.progress = progress

    def __call__(self, kind: str, message: str) -> None:
        if kind == "warn":
            self.said.append(message)
        if self.progress is not None:
            self.progress(kind, message)

    def warn(self) -> None:
        for message in self.said:  # (stack: warn, the API function, its caller)
            warnings.warn(message, CustsegWarning, stacklevel=3)


def segment(data, *, k: int | None = None, features: list[str] | str | None = None, schema: str = "auto",
            mapping: dict[str, str] | None = None, sheet: str | None = None, date_format: str = "auto",
            scale: str = "log", k_max: int = K_MAX, seed: int = SEED, n_init: int = N_INIT,
            max_iter: int = MAX_ITER, sweep_sample: int = SWEEP_SAMPLE, silhouette_sample: int = SILHOUETTE_SAMPLE,
            top_products: int = TOP_PRODUCTS, model: Any = None, keep: list[str] | str | None = None,
            engine: str | EngineOptions = "duckdb", memory_limit: str | None = None, temp_dir: str | None = None,
            threads: int | None = None, progress: ProgressCallback | None = None, **engine_options: Any,
            ) -> SegmentationResult:
    """Segment customers from order lines.

    data: a path, a glob, a list of paths, or a pandas / Arrow / Spark table of order lines.
    k: number of segments (at least 2; default: chosen by the elbow method up to k_max).
    features: the clustering features (a list or "a,b,c"; default per schema).
    schema: auto, shopify, online-retail or generic; mapping: {canonical column: source column}.
    sheet: worksheet of an .xlsx input; date_format: auto, iso, dmy or mdy.
    scale: log, log-standard, standard or none. seed, n_init, max_iter, sweep_sample and
    silhouette_sample: the K-means settings (defaults in custseg.options).
    top_products: best sellers listed per segment. model: a SegmentationModel or model.json path to
    segment with (no refit). keep: input columns with one value per customer, carried into the
    segments table. engine, memory_limit, temp_dir, threads (and spark_master, spark_conf,
    spark_session, spark_local_limit): how the order lines are read and aggregated.
    progress: called with (kind, message) as the stages run.

    Order lines dropped by cleaning and other things worth knowing are emitted as
    custseg.CustsegWarning (shown in a notebook, kept in `result.warnings`). A bad option raises
    CustsegError naming the keyword argument (e.g. "k=0: ...").
    """
    kwargs = dict(k=k, features=features, schema=schema, mapping=dict(mapping or {}), sheet=sheet,
                  date_format=date_format, scale=scale, k_max=k_max, seed=seed, n_init=n_init, max_iter=max_iter,
                  sweep_sample=sweep_sample, silhouette_sample=silhouette_sample, top_products=top_products,
                  model=model, keep=keep, engine=engine, **engine_options)
    if memory_limit is not None:
        kwargs["memory_limit"] = memory_limit
    if temp_dir is not None:
        kwargs["temp_dir"] = temp_dir
    if threads is not None:
        kwargs["threads"] = threads
    if not isinstance(engine, EngineOptions):
        for key, value in engine_of(data).items():  # a Spark DataFrame is segmented by its own session
            if key == "engine" and engine == "duckdb" or key not in kwargs:
                kwargs[key] = value
    relay = Relay(progress)
    with python_naming():
        result = run(data, RunOptions.from_keywords(**kwargs), relay)
    result.warnings = relay.said
    relay.warn()
    return result


def predict(model: SegmentationModel | str | os.PathLike, data, **options) -> pd.DataFrame:
    """Segments of the customers in order lines, with a saved model (no refit).

    `model` is a SegmentationModel or the path of a model.json (or of a run directory);
    `data` is what `custseg.segment` accepts; options: schema, mapping, sheet, date_format,
    engine, keep. Returns customer_id, the model's features, segment and segment_name.
    Dropped lines and customers unlike the training data are emitted as custseg.CustsegWarning.
    """
    relay = Relay(options.pop("progress", None))
    with python_naming():
        frame = score(model, data, progress=relay, **options).frame
    relay.warn()
    return frame
