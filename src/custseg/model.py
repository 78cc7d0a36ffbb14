"""The segmentation model as plain, versioned JSON: save, load (validated), predict.

Loading never executes anything: the file is parsed with `json` and every field is
checked (format, version, shapes, finite numbers, known features and scaling).
Format: docs/formats.md.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .clustering import SCALES, Scaling, assign
from .errors import CustsegError
from .features import REGISTRY

MODEL_FORMAT = "custseg-model"
MODEL_VERSION = 1
FEATURE_DEFINITIONS_VERSION = 1
_TOP_KEYS = {"format", "version", "custseg_version", "feature_definitions_version", "schema", "features",
             "scaling", "centers", "segments", "training"}
_SEGMENT_KEYS = {"id", "name", "description", "strategy"}


@dataclass
class SegmentationModel:
    """Everything needed to score customers: features, scaling, centres and segment names."""

    features: list[str]
    scaling: Scaling
    centers: np.ndarray                       # (k, n_features), in the scaled space
    segments: list[dict[str, Any]]            # id, name, description, strategy
    schema: str = "generic"
    training: dict[str, Any] = field(default_factory=dict)
    custseg_version: str = ""

    @property
    def k(self) -> int:
        return int(self.centers.shape[0])

    @property
    def segment_names(self) -> list[str]:
        return [s["name"] for s in self.segments]

    def predict(self, X) -> np.ndarray:
        """Segment id of each row of a feature matrix (columns in `self.features` order), or of a
        DataFrame holding those columns."""
        if hasattr(X, "columns"):
            missing = [f for f in self.features if f not in X.columns]
            if missing:
                raise CustsegError(f"the data has no column(s) {', '.join(missing)} that the model needs.")
            X = X[self.features].to_numpy(dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise CustsegError(f"the model needs {len(self.features)} feature columns ({', '.join(self.features)}), "
                               f"got an array of shape {X.shape}.")
        return assign(self.scaling.transform(X), self.centers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "custseg_version": self.custseg_version,
            "feature_definitions_version": FEATURE_DEFINITIONS_VERSION,
            "schema": self.schema,
            "features": [{"name": f, "definition": REGISTRY[f].description} for f in self.features],
            "scaling": self.scaling.to_dict(),
            "centers": self.centers.tolist(),
            "segments": [{key: s.get(key, "") for key in ("id", "name", "description", "strategy")}
                         for s in self.segments],
            "training": self.training,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "SegmentationModel":
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, ValueError) as exc:
            raise CustsegError(f"{source}: not a custseg model (invalid JSON: {exc}).") from exc
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> "SegmentationModel":
        def bad(what: str) -> CustsegError:
            return CustsegError(f"{source}: not a usable custseg model: {what}.")

        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise bad(f"'format' must be {MODEL_FORMAT!r}")
        if data.get("version") != MODEL_VERSION:
            raise bad(f"version {data.get('version')!r} is not supported (this custseg reads version {MODEL_VERSION})")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise bad(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        if data.get("feature_definitions_version") != FEATURE_DEFINITIONS_VERSION:
            raise bad("its feature definitions version differs from this custseg's")
        feats = data.get("features")
        if not isinstance(feats, list) or not feats:
            raise bad("'features' must be a non-empty list")
        names = [f.get("name") if isinstance(f, dict) else f for f in feats]
        for name in names:
            if name not in REGISTRY:
                raise bad(f"unknown feature {name!r}")
        if len(set(names)) != len(names):
            raise bad("a feature is listed twice")
        n = len(names)
        scaling = data.get("scaling")
        if not isinstance(scaling, dict) or scaling.get("method") not in SCALES:
            raise bad(f"'scaling.method' must be one of {', '.join(SCALES)}")
        mean = _finite_array(scaling.get("mean"), (n,), "scaling.mean", bad)
        scale = _finite_array(scaling.get("scale"), (n,), "scaling.scale", bad)
        if np.any(scale <= 0):
            raise bad("'scaling.scale' must be positive")
        centers = _finite_array(data.get("centers"), None, "centers", bad)
        if centers.ndim != 2 or centers.shape[1] != n or centers.shape[0] < 1:
            raise bad(f"'centers' must be a k x {n} matrix")
        segments = data.get("segments")
        if not isinstance(segments, list) or len(segments) != centers.shape[0]:
            raise bad("'segments' must list one entry per centre")
        clean_segments = []
        for i, seg in enumerate(segments):
            if not isinstance(seg, dict) or set(seg) - _SEGMENT_KEYS or seg.get("id") != i:
                raise bad(f"segment {i} must be {{id: {i}, name, description, strategy}}")
            if not isinstance(seg.get("name"), str) or not seg["name"]:
                raise bad(f"segment {i} has no name")
            clean_segments.append({k: seg.get(k, "") for k in ("id", "name", "description", "strategy")})
        if len({s["name"] for s in clean_segments}) != len(clean_segments):
            raise bad("segment names must be distinct")
        training = data.get("training", {})
        if not isinstance(training, dict):
            raise bad("'training' must be an object")
        return cls(
            features=names, scaling=Scaling(scaling["method"], mean, scale), centers=centers,
            segments=clean_segments, schema=str(data.get("schema", "generic")), training=training,
            custseg_version=str(data.get("custseg_version", "")),
        )


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number a model may hold")


def _finite_array(value, shape, what, bad) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise bad(f"'{what}' must hold numbers") from exc
    if shape is not None and arr.shape != shape:
        raise bad(f"'{what}' must have shape {shape}, not {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise bad(f"'{what}' holds a value that is not a finite number")
    return arr


def load_model(path: str | os.PathLike) -> SegmentationModel:
    """Read and validate a model.json (or the model.json inside a run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    if not path.exists():
        raise CustsegError(f"{path}: no such model file; give the model.json written by 'custseg run'.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CustsegError(f"{path}: cannot be read ({exc}).") from exc
    if len(text) > 50_000_000:
        raise CustsegError(f"{path}: too large to be a custseg model.")
    return SegmentationModel.from_json(text, str(path))


def is_finite_json(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_finite_json(v) for v in value.values())
    if isinstance(value, list):
        return all(is_finite_json(v) for v in value)
    return True
