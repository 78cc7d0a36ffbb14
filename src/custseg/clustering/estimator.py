"""CustomerSegmenter: the clustering step as a scikit-learn estimator over a feature matrix.
(Saving and loading it is model.py's: SegmentationModel.from_segmenter / to_segmenter.)"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..options import K_MAX, MAX_ITER, N_INIT, SCALES, SEED, SILHOUETTE_SAMPLE, SWEEP_SAMPLE, seed_of
from .choose_k import KChoice, choose_k
from .kmeans import cluster_means, fit_kmeans, sweep_k, uniform_sample
from .scaling import Scaling, assign, squared_distances

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
    random_state : int, default=42 (options.SEED)
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

    def __init__(self, n_clusters=None, *, k_max=K_MAX, scale="log", n_init=N_INIT, max_iter=MAX_ITER,
                 random_state=SEED, sweep_sample=SWEEP_SAMPLE, silhouette_sample=SILHOUETTE_SAMPLE, copy_x=True):
        self.n_clusters = n_clusters
        self.k_max = k_max
        self.scale = scale
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.sweep_sample = sweep_sample
        self.silhouette_sample = silhouette_sample
        self.copy_x = copy_x

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        seed = seed_of(self.random_state)
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
            if k < 1:  # (a scikit-learn estimator takes any k >= 1; a run's --k is options.check_k's)
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
        return np.sqrt(squared_distances(Z, self.cluster_centers_))

    def predict(self, X):
        """The nearest segment for each row."""
        check_is_fitted(self)
        Z = self.scaling_.transform(validate_data(self, X, dtype=np.float64, reset=False))
        return assign(Z, self.cluster_centers_)

    def score(self, X, y=None):
        """Opposite of the within-cluster sum of squares of X (higher is better)."""
        d = self.transform(X)
        return -float(np.sum(np.min(d, axis=1) ** 2))
