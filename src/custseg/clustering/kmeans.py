"""K-means: the k sweep (inertia, silhouette and other indices per k) and the final fit on everyone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from ..runtime.parallel import parallel_map, single_threaded
from .scaling import block_distances

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
    # |a - b|^2 = |a|^2 - 2 a.b + |b|^2 as one matrix product of augmented rows, [-2a, |a|^2, 1] .
    # [b, 1, |b|^2]: the squared distances come out of one product, with no temporaries to add
    # (half the time of the three-step sum at 10,000 rows; the same values).
    ones = np.ones((n, 1), dtype=np.float32)
    left = np.hstack([-2.0 * Z, sq[:, None], ones])
    right = np.hstack([Z, ones, sq[:, None]])

    def add_chunk(start: int) -> None:  # chunks are independent: they run side by side
        stop = min(start + chunk, n)
        d2 = left[start:stop] @ right.T
        np.maximum(d2, 0.0, out=d2)
        d = np.sqrt(d2, out=d2)
        d[np.arange(stop - start), np.arange(start, stop)] = 0.0
        total_all[start:stop] = d @ onehot

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
