"""Bootstrap stability (clusterboot) on planted clusters and on structureless noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from custseg.clustering.stability import UNSTABLE_BELOW, bootstrap_stability, jaccard_max


def _fit(X, k, seed=0):
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(X)


def test_jaccard_hand_computed():
    # original {0,1,2} {3,4}; refit {0,1} {2,3,4}: J(C0,D0)=2/3, J(C0,D1)=1/5, J(C1,D1)=2/3, J(C1,D0)=0
    got = jaccard_max([0, 0, 0, 1, 1], [0, 0, 1, 1, 1], 2, 2)
    np.testing.assert_allclose(got, [2 / 3, 2 / 3])
    # an original cluster without rows: NaN; the refit's labels may be permuted
    got = jaccard_max([0, 0, 2], [1, 1, 0], 3, 2)
    assert got[0] == 1.0 and np.isnan(got[1]) and got[2] == 1.0


def test_planted_clusters_are_stable():
    rng = np.random.default_rng(5)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8], [8, 8, 8]], float)
    sizes = [4000, 1500, 800, 3000, 300]
    X = np.concatenate([c + rng.normal(size=(s, 3)) for c, s in zip(centres, sizes)])
    result = bootstrap_stability(X, _fit(X, 5), 5, seed=1)
    assert (result.stability > 0.85).all(), result.stability
    assert (result.runs == 20).all()
    assert not result.frame()["unstable"].any()


@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_noise_is_not_stable(seed):
    rng = np.random.default_rng(seed)
    U = rng.random((30_000, 3))  # more rows than the 20,000 sample: the sampled path
    result = bootstrap_stability(U, _fit(U, 4), 4, seed=seed)
    assert np.sum(result.stability < UNSTABLE_BELOW) >= 3, result.stability
    assert result.stability.mean() < 0.6


def test_gaussian_noise_is_not_stable():  # (the uniform test above asserts < 0.6)
    G = np.random.default_rng(2).normal(size=(8000, 3))
    result = bootstrap_stability(G, _fit(G, 4), 4, seed=0)
    # a spherical cloud has no preferred partition: every segment at best 'doubtful' (< 0.75)
    assert (result.stability < 0.75).all() and result.stability.mean() < 0.65, result.stability


def test_deterministic_with_a_seed():
    X = np.random.default_rng(3).normal(size=(5000, 2))
    labels = _fit(X, 3)
    a = bootstrap_stability(X, labels, 3, seed=7, bootstraps=5)
    b = bootstrap_stability(X, labels, 3, seed=7, bootstraps=5)
    np.testing.assert_array_equal(a.stability, b.stability)
    np.testing.assert_array_equal(a.jaccard, b.jaccard)


def test_edge_cases_are_finite():
    X = np.random.default_rng(4).normal(size=(50, 2))
    one = bootstrap_stability(X, np.zeros(50, int), 1, bootstraps=3)
    assert one.stability.tolist() == [1.0]
    # a segment with no rows at all (k = 3, labels only 0 and 1): stability 0, runs 0
    labels = (X[:, 0] > 0).astype(int)
    res = bootstrap_stability(X, labels, 3, bootstraps=3)
    assert res.runs[2] == 0 and res.stability[2] == 0.0
    assert np.isfinite(res.stability).all()
    # fewer distinct points than k
    same = np.zeros((10, 2))
    res = bootstrap_stability(same, np.arange(10) % 2, 2, bootstraps=3)
    assert np.isfinite(res.stability).all()
    with pytest.raises(ValueError):
        bootstrap_stability(np.array([[np.nan, 0.0]]), [0], 1)
