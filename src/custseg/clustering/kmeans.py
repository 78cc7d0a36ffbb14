"""Clustering: scale the features, sweep k, choose k at the elbow, fit the final K-means.

`choose_k` is the one place that decides k; `CustomerSegmenter` wraps the whole
step as a scikit-learn estimator over a feature matrix.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.utils.validation import check_is_fitted, validate_data

# The feature space (no scikit-learn needed), kept importable from here.
from .scaling import SCALES, Scaling, _squared_distances, assign, block_distances, signed_expm1, signed_log1p  # noqa: F401

# ---------------------------------------------------------------------------- choosing k


@dataclass
class KChoice:
    k: int
    method: str   # "elbow", "silhouette" (no elbow found), "given"
    reason: str


def choose_k(ks, inertia, silhouette=None) -> KChoice:
    """The elbow of the inertia curve (kneedle: convex, decreasing).

    Falls back to the best silhouette when the curve has no elbow. The reason says
    where silhouette stands relative to the elbow.
    """
    from kneed import KneeLocator

    ks = [int(k) for k in ks]
    inertia = [float(v) for v in inertia]
    sil = {int(k): float(s) for k, s in zip(ks, silhouette)} if silhouette is not None else {}
    sil = {k: s for k, s in sil.items() if np.isfinite(s)}
    best_sil = max(sil, key=sil.get) if sil else None
    knee = None
    if len(ks) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            knee = KneeLocator(ks, inertia, curve="convex", direction="decreasing").knee
    if knee is not None and int(knee) >= 2:
        k = int(knee)
        reason = f"the elbow of the inertia curve is at k = {k}"
        if best_sil is not None and k in sil:
            if best_sil == k:
                reason += f"; silhouette agrees (best at k = {k}, {sil[k]:.3f})"
            else:
                reason += (f"; silhouette is {sil[k]:.3f} there, {sil[best_sil] - sil[k]:.3f} below its best "
                           f"({sil[best_sil]:.3f} at k = {best_sil})")
        return KChoice(k, "elbow", reason)
    if best_sil is not None:
        return KChoice(best_sil, "silhouette",
                       f"the inertia curve has no clear elbow; k = {best_sil} has the best silhouette "
                       f"({sil[best_sil]:.3f})")
    k = min(max(ks), 2) if ks else 1
    return KChoice(k, "fallback", f"too few values of k to find an elbow; k = {k}")


# ---------------------------------------------------------------------------- sweep and fit


def uniform_sample(n: int, size: int | None, seed: int) -> np.ndarray | None:
    """Sorted row indices of a uniform sample, or None when everyone fits."""
    if size is None or n <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def silhouettes(Z: np.ndarray, labelings: list[np.ndarray], chunk: int = 1000) -> list[np.ndarray]:
    """Silhouette value of every row under each labeling, sharing one pass over the distances.

    Equivalent to sklearn.metrics.silhouette_samples for each labeling, but the pairwise
    distances are computed once (in row chunks) for all labelings of the k sweep.
    """
    n = len(Z)
    ks = [int(labels.max()) + 1 for labels in labelings]
    offsets = np.concatenate([[0], np.cumsum(ks)])
    # All labelings side by side as one indicator matrix: one matrix product per chunk.
    # The distances are computed and summed in single precision (half the time of double; the
    # silhouettes differ from double precision by ~1e-6, far below the 3 decimals shown). The
    # rows are centred first, so that squared norms stay small and their differences exact enough.
    onehot = np.zeros((n, int(offsets[-1])), dtype=np.float32)
    for labels, offset in zip(labelings, offsets[:-1]):
        onehot[np.arange(n), offset + labels] = 1.0
    total_all = np.empty((n, onehot.shape[1]))
    Z = np.asarray(Z - Z.mean(axis=0), dtype=np.float32)
    sq = (Z * Z).sum(axis=1)

    def add_chunk(start: int) -> None:  # chunks are independent: they run side by side
        block = Z[start:start + chunk]
        d2 = sq[start:start + chunk, None] - 2.0 * block @ Z.T + sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        d = np.sqrt(d2, out=d2)
        d[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        total_all[start:start + chunk] = d @ onehot

    parallel_map(add_chunk, range(0, n, chunk))
    sums = [total_all[:, offsets[i]:offsets[i + 1]] for i in range(len(labelings))]
    counts = [onehot[:, offsets[i]:offsets[i + 1]].sum(axis=0, dtype=np.float64) for i in range(len(labelings))]
    values = []
    for labels, total, count in zip(labelings, sums, counts):
        own = count[labels] - 1.0
        a = np.divide(total[np.arange(n), labels], own, out=np.zeros(n), where=own > 0)
        mean_other = total / np.where(count > 0, count, np.inf)[None, :]
        mean_other[np.arange(n), labels] = np.inf
        b = mean_other.min(axis=1)
        s = np.where(own > 0, (b - a) / np.maximum(np.maximum(a, b), np.finfo(float).tiny), 0.0)
        values.append(s)
    return values


def sweep_k(Z: np.ndarray, k_max: int, seed: int, silhouette_sample: int = 10_000, n_init: int = 3,
            max_iter: int = 500) -> dict[str, list]:
    """Inertia for k = 1..k_max; silhouette (on a sample), Calinski-Harabasz and Davies-Bouldin for k >= 2.

    The values of k are fitted side by side, one per core, each K-means on one thread
    (see `single_threaded`).
    """
    n_distinct = _distinct_rows(Z)
    rows: dict[str, list] = {"k": [], "inertia": [], "silhouette": [], "calinski_harabasz": [], "davies_bouldin": []}
    sil_index = uniform_sample(len(Z), silhouette_sample, seed)

    def fit_one(k: int) -> tuple[float, float, float, np.ndarray | None]:
        km = KMeans(n_clusters=k, init="k-means++", n_init=n_init, max_iter=max_iter, random_state=seed).fit(Z)
        labels = km.labels_
        if k >= 2 and 2 <= len(np.unique(labels)) < len(Z):  # the indices need 2..n-1 clusters
            return (float(km.inertia_), float(calinski_harabasz_score(Z, labels)),
                    float(davies_bouldin_score(Z, labels)), labels if sil_index is None else labels[sil_index])
        return float(km.inertia_), np.nan, np.nan, None

    labelings = []
    ks = range(1, max(1, min(k_max, n_distinct, len(Z) - 1)) + 1)
    with single_threaded():
        # the largest k first (they take longest): the cores finish together
        fitted = parallel_map(fit_one, reversed(ks))[::-1]
        for k, (inertia, ch, db, labels) in zip(ks, fitted):
            rows["k"].append(k)
            rows["inertia"].append(inertia)
            rows["calinski_harabasz"].append(ch)
            rows["davies_bouldin"].append(db)
            labelings.append(labels)
        Zs = Z if sil_index is None else Z[sil_index]
        usable = [i for i, lab in enumerate(labelings) if lab is not None and 2 <= len(np.unique(lab)) < len(lab)]
        scores = silhouettes(Zs, [labelings[i] for i in usable]) if usable else []
    by_index = {i: float(np.mean(s)) for i, s in zip(usable, scores)}
    rows["silhouette"] = [by_index.get(i, np.nan) for i in range(len(rows["k"]))]
    return rows


def single_threaded():
    """Native thread pools (OpenMP, BLAS) limited to one thread, within this block.

    K-means on a 100,000-row sample gains nothing from a second thread, and an OpenMP
    team whose threads share busy cores loses several-fold; with one thread per fit
    (and fits side by side, see `parallel_map`) results do not depend on the machine's
    number of cores.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def parallel_map(function, items, workers: int | None = None) -> list:
    """[function(item) for item in items], run on up to one thread per core (in order)."""
    from concurrent.futures import ThreadPoolExecutor

    items = list(items)
    workers = min(len(items), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="custseg-kmeans") as pool:
        return list(pool.map(function, items))


def _distinct_rows(Z: np.ndarray, limit: int = 1000) -> int:
    """Number of distinct rows, counted up to `limit` (enough to cap k)."""
    head = Z[: min(len(Z), 200_000)]
    if not len(head):
        return 0
    # there are at least as many distinct rows as distinct values in any column (a quicker sort)
    if any(len(np.unique(head[:, j])) >= limit for j in range(head.shape[1])):
        return limit
    return min(limit, len(np.unique(head, axis=0)))


LARGE = 5_000_000  # rows from which the final full-data pass runs in blocks (see lloyd)


def fit_kmeans(Z: np.ndarray, k: int, seed: int, n_init: int = 10, max_iter: int = 500,
               init_sample: int | None = 100_000) -> KMeans:
    """The final K-means on everyone.

    With more rows than `init_sample`, the n_init k-means++ starts are run on a uniform
    sample and the best centres seed a single run on all rows: scikit-learn's, or, from
    `LARGE` rows on, `lloyd`, the same algorithm in row blocks without copying the data.
    """
    index = uniform_sample(len(Z), init_sample, seed)
    with single_threaded():
        if index is None:
            return KMeans(n_clusters=k, init="k-means++", n_init=n_init, max_iter=max_iter, random_state=seed).fit(Z)
        start = KMeans(n_clusters=k, init="k-means++", n_init=n_init, max_iter=max_iter,
                       random_state=seed).fit(Z[index])
        if len(Z) >= LARGE:
            centres, n_iter, labels = lloyd(Z, start.cluster_centers_, max_iter, with_labels=True)
            return FittedCentres(cluster_centers_=centres, n_iter_=n_iter, labels_=labels)
        return KMeans(n_clusters=k, init=start.cluster_centers_, n_init=1, max_iter=max_iter,
                      random_state=seed).fit(Z)


@dataclass
class FittedCentres:
    """What fit_kmeans returns from `lloyd` (the attributes of a fitted KMeans that are used)."""

    cluster_centers_: np.ndarray
    n_iter_: int
    labels_: np.ndarray  # each row's centre in the last pass (int32)


def lloyd(Z: np.ndarray, centres: np.ndarray, max_iter: int = 500, tol: float = 1e-4,
          chunk: int = 1 << 20, with_labels: bool = False):
    """Lloyd's K-means iterations from given centres, reading Z in row blocks.

    Stops as scikit-learn's KMeans does: when no label changes, or when the centres
    move (sum of squared shifts) by at most `tol` times the mean variance of the
    features. A centre that loses all its rows stays where it was. Memory beyond Z: one
    int32 label per row and one block of distances. Returns (centres, iterations), and with
    `with_labels` each row's centre in the last pass (the centres are their means).
    """
    n, k = len(Z), len(centres)
    centres = np.array(centres, dtype=np.float64, copy=True)
    mean = np.zeros(Z.shape[1])
    for start in range(0, n, chunk):
        mean += Z[start:start + chunk].sum(axis=0)
    mean /= n
    variance = np.zeros(Z.shape[1])
    for start in range(0, n, chunk):
        variance += ((Z[start:start + chunk] - mean) ** 2).sum(axis=0)
    threshold = float(np.mean(variance / n)) * tol
    labels = np.full(n, -1, dtype=np.int32)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        sums = np.zeros_like(centres)
        counts = np.zeros(k)
        changed = 0
        for start in range(0, n, chunk):
            block = Z[start:start + chunk]
            best = _nearest(block, centres)
            changed += int(np.count_nonzero(best != labels[start:start + chunk]))
            labels[start:start + chunk] = best
            counts += np.bincount(best, minlength=k)
            for j in range(Z.shape[1]):
                sums[:, j] += np.bincount(best, weights=block[:, j], minlength=k)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if changed == 0 or shift <= threshold:
            break
    return (centres, n_iter, labels) if with_labels else (centres, n_iter)


def _nearest(block: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.argmin(block_distances(block, centres), axis=0).astype(np.int32)


def cluster_means(Z: np.ndarray, labels: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The mean of each cluster's rows, added up in one fixed order.

    scikit-learn's Lloyd loop sums the centres per OpenMP thread, so their last bits depend on
    the number of threads; recomputing the (converged) means here makes the centres, and the
    labels assigned from them, the same bytes on any machine. An empty cluster keeps `fallback`.
    """
    k = len(fallback)
    counts = np.bincount(labels, minlength=k)
    centres = np.array(fallback, dtype=np.float64, copy=True)
    used = counts > 0
    for j in range(Z.shape[1]):  # bincount adds the rows one after the other, in row order
        sums = np.bincount(labels, weights=Z[:, j], minlength=k)
        centres[used, j] = sums[used] / counts[used]
    return centres


# ---------------------------------------------------------------------------- estimator


class CustomerSegmenter(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means customer segmentation over a feature matrix (customers x features).

    Scales the features (`scale`), chooses the number of segments at the elbow of the
    inertia curve over k = 1..k_max when `n_clusters` is None, and fits K-means
    (k-means++) with `n_init` starts. Segments are numbered by ascending mean of the
    first feature in original units, so ids do not depend on the random start.

    Parameters
    ----------
    n_clusters : int or None, default=None
        Number of segments; None chooses it by the elbow method.
    k_max : int, default=15
        Largest k of the sweep.
    scale : {"log", "log-standard", "standard", "none"}, default="log"
        Feature transform before clustering; "log" is log1p (signed for negative values).
    n_init : int, default=10
        k-means++ starts of the final model (the best is kept).
    max_iter : int, default=500
    random_state : int, default=42
    sweep_sample : int or None, default=100_000
        The k sweep and the starts run on a uniform sample of this many rows.
    silhouette_sample : int, default=10_000
        Rows used for silhouette scores.
    copy_x : bool, default=True
        False lets `fit` scale a float64 X in place (no copy of a large matrix); X is
        then overwritten.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features), centres in the scaled space
    labels_ : ndarray (n_samples,)
    inertia_ : float, within-cluster sum of squares in the scaled space
    n_clusters_ : int
    k_selection_ : dict of lists (k, inertia, silhouette, calinski_harabasz, davies_bouldin) or None
    k_choice_ : KChoice
    scaling_ : Scaling
    """

    def __init__(self, n_clusters=None, *, k_max=15, scale="log", n_init=10, max_iter=500, random_state=42,
                 sweep_sample=100_000, silhouette_sample=10_000, copy_x=True):
        self.n_clusters = n_clusters
        self.k_max = k_max
        self.scale = scale
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.sweep_sample = sweep_sample
        self.silhouette_sample = silhouette_sample
        self.copy_x = copy_x

    def _seed(self) -> int:
        if self.random_state is None:
            return 42
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(0, 2**31 - 1))
        return int(self.random_state)

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        seed = self._seed()
        self.scaling_ = Scaling.fit(X, self.scale)
        Z = self.scaling_.transform(X, copy=self.copy_x)
        if self.n_clusters is None:
            index = uniform_sample(len(Z), self.sweep_sample, seed)
            Zs = Z if index is None else Z[index]
            self.k_selection_ = sweep_k(Zs, self.k_max, seed, self.silhouette_sample, max_iter=self.max_iter)
            self.k_choice_ = choose_k(self.k_selection_["k"], self.k_selection_["inertia"],
                                      self.k_selection_["silhouette"])
        else:
            k = int(self.n_clusters)
            if k < 1:
                raise ValueError(f"n_clusters must be >= 1, got {k}")
            if k > len(Z):
                raise ValueError(f"n_clusters={k} is larger than the number of samples ({len(Z)})")
            self.k_selection_ = None
            self.k_choice_ = KChoice(k, "given", f"k = {k} was given")
        km = fit_kmeans(Z, self.k_choice_.k, seed, self.n_init, self.max_iter, self.sweep_sample)
        # Number segments by ascending first feature (original units), then by centre position.
        centres = cluster_means(Z, km.labels_, km.cluster_centers_)
        order = np.lexsort(tuple(centres[:, j] for j in reversed(range(centres.shape[1]))))
        self.cluster_centers_ = centres[order]
        # Labels come from the same assignment as predict(), so scoring the training
        # data reproduces them exactly.
        self.labels_, self.inertia_ = assign(Z, self.cluster_centers_, with_inertia=True)
        self.n_clusters_ = int(len(centres))
        self.n_iter_ = int(km.n_iter_)
        return self

    def transform(self, X):
        """Distances to the segment centres (in the scaled space)."""
        check_is_fitted(self)
        Z = self.scaling_.transform(validate_data(self, X, dtype=np.float64, reset=False))
        return np.sqrt(_squared_distances(Z, self.cluster_centers_))

    def predict(self, X):
        """The nearest segment for each row."""
        check_is_fitted(self)
        Z = self.scaling_.transform(validate_data(self, X, dtype=np.float64, reset=False))
        return assign(Z, self.cluster_centers_)

    def score(self, X, y=None):
        """Opposite of the within-cluster sum of squares of X (higher is better)."""
        d = self.transform(X)
        return -float(np.sum(np.min(d, axis=1) ** 2))

    def to_json(self, segment_names: list[str] | None = None) -> str:
        """The fitted model as custseg model JSON (docs/formats.md); segments are named
        "Segment 0", "Segment 1", ... unless `segment_names` are given."""
        from ..model import SegmentationModel

        return SegmentationModel.from_segmenter(self, segment_names).to_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> "CustomerSegmenter":
        """A fitted CustomerSegmenter from model JSON (validated; nothing is executed);
        it predicts exactly as the estimator that wrote it."""
        from ..model import SegmentationModel

        return SegmentationModel.from_json(text, "model JSON").to_segmenter()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return tags
