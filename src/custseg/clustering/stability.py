"""Is each segment real? Bootstrap stability at the chosen k, after Hennig's clusterboot.

Hennig, C. (2007), "Cluster-wise assessment of cluster stability", Computational Statistics &
Data Analysis 52, 258-271; R package fpc, `clusterboot`. Here:

1. The original clustering is the model's: `labels` of the rows of the scaled matrix `Z`.
   When there are more than `sample` rows (default 20,000), a uniform sample of that many rows
   (seeded) stands for the data; below, all rows.
2. For b = 1..B (default 20): a bootstrap sample (draw the sample's rows with replacement),
   K-means refitted on it at the same k (k-means++, `n_init` starts, seed + b; one thread: on
   20,000 rows threads cost more than they bring).
3. For each original segment C and each bootstrap cluster D, over the distinct rows drawn in
   this bootstrap: Jaccard(C, D) = |C n D| / |C u D|; C's similarity in this run is its maximum
   over D. A segment with no row drawn in a run has no value in that run.
4. A segment's `stability` is the mean of its similarities over the runs in which it had rows.
   Hennig's reading: below 0.6 the segment is not stable (dissolved), 0.6-0.75 patterns
   but doubtful, above 0.85 highly stable.

A segment too small to appear in any run (fewer customers than about n / sample) gets
stability 0 and `runs` 0: at this sample size it cannot be found again. k = 1 is 1.0 by
definition (one cluster, always recovered). Every value is finite.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from ..runtime.parallel import parallel_map, single_threaded

UNSTABLE_BELOW = 0.6
SAMPLE = 20_000
BOOTSTRAPS = 20


@dataclass(frozen=True)
class Stability:
    stability: np.ndarray  # float64 per segment, mean Jaccard (0 when never drawn)
    runs: np.ndarray  # int64 per segment, bootstrap runs in which it had rows
    jaccard: np.ndarray  # B x k, NaN where the segment had no rows in that run (not an output)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"stability": self.stability, "stability_runs": self.runs,
                             "unstable": self.stability < UNSTABLE_BELOW},
                            index=pd.RangeIndex(len(self.stability), name="segment"))


def jaccard_max(original, refit, k_original: int, k_refit: int) -> np.ndarray:
    """For each original cluster, the largest Jaccard similarity with any refit cluster (same rows).

    NaN for an original cluster without rows."""
    original = np.asarray(original, dtype=np.int64)
    refit = np.asarray(refit, dtype=np.int64)
    both = np.bincount(original * k_refit + refit, minlength=k_original * k_refit).reshape(k_original, k_refit)
    rows, cols = both.sum(axis=1), both.sum(axis=0)
    union = rows[:, None] + cols[None, :] - both
    jac = np.divide(both, union, out=np.zeros(both.shape), where=union > 0)
    return np.where(rows > 0, jac.max(axis=1), np.nan)


def bootstrap_stability(Z, labels, k: int, seed: int = 0, bootstraps: int = BOOTSTRAPS,
                        sample: int = SAMPLE, n_init: int = 1, max_iter: int = 100) -> Stability:
    """Per-segment clusterboot stability of the clustering `labels` (0..k-1) of the rows of Z."""
    Z = np.asarray(Z, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if Z.ndim != 2 or labels.shape != (len(Z),):
        raise ValueError("Z must be n x d and labels one segment per row")
    if len(Z) and (labels.min() < 0 or labels.max() >= k):
        raise ValueError("labels must be 0..k-1")
    if not np.isfinite(Z).all():
        raise ValueError("stability needs finite data")
    rng = np.random.default_rng(seed)
    n = len(Z)
    if n > sample:
        chosen = np.sort(rng.choice(n, size=sample, replace=False))
        Z, labels = Z[chosen], labels[chosen]
        n = sample
    jaccard = np.full((bootstraps, k), np.nan)
    if k == 1:
        jaccard[:, 0] = 1.0 if n else np.nan
        draws = []
    else:  # drawn in order from the one generator: the same samples whatever runs them
        draws = [rng.integers(0, n, size=n) for _ in range(bootstraps)]

    def refit(b: int) -> np.ndarray:
        drawn = draws[b]
        distinct = np.unique(drawn)
        fit_k = min(k, len(distinct))  # K-means needs at least k rows
        km = KMeans(n_clusters=fit_k, init="k-means++", n_init=n_init, max_iter=max_iter,
                    random_state=seed + 1 + b).fit(Z[drawn])
        # every copy of a row lies at the same point, so gets the same cluster: label the distinct rows
        return jaccard_max(labels[distinct], km.predict(Z[distinct]), k, fit_k)

    # The refits are independent and seeded: one per core, each K-means on one thread (as the
    # k sweep); the native thread pools are limited, and the warnings filtered, once for all of
    # them (both are the process's, so they are set here, not in the threads).
    with single_threaded(), warnings.catch_warnings():
        # (fewer distinct points than k: scikit-learn warns and leaves clusters empty)
        warnings.simplefilter("ignore", ConvergenceWarning)
        for b, values in enumerate(parallel_map(refit, range(len(draws)))):
            jaccard[b] = values
    runs = np.sum(~np.isnan(jaccard), axis=0).astype(np.int64)
    totals = np.nansum(jaccard, axis=0)
    stability = np.divide(totals, runs, out=np.zeros(k), where=runs > 0)
    return Stability(stability, runs, jaccard)
