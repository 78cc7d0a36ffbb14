"""predict on data unlike the training data: say so (issue 17).

A model scores any customers, also those of another shop, another schema or a period so unlike
the training one that the segments no longer describe them (90% of customers land in a segment
that held 8%). `check_drift` compares the scored customers with the training reference and
returns warnings (one line each, for stderr) and a JSON-ready dict for the prediction's metadata.

What is flagged (the thresholds are module constants, stated in the metadata):

- another schema than the model's (e.g. a Shopify-trained model scoring Online Retail lines);
- a segment whose share of customers moved by SHARE_POINTS (20 percentage points) or more, or
  grew or shrank by SHARE_RATIO (3x) or more while moving at least RATIO_MIN_POINTS (5 points);
  only with at least MIN_CUSTOMERS scored customers, as shares of a handful of customers say little;
- a feature for which more than OUT_OF_RANGE_SHARE (5%) of the scored customers lie outside the
  training range (below its minimum or above its maximum): the model never saw such customers,
  and they are assigned to whichever centre is nearest, however far.

The training reference (segment sizes and each feature's range) comes from the run's profiles
(`TrainingReference.from_profiles`: per-segment customers and feature min/max) or from a dict
stored with the model (`from_dict` / `to_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import CustsegError

SHARE_POINTS = 0.20
SHARE_RATIO = 3.0
RATIO_MIN_POINTS = 0.05
MIN_CUSTOMERS = 50
OUT_OF_RANGE_SHARE = 0.05


@dataclass
class TrainingReference:
    """What the model was trained on: its schema, segment sizes and each feature's range."""

    schema: str
    names: list[str]                  # segment names, by segment number
    customers: list[int]              # training customers per segment
    feature_min: dict[str, float]
    feature_max: dict[str, float]

    @property
    def shares(self) -> list[float]:
        total = sum(self.customers)
        return [c / total if total else 0.0 for c in self.customers]

    @classmethod
    def from_profiles(cls, profiles, features: Sequence[str], schema: str) -> "TrainingReference":
        """From a run's profiles (DataFrame or profiles.csv read back): segment, segment_name,
        customers and <feature>_min / <feature>_max per segment."""
        frame = profiles.sort_values("segment")
        customers = [int(c) for c in frame["customers"]]
        lo, hi = {}, {}
        has = frame["customers"].to_numpy() > 0
        for f in features:
            if f"{f}_min" not in frame or f"{f}_max" not in frame:
                raise CustsegError(f"the training profiles have no range for the feature {f!r}.")
            mins = frame[f"{f}_min"].to_numpy(dtype=np.float64)[has]
            maxs = frame[f"{f}_max"].to_numpy(dtype=np.float64)[has]
            mins, maxs = mins[np.isfinite(mins)], maxs[np.isfinite(maxs)]
            if len(mins) and len(maxs):
                lo[f], hi[f] = float(mins.min()), float(maxs.max())
        return cls(schema=schema, names=[str(n) for n in frame["segment_name"]], customers=customers,
                   feature_min=lo, feature_max=hi)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "segment_customers": list(self.customers),
                "feature_min": dict(self.feature_min), "feature_max": dict(self.feature_max)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], names: Sequence[str]) -> "TrainingReference":
        return cls(schema=str(data.get("schema", "")), names=list(names),
                   customers=[int(c) for c in data["segment_customers"]],
                   feature_min={str(k): float(v) for k, v in data.get("feature_min", {}).items()},
                   feature_max={str(k): float(v) for k, v in data.get("feature_max", {}).items()})


@dataclass
class Drift:
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.1f}%"


def check_drift(reference: TrainingReference, features: Mapping[str, Any], labels: Any,
                schema: str | None = None) -> Drift:
    """Compare scored customers (`features`: feature name -> values; `labels`: segment per customer)
    with the training reference; warnings and metadata (see the module's docstring)."""
    labels = np.asarray(labels, dtype=np.int64)
    n = int(len(labels))
    k = len(reference.customers)
    warnings: list[str] = []

    schema_meta = {"model": reference.schema, "data": schema, "differs": bool(schema and reference.schema
                                                                              and schema != reference.schema)}
    if schema_meta["differs"]:
        warnings.append(f"the data has the {schema} schema but the model was trained on {reference.schema} data; "
                        "its segments may not describe these customers.")

    counts = np.bincount(labels, minlength=k)[:k] if n else np.zeros(k, dtype=np.int64)
    shares = counts / n if n else np.zeros(k)
    compared = n >= MIN_CUSTOMERS
    segments = []
    for s in range(k):
        before, now = reference.shares[s], float(shares[s])
        diff = abs(now - before)
        ratio = (max(now, before) / min(now, before)) if min(now, before) > 0 else (math.inf if diff > 0 else 1.0)
        flagged = compared and (diff >= SHARE_POINTS or (ratio >= SHARE_RATIO and diff >= RATIO_MIN_POINTS))
        segments.append({"segment": s, "name": reference.names[s], "training_share": before, "share": now,
                         "customers": int(counts[s]), "flagged": bool(flagged)})
        if flagged:
            warnings.append(f"segment {s} ({reference.names[s]}) holds {_pct(now)} of these customers but held "
                            f"{_pct(before)} in training; the data may differ from the training data.")

    feature_rows = []
    for name, values in features.items():
        if name not in reference.feature_min or name not in reference.feature_max:
            continue
        values = np.asarray(values, dtype=np.float64)
        lo, hi = reference.feature_min[name], reference.feature_max[name]
        below, above = int(np.count_nonzero(values < lo)), int(np.count_nonzero(values > hi))
        outside = (below + above) / n if n else 0.0
        flagged = outside > OUT_OF_RANGE_SHARE
        feature_rows.append({"name": name, "training_min": lo, "training_max": hi, "below": below, "above": above,
                             "share_outside": outside, "flagged": bool(flagged)})
        if flagged:
            warnings.append(f"{_pct(outside)} of these customers have {name} outside the training range "
                            f"({lo:g} to {hi:g}: {below:,} below, {above:,} above); the model never saw such "
                            "customers.")

    metadata = {
        "customers": n,
        "schema": schema_meta,
        "segments": segments,
        "segment_shares_compared": compared,
        "features": feature_rows,
        "thresholds": {"share_points": SHARE_POINTS, "share_ratio": SHARE_RATIO,
                       "ratio_min_points": RATIO_MIN_POINTS, "min_customers": MIN_CUSTOMERS,
                       "out_of_range_share": OUT_OF_RANGE_SHARE},
        "warnings": list(warnings),
    }
    return Drift(warnings=warnings, metadata=_finite(metadata))


def _finite(value: Any) -> Any:
    """JSON-ready: no NaN or infinity anywhere."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
