"""Scaling, the elbow choice, the silhouette sweep and the scikit-learn estimator."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_samples
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_estimator

from custseg.clustering.choose_k import choose_k
from custseg.clustering.estimator import CustomerSegmenter
from custseg.clustering.kmeans import fit_kmeans, silhouettes, sweep_k
from custseg.clustering.scaling import Scaling
from custseg.errors import CustsegError


@pytest.mark.parametrize("inertia, knee", [
    ([1000, 700, 400, 100, 90, 80, 70, 60, 50, 40], 4),      # steep until 4, then a straight gentle line
    ([100, 40, 15, 12, 10, 9, 8.5, 8, 7.6, 7.3], 3),
    ([900, 200, 150, 120, 100, 90, 82, 76, 72, 69], 2),
])
def test_choose_k_finds_the_knee(inertia, knee):
    choice = choose_k(range(1, len(inertia) + 1), inertia)
    assert choice.k == knee and choice.method == "elbow"
    assert f"k = {knee}" in choice.reason


def test_choose_k_on_a_straight_line_falls_back_to_silhouette():
    ks = list(range(1, 9))
    inertia = [100 - 10 * k for k in ks]          # no elbow in a straight line
    sil = [np.nan, 0.3, 0.5, 0.4, 0.2, 0.1, 0.1, 0.1]
    choice = choose_k(ks, inertia, sil)
    assert choice.k == 3 and choice.method == "silhouette"


def test_choose_k_reason_compares_silhouette():
    choice = choose_k([1, 2, 3, 4, 5, 6], [1000, 700, 400, 100, 90, 80], [np.nan, 0.2, 0.3, 0.6, 0.5, 0.4])
    assert choice.k == 4 and "silhouette agrees" in choice.reason


def test_scaling_log_is_log1p_and_inverts():
    X = np.array([[0.0, 1.0], [9.0, -3.0]])
    s = Scaling.fit(X, "log")
    np.testing.assert_allclose(s.transform(X), [[0, np.log(2)], [np.log(10), -np.log(4)]])
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X)
    z = Scaling.fit(X, "log-standard").transform(X)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    with pytest.raises(CustsegError):
        Scaling.fit(X, "cubic")


def test_silhouettes_equal_sklearn():
    rng = np.random.default_rng(0)
    Z = np.vstack([rng.normal(c, 0.5, size=(150, 3)) for c in (0, 3, 6)])
    labelings = [KMeans(k, n_init=1, random_state=1).fit(Z).labels_ for k in (2, 3, 5)]
    for ours, labels in zip(silhouettes(Z, labelings, chunk=97), labelings):
        expected = silhouette_samples(Z, labels)
        # single precision distances: each value within 1e-5, their mean (what is reported) within 1e-7
        np.testing.assert_allclose(ours, expected, atol=1e-5)
        assert abs(ours.mean() - expected.mean()) < 1e-7


def test_sweep_and_elbow_find_planted_clusters():
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]])
    Z = np.vstack([rng.normal(c, 0.4, size=(300, 3)) for c in centres])
    rows = sweep_k(Z, 10, seed=42)
    assert rows["k"] == list(range(1, 11)) and np.isnan(rows["silhouette"][0])
    choice = choose_k(rows["k"], rows["inertia"], rows["silhouette"])
    assert choice.k == 4
    assert int(np.nanargmax(rows["silhouette"])) + 1 == 4


def test_final_fit_on_a_sample_start_is_as_good_as_full_fit():
    rng = np.random.default_rng(5)
    Z = np.vstack([rng.normal(c, 1.0, size=(20_000, 2)) for c in ((0, 0), (4, 1), (1, 5), (6, 6))])
    ours = fit_kmeans(Z, 4, seed=42, n_init=5, init_sample=5_000)
    full = KMeans(4, n_init=5, random_state=42).fit(Z)
    assert ours.inertia_ <= full.inertia_ * 1.001


def test_inertia_no_worse_than_sklearn_kmeans_plus_plus_at_k4(shopify_sample):
    from helpers import features_of

    feats, _, _ = features_of(shopify_sample)
    X = feats[["products_ordered", "average_return_rate", "total_spending"]].sort_index(
        key=lambda s: s.str.len() * 10**12 + s.astype("int64")).to_numpy()
    seg = CustomerSegmenter(4, random_state=42).fit(X)
    reference = KMeans(4, random_state=42).fit(np.log1p(X))
    assert seg.inertia_ <= reference.inertia_ + 1e-6


def test_segmenter_predict_reproduces_labels_and_works_in_a_pipeline():
    rng = np.random.default_rng(1)
    X = np.abs(np.vstack([rng.normal(c, 1.0, size=(100, 3)) for c in (1, 20, 300)]))
    seg = CustomerSegmenter(3).fit(X)
    assert (seg.predict(X) == seg.labels_).all()
    assert seg.transform(X).shape == (300, 3)
    assert seg.score(X) == pytest.approx(-seg.inertia_)
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 2.0), CustomerSegmenter(3)).fit(X)
    assert len(set(pipe.predict(X))) == 3


def test_segmenter_chooses_k_when_not_given():
    rng = np.random.default_rng(2)
    X = np.expm1(np.vstack([rng.normal(c, 0.2, size=(200, 2)) for c in ((1, 1), (4, 1), (1, 4))]))
    seg = CustomerSegmenter(k_max=8).fit(X)
    assert seg.n_clusters_ == 3 and seg.k_choice_.method == "elbow"


def test_check_estimator_passes():
    check_estimator(CustomerSegmenter(k_max=5))
