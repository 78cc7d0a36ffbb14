"""The segmentation model as plain, versioned JSON: save, load (validated), predict.

Loading never executes anything: the file is parsed with `json` (no object hooks that
build anything but dicts, lists, strings and numbers) and every field is checked
(format, version, known fields only, types, shapes, finite numbers, known features
and scaling). Format: docs/formats.md.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .clustering.scaling import Scaling, assign
from .errors import CustsegError
from .features import REGISTRY
from .options import SCALES, SEED, seed_of
from .profiles.lifecycle_models import LifecycleModel
from .sources.schemas import SCHEMAS as SOURCE_SCHEMAS

MODEL_FORMAT = "custseg-model"
MODEL_VERSION = 2  # 2: "lifecycle" (profiles/lifecycle_models.LifecycleModel, or null with a reason) and
                   # "training_reference" (what predict compares new customers with, profiles/drift.py)
READABLE_VERSIONS = (1, 2)
FEATURE_DEFINITIONS_VERSION = 1
MATRIX_SCHEMA = "matrix"   # a model of CustomerSegmenter over a bare feature matrix (features x0, x1, ...)
SCHEMAS = (*SOURCE_SCHEMAS, MATRIX_SCHEMA)
MAX_BYTES = 50_000_000
MAX_SEGMENTS = 10_000
MAX_FEATURES = 10_000
MAX_NAME = 200
MAX_TEXT = 5_000

_TOP_KEYS = {"format", "version", "custseg_version", "feature_definitions_version", "schema", "features",
             "scaling", "centers", "segments", "training", "lifecycle", "training_reference"}
_REFERENCE_KEYS = {"schema", "segment_customers", "feature_min", "feature_max"}
_REQUIRED_TOP = {"format", "version", "feature_definitions_version", "features", "scaling", "centers", "segments"}
_FEATURE_KEYS = {"name", "definition"}
_SCALING_KEYS = {"method", "mean", "scale"}
_SEGMENT_KEYS = {"id", "name", "description", "strategy"}
# training: a summary for people; each key is known and each value a number, text, null or a list of those.
_TRAINING_KEYS = {"customers", "rows_used", "k", "k_method", "k_reason", "inertia", "seed", "scale", "inputs",
                  "date_range", "date_format", "mapping", "source", "horizon"}
_CODE_LIKE = re.compile(r"^__|^py/|^!!|\$type$|^@class$|^_class$|^\$\$", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class SegmentationModel:
    """Everything needed to score customers: features, scaling, centres and segment names.

    `predict` takes a feature matrix or a DataFrame with the feature columns;
    `custseg.predict(model, order_lines)` scores raw order lines.
    """

    features: list[str]
    scaling: Scaling
    centers: np.ndarray                       # (k, n_features), in the scaled space
    segments: list[dict[str, Any]]            # id, name, description, strategy
    schema: str = "generic"
    training: dict[str, Any] = field(default_factory=dict)
    custseg_version: str = ""
    lifecycle: LifecycleModel | None = None   # P(alive) and CLV of new customers (None: no dates/amounts, or v1)
    version: int = MODEL_VERSION              # the format version it was read from
    # What predict compares new customers with (profiles/drift.py): schema, customers per segment and
    # each feature's range in training. None for a version-1 file or a bare estimator's model.
    reference: dict[str, Any] | None = None

    @property
    def k(self) -> int:
        return int(self.centers.shape[0])

    @property
    def segment_names(self) -> list[str]:
        return [s["name"] for s in self.segments]

    @property
    def strategies(self) -> list[str]:
        return [s.get("strategy", "") for s in self.segments]

    def predict(self, X) -> np.ndarray:
        """Segment id of each row of a feature matrix (columns in `self.features` order), or of a
        DataFrame (pandas or Arrow) holding those columns."""
        if hasattr(X, "column_names") and not hasattr(X, "columns"):  # pyarrow.Table
            X = X.to_pandas()
        if hasattr(X, "columns"):
            missing = [f for f in self.features if f not in X.columns]
            if missing:
                raise CustsegError(f"the data has no column(s) {', '.join(missing)} that the model needs "
                                   f"(it was trained on {', '.join(self.features)}).")
            X = X[self.features].to_numpy(dtype=np.float64)
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CustsegError(f"the features to score must be numbers ({exc}).") from exc
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise CustsegError(f"the model needs {len(self.features)} feature columns ({', '.join(self.features)}), "
                               f"got an array of shape {X.shape}.")
        if not np.all(np.isfinite(X)):
            raise CustsegError("a feature to score is missing, NaN or infinite; the model scores finite numbers only.")
        return assign(self.scaling.transform(X), self.centers)

    def check_columns(self, provided: set[str], where: str, model_name: str = "the model") -> None:
        """Refuse data that lacks a canonical column one of the model's features needs."""
        if self.schema == MATRIX_SCHEMA:
            raise CustsegError(f"{model_name} was made from a bare feature matrix (CustomerSegmenter), not from "
                               "order lines; score a feature matrix with model.predict(X) instead.")
        for name in self.features:
            missing = REGISTRY[name].needs - provided
            if missing:
                raise CustsegError(
                    f"{where}: {model_name} uses the feature {name!r}, which needs the column(s) "
                    f"{', '.join(sorted(missing))}; the data does not have them. Map them with --map "
                    "canonical=COLUMN, or train a new model on this data with 'custseg run'."
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "custseg_version": self.custseg_version,
            "feature_definitions_version": FEATURE_DEFINITIONS_VERSION,
            "schema": self.schema,
            "features": [{"name": f, "definition": _definition(f, i, self.schema)}
                         for i, f in enumerate(self.features)],
            "scaling": self.scaling.to_dict(),
            "centers": self.centers.tolist(),
            "segments": [{"id": int(i), "name": str(s["name"]), "description": str(s.get("description", "")),
                          "strategy": str(s.get("strategy", ""))} for i, s in enumerate(self.segments)],
            "training": json_ready(self.training),
            "lifecycle": None if self.lifecycle is None else json_ready(self.lifecycle.to_dict()),
            **({"training_reference": json_ready(self.reference)} if self.reference is not None else {}),
        }

    def to_json(self) -> str:
        """The model as JSON text; floats are written with repr, so they read back bit for bit."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "model") -> "SegmentationModel":
        """Parse and validate model JSON; any problem is one CustsegError naming the field."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CustsegError(f"{source}: not a custseg model (not UTF-8 text).") from exc
        if len(text) > MAX_BYTES:
            raise CustsegError(f"{source}: too large to be a custseg model.")
        try:
            data = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicate_keys)
        except (ValueError, RecursionError) as exc:
            raise CustsegError(f"{source}: not a custseg model (invalid JSON: {_one_line(exc)}).") from exc
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> "SegmentationModel":
        def bad(what: str) -> CustsegError:
            return CustsegError(f"{source}: not a usable custseg model: {what}.")

        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise bad(f"'format' must be {MODEL_FORMAT!r} (is this a model.json written by custseg?)")
        code_like = _find_code_like(data)
        if code_like:
            raise bad(f"the field {code_like!r} looks like serialized code; a custseg model holds only names and "
                      "numbers, so it is refused")
        version = data.get("version")
        if not _is_int(version) or version not in READABLE_VERSIONS:
            raise bad(f"version {version!r} is not supported (this custseg reads versions "
                      f"{', '.join(map(str, READABLE_VERSIONS))}); "
                      "use the custseg that wrote it or train the model again")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise bad(f"unknown field(s) {', '.join(sorted(map(repr, unknown)))}")
        missing = _REQUIRED_TOP - set(data)
        if missing:
            raise bad(f"missing field(s) {', '.join(sorted(missing))}")
        fdv = data.get("feature_definitions_version")
        if not _is_int(fdv) or fdv != FEATURE_DEFINITIONS_VERSION:
            raise bad(f"feature definitions version {fdv!r} differs from this custseg's "
                      f"({FEATURE_DEFINITIONS_VERSION}); train the model again")
        schema = data.get("schema", "generic")
        if schema not in SCHEMAS:
            raise bad(f"'schema' must be one of {', '.join(SCHEMAS)}")
        custseg_version = data.get("custseg_version", "")
        if not isinstance(custseg_version, str) or len(custseg_version) > MAX_NAME:
            raise bad("'custseg_version' must be a short text")

        feats = data["features"]
        if not isinstance(feats, list) or not feats or len(feats) > MAX_FEATURES:
            raise bad("'features' must be a non-empty list")
        names = []
        for i, f in enumerate(feats):
            if not isinstance(f, dict) or set(f) - _FEATURE_KEYS or not isinstance(f.get("name"), str) \
                    or not isinstance(f.get("definition", ""), str):
                raise bad(f"features[{i}] must be {{name, definition}} with text values")
            names.append(f["name"])
        if schema == MATRIX_SCHEMA:
            if names != [f"x{i}" for i in range(len(names))]:
                raise bad("a matrix model's features must be named x0, x1, ... in order")
        else:
            for name in names:
                if name not in REGISTRY:
                    raise bad(f"unknown feature {name!r} (known: {', '.join(REGISTRY)})")
        if len(set(names)) != len(names):
            raise bad("a feature is listed twice")
        n = len(names)

        scaling = data["scaling"]
        if not isinstance(scaling, dict) or set(scaling) != _SCALING_KEYS:
            raise bad("'scaling' must be {method, mean, scale}")
        if scaling["method"] not in SCALES:
            raise bad(f"'scaling.method' must be one of {', '.join(SCALES)}")
        mean = _numbers(scaling["mean"], 1, "scaling.mean", bad)
        scale = _numbers(scaling["scale"], 1, "scaling.scale", bad)
        if mean.shape != (n,) or scale.shape != (n,):
            raise bad(f"'scaling.mean' and 'scaling.scale' must hold {n} numbers, one per feature")
        if np.any(scale <= 0):
            raise bad("'scaling.scale' must be positive")
        centers = _numbers(data["centers"], 2, "centers", bad)
        if centers.shape[1:] != (n,) or not 1 <= centers.shape[0] <= MAX_SEGMENTS:
            raise bad(f"'centers' must be a k x {n} matrix (one row per segment, one column per feature), "
                      f"not {centers.shape[0]} x {centers.shape[1] if centers.ndim == 2 else '?'}")
        with np.errstate(over="ignore", invalid="ignore"):  # centres so large that distances overflow
            if not np.all(np.isfinite((centers * centers).sum(axis=1))):
                raise bad("'centers' holds numbers too large to measure distances with")

        segments = data["segments"]
        if not isinstance(segments, list) or len(segments) != centers.shape[0]:
            raise bad(f"'segments' must list one entry per centre ({centers.shape[0]})")
        clean_segments = []
        for i, seg in enumerate(segments):
            if not isinstance(seg, dict) or set(seg) - _SEGMENT_KEYS or not _is_int(seg.get("id")) or seg["id"] != i:
                raise bad(f"segments[{i}] must be {{id: {i}, name, description, strategy}}")
            name = seg.get("name")
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or _CONTROL.search(name):
                raise bad(f"segments[{i}] needs a name: one line of text, at most {MAX_NAME} characters")
            for key in ("description", "strategy"):
                value = seg.get(key, "")
                if not isinstance(value, str) or len(value) > MAX_TEXT:
                    raise bad(f"segments[{i}].{key} must be text of at most {MAX_TEXT} characters")
            clean_segments.append({"id": i, "name": name, "description": seg.get("description", ""),
                                   "strategy": seg.get("strategy", "")})
        if len({s["name"] for s in clean_segments}) != len(clean_segments):
            raise bad("segment names must be distinct")

        training = data.get("training", {})
        if not isinstance(training, dict):
            raise bad("'training' must be an object")
        unknown = set(training) - _TRAINING_KEYS
        if unknown:
            raise bad(f"unknown field(s) in 'training': {', '.join(sorted(map(repr, unknown)))}")
        for key, value in training.items():
            if not _is_plain_value(value):
                raise bad(f"'training.{key}' must be a number, text, null or a list or object of those")
        lifecycle = data.get("lifecycle")
        if version < 2 and "lifecycle" in data:
            raise bad("'lifecycle' is a version 2 field; this file says version 1")
        if lifecycle is not None:
            try:
                lifecycle = LifecycleModel.from_dict(lifecycle)
            except CustsegError as exc:
                raise bad(f"'lifecycle': {exc}") from exc
        reference = data.get("training_reference")
        if reference is not None:
            if version < 2:
                raise bad("'training_reference' appears in version 2 files only")
            _check_reference(reference, names, centers.shape[0], bad)
        return cls(
            features=names, scaling=Scaling(scaling["method"], mean, scale), centers=centers,
            segments=clean_segments, schema=schema, training=training, custseg_version=custseg_version,
            lifecycle=lifecycle, version=int(version), reference=reference,
        )

    # -------------------------------------------------------------- CustomerSegmenter bridge

    @classmethod
    def from_segmenter(cls, segmenter, segment_names: list[str] | None = None) -> "SegmentationModel":
        """The model of a fitted CustomerSegmenter (generic segment names unless given)."""
        from sklearn.utils.validation import check_is_fitted  # scikit-learn: heavy, only for an estimator

        check_is_fitted(segmenter)
        k, n = segmenter.cluster_centers_.shape
        given = [str(f) for f in getattr(segmenter, "feature_names_in_", [])]
        if given and all(f in REGISTRY for f in given):
            features, schema = given, "generic"
        else:
            features, schema = [f"x{i}" for i in range(n)], MATRIX_SCHEMA
        names = segment_names or [f"Segment {i}" for i in range(k)]
        if len(names) != k:
            raise CustsegError(f"{len(names)} segment names given for {k} segments.")
        training = {"k": int(k), "k_method": segmenter.k_choice_.method, "k_reason": segmenter.k_choice_.reason,
                    "inertia": float(segmenter.inertia_), "scale": segmenter.scaling_.method,
                    "seed": seed_of(segmenter.random_state)}
        if hasattr(segmenter, "labels_"):
            training["customers"] = int(len(segmenter.labels_))
        elif isinstance(getattr(segmenter, "model_training_", None), dict):  # loaded from a model: keep its summary
            training = dict(segmenter.model_training_)
        return cls(
            features=features, scaling=segmenter.scaling_, centers=np.array(segmenter.cluster_centers_),
            segments=[{"id": i, "name": names[i], "description": "", "strategy": ""} for i in range(k)],
            schema=schema, custseg_version=__version__, training=training,
        )

    def to_segmenter(self):
        """A fitted CustomerSegmenter that predicts exactly as this model."""
        from .clustering.choose_k import KChoice  # (with the estimator)
        from .clustering.estimator import CustomerSegmenter  # scikit-learn: heavy, only for an estimator

        seg = CustomerSegmenter(n_clusters=self.k, scale=self.scaling.method,
                                random_state=int(self.training.get("seed", SEED)) if _is_int(
                                    self.training.get("seed")) else SEED)
        seg.scaling_ = Scaling(self.scaling.method, self.scaling.mean.copy(), self.scaling.scale.copy())
        seg.cluster_centers_ = self.centers.copy()
        seg.n_clusters_ = self.k
        seg.n_features_in_ = len(self.features)
        if self.schema != MATRIX_SCHEMA:
            seg.feature_names_in_ = np.asarray(self.features, dtype=object)
        seg.k_selection_ = None
        seg.k_choice_ = KChoice(self.k, str(self.training.get("k_method", "model")),
                                str(self.training.get("k_reason", "k was fixed by a loaded model")))
        seg.model_training_ = dict(self.training)  # what the model says of its training (from_segmenter)
        seg.inertia_ = float(self.training["inertia"]) if isinstance(self.training.get("inertia"), (int, float)) \
            else float("nan")
        seg.n_iter_ = 0
        return seg


def _check_reference(reference: Any, features: list[str], k: int, bad) -> None:
    """training_reference: {schema, segment_customers (k counts), feature_min, feature_max (feature -> number)}."""
    if not isinstance(reference, dict) or set(reference) != _REFERENCE_KEYS:
        raise bad("'training_reference' must be {schema, segment_customers, feature_min, feature_max}")
    if not isinstance(reference["schema"], str) or len(reference["schema"]) > MAX_NAME:
        raise bad("'training_reference.schema' must be a short text")
    counts = reference["segment_customers"]
    if not isinstance(counts, list) or len(counts) != k or not all(_is_int(c) and c >= 0 for c in counts):
        raise bad(f"'training_reference.segment_customers' must list {k} counts, one per segment")
    for key in ("feature_min", "feature_max"):
        bounds = reference[key]
        if not isinstance(bounds, dict) or set(bounds) - set(features) \
                or not all(_is_number(v) and math.isfinite(v) for v in bounds.values()):
            raise bad(f"'training_reference.{key}' must map the model's features to finite numbers")


def _definition(name: str, index: int, schema: str) -> str:
    if name in REGISTRY:
        return REGISTRY[name].description
    return f"column {index} of the feature matrix"


def json_ready(value: Any) -> Any:
    """JSON-ready copy: numpy scalars become Python numbers, tuples lists, non-finite floats null."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number a model may hold")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the field {key!r} appears twice in one object")
        out[key] = value
    return out


def _find_code_like(value: Any, depth: int = 0) -> str | None:
    """The first object key anywhere in the document that looks like a serialization tag for code."""
    if depth > 50:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if _CODE_LIKE.search(str(key)):
                return str(key)
            found = _find_code_like(item, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find_code_like(item, depth + 1)
            if found:
                return found
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_plain_value(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, str) or _is_int(value):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth < 3 and isinstance(value, list):
        return all(_is_plain_value(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return all(_is_plain_value(v, depth + 1) for v in value.values())
    return False


def _numbers(value: Any, ndim: int, what: str, bad) -> np.ndarray:
    """A finite float array of `ndim` dimensions from JSON lists of numbers (not text, not booleans)."""
    rows = value if ndim == 2 else [value]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise bad(f"'{what}' must be " + ("a list of lists of numbers" if ndim == 2 else "a list of numbers"))
    width = len(rows[0])
    for r in rows:
        if len(r) != width:
            raise bad(f"the rows of '{what}' must have the same length")
        for x in r:
            if not _is_number(x):
                raise bad(f"'{what}' must hold numbers, not {type(x).__name__} {str(x)[:20]!r}")
            if isinstance(x, float) and not math.isfinite(x):
                raise bad(f"'{what}' holds a value that is not a finite number")
    try:
        arr = np.array(rows, dtype=np.float64)
    except OverflowError as exc:  # an integer beyond float range
        raise bad(f"'{what}' holds a number too large") from exc
    if not np.all(np.isfinite(arr)):
        raise bad(f"'{what}' holds a value that is not a finite number")
    return arr if ndim == 2 else arr[0]


def as_model(model: "SegmentationModel | str | os.PathLike") -> "SegmentationModel":
    """A SegmentationModel from a model object or a path to a model.json (or a run directory)."""
    if isinstance(model, SegmentationModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise CustsegError(f"model must be a SegmentationModel or the path of a model.json, not {type(model).__name__}.")


def model_label(model: "SegmentationModel | str | os.PathLike") -> str:
    """How to name a model in messages ("the model PATH"): its file when it came from one."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        return f"the model {path / 'model.json' if path.is_dir() else path}"
    return "the given model"


def load_model(path: str | os.PathLike) -> SegmentationModel:
    """Read and validate a model.json (or the model.json inside a run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    if not path.exists():
        raise CustsegError(f"{path}: no such model file; give the model.json written by 'custseg run'.")
    if not path.is_file():
        raise CustsegError(f"{path}: not a regular file; give the model.json written by 'custseg run'.")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise CustsegError(f"{path}: too large to be a custseg model.")
        data = path.read_bytes()
    except OSError as exc:
        raise CustsegError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    return SegmentationModel.from_json(data, str(path))
