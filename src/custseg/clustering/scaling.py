"""The feature space K-means works in: the scaling of the features and the nearest centre.

Kept apart from clustering.py (which needs scikit-learn) so that applying a fitted model,
the profiles and the model file load without importing scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CustsegError
from ..options import SCALES


# ---------------------------------------------------------------------------- scaling


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """log1p for x >= 0, mirrored for negative values (refunds) so it is defined everywhere.

    sign(x) * log1p(|x|), computed in one new array (no temporaries of x's size).
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.abs(x)
    np.log1p(out, out=out)
    np.copysign(out, x, out=out)
    out += 0.0  # -0.0 -> 0.0, as sign(-0.0) * 0.0 gives
    return out


def signed_expm1(y: np.ndarray) -> np.ndarray:
    return np.sign(y) * np.expm1(np.abs(y))


@dataclass
class Scaling:
    """A fitted feature transform: optional signed log1p, then optional standardisation."""

    method: str
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, method: str) -> "Scaling":
        if method not in SCALES:
            raise CustsegError(f"--scale {method!r} is unknown; use one of: {', '.join(SCALES)}.")
        n_features = X.shape[1]
        mean, scale = np.zeros(n_features), np.ones(n_features)
        if method in ("log-standard", "standard"):
            logged = signed_log1p(X) if method == "log-standard" else X
            mean = logged.mean(axis=0)
            std = logged.std(axis=0)
            scale = np.where(std > 0, std, 1.0)
        return cls(method, mean, scale)

    def transform(self, X: np.ndarray, copy: bool = True, chunk: int = 1 << 20) -> np.ndarray:
        """The scaled features; with copy=False, X (float64) itself is overwritten and returned.

        Works through row blocks, so that no temporary as large as X is made (tens of
        millions of customers).
        """
        out = np.empty_like(X, dtype=np.float64) if copy or X.dtype != np.float64 else X
        for start in range(0, len(X), chunk):
            block, target = X[start:start + chunk], out[start:start + chunk]
            if self.method.startswith("log"):
                logged = np.log1p(np.abs(block))
                np.copysign(logged, block, out=target)  # = sign(x) * log1p(|x|): signed_log1p
                target += 0.0  # -0.0 -> 0.0, as sign(-0.0) * 0.0 gives
            elif target is not block:
                target[...] = block
            if self.method in ("log-standard", "standard"):
                target -= self.mean
                target /= self.scale
        return out

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        out = np.array(Z, dtype=np.float64, copy=True)
        if self.method in ("log-standard", "standard"):
            out = out * self.scale + self.mean
        return signed_expm1(out) if self.method.startswith("log") else out

    def to_dict(self) -> dict:
        return {"method": self.method, "mean": self.mean.tolist(), "scale": self.scale.tolist()}


def squared_distances(Z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (Z * Z).sum(axis=1)[:, None] - 2.0 * Z @ centres.T + (centres * centres).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def block_distances(block: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distances (centres x rows) from each row of `block` to each centre.

    Feature by feature over a column-major copy of the block: the sum over features runs in
    the same order as ((row - centre) ** 2).sum(), so the values are the same bits, and every
    pass is over contiguous memory (three times quicker than summing along rows)."""
    columns = np.ascontiguousarray(block.T)
    d = np.empty((len(centres), len(block)))
    diff = np.empty(len(block))
    for j, centre in enumerate(centres):  # one centre at a time: no (rows x k x features) temporary
        row = d[j]
        np.subtract(columns[0], centre[0], out=row)
        np.square(row, out=row)
        for f in range(1, len(centre)):
            np.subtract(columns[f], centre[f], out=diff)
            np.square(diff, out=diff)
            row += diff
    return d


def assign(Z: np.ndarray, centres: np.ndarray, chunk: int = 100_000, with_inertia: bool = False):
    """Index of the nearest centre for each row, in chunks (bounded memory); ties go to the lower index.

    With `with_inertia`, also the within-cluster sum of squares.
    """
    out = np.empty(len(Z), dtype=np.int64)
    inertia = 0.0
    centres = np.asarray(centres, dtype=np.float64)
    for start in range(0, len(Z), chunk):
        d = block_distances(Z[start:start + chunk], centres)
        best = np.argmin(d, axis=0)
        out[start:start + chunk] = best
        if with_inertia:
            inertia += float(d[best, np.arange(len(best))].sum())
    return (out, inertia) if with_inertia else out
