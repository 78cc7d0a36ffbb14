"""Distances to the assigned and runner-up centres, and the borderline flag."""

from __future__ import annotations

import numpy as np
import pytest

from custseg.clustering.margins import borderline_counts, centre_margins


def test_hand_computed():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
    Z = np.array([[1.0, 0.0], [4.9, 0.0], [5.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    m = centre_margins(Z, centres)
    np.testing.assert_allclose(m.distance, [1, 4.9, 5, 0, 5])
    np.testing.assert_allclose(m.runner_up_distance, [9, 5.1, 5, 10, np.sqrt(49 + 16)])
    assert m.runner_up.tolist() == [1, 1, 1, 1, 1]
    # borderline: distance >= 0.9 * runner-up: 4.9 >= 4.59 yes; 5 = 5 yes
    assert m.borderline.tolist() == [False, True, True, False, False]
    assert borderline_counts([0, 0, 0, 0, 0], m.borderline, 3).tolist() == [2, 0, 0]


def test_given_labels_and_brute_force():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(3000, 3))
    centres = rng.normal(size=(4, 3))
    labels = rng.integers(0, 4, 3000)  # not the nearest: the runner-up is the nearest other centre
    m = centre_margins(Z, centres, labels, block=257)
    for i in range(0, 3000, 97):
        d = [float(np.linalg.norm(Z[i] - c)) for c in centres]
        others = [(d[j], j) for j in range(4) if j != labels[i]]
        assert m.distance[i] == pytest.approx(d[labels[i]])
        assert (m.runner_up_distance[i], m.runner_up[i]) == pytest.approx(min(others))
        assert m.borderline[i] == (d[labels[i]] >= 0.9 * min(others)[0])


def test_k1_and_coinciding_centres():
    Z = np.array([[1.0, 1.0], [2.0, 2.0]])
    m = centre_margins(Z, np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(m.runner_up_distance, m.distance)
    assert m.runner_up.tolist() == [0, 0] and not m.borderline.any()
    m = centre_margins(Z, np.array([[1.0, 1.0], [1.0, 1.0]]))
    assert m.borderline.all()
    assert np.isfinite(m.frame().select_dtypes("number").to_numpy()).all()
