"""Aligning two independent fits by their centres (hand-made centres, known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from custseg.outputs.align import align_models, match_centres
from custseg.errors import CustsegError
from custseg.model import SegmentationModel
from custseg.clustering.scaling import Scaling

A = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def _pairs(alignment):
    return [(p.a, p.b) for p in alignment.pairs]


def test_permuted_centres_found():
    b = np.array([[0.1, 9.9], [9.8, 0.2], [0.1, -0.1]])
    al = match_centres(A, b)
    assert _pairs(al) == [(0, 2), (1, 1), (2, 0)]
    assert not any(p.weak for p in al.pairs) and al.unmatched_a == [] and al.unmatched_b == []
    assert al.pairs[0].distance == pytest.approx(np.hypot(0.1, 0.1))
    assert al.a_of(0) == 2


def test_optimal_not_greedy():
    # greedy nearest-first pairs a1-b0 (0.9) then a0-b1 (3.5): 4.4; the optimum is 1.1 + 1.5 = 2.6
    al = match_centres(np.array([[0.0], [2.0]]), np.array([[1.1], [3.5]]))
    assert _pairs(al) == [(0, 0), (1, 1)]


def test_fewer_segments_in_b_leave_one_of_a_unmatched():
    al = match_centres(A, np.array([[9.0, 1.0], [1.0, 9.0]]))
    assert _pairs(al) == [(1, 0), (2, 1)] and al.unmatched_a == [0] and al.unmatched_b == []


def test_more_segments_in_b_a_far_one_stays_unmatched():
    b = np.array([[50.0, 50.0], [0.0, 0.5], [10.0, 0.5], [0.5, 10.0]])
    al = match_centres(A, b)
    assert _pairs(al) == [(0, 1), (1, 2), (2, 3)] and al.unmatched_b == [0]
    note = al.note(["Loyal", "Lapsed", "New"], ["Whales", "L", "La", "N"])
    assert "0 (Whales)" in note.split("New in the second run")[1] and "--model" in note


def test_weak_pair_marked():
    al = match_centres(A, np.array([[0.0, 0.0], [10.0, 0.0], [7.0, 7.0]]))
    assert [(p.a, p.b, p.weak) for p in al.pairs] == [(0, 0, False), (1, 1, False), (2, 2, True)]


def _model(features, method, mean, scale, centers, names):
    return SegmentationModel(features=features, scaling=Scaling(method, np.array(mean, float), np.array(scale, float)),
                             centers=np.array(centers, float),
                             segments=[{"id": i, "name": n} for i, n in enumerate(names)], schema="generic")


def test_models_scaled_differently_and_features_reordered():
    raw = np.array([[100.0, 1.0], [5000.0, 12.0], [20.0, 3.0]])  # total_spending, order_count
    a_scaling = Scaling("log-standard", np.array([4.0, 1.0]), np.array([2.0, 0.5]))
    a = _model(["total_spending", "order_count"], "log-standard", a_scaling.mean, a_scaling.scale,
               a_scaling.transform(raw), ["x", "y", "z"])
    # B: plain standard scaling, features in the other order, segments permuted (2, 0, 1)
    b_scaling = Scaling("standard", np.array([5.0, 900.0]), np.array([3.0, 1500.0]))
    b_raw = raw[[2, 0, 1]][:, [1, 0]]
    b = _model(["order_count", "total_spending"], "standard", b_scaling.mean, b_scaling.scale,
               b_scaling.transform(b_raw), ["p", "q", "r"])
    al = align_models(a, b)
    assert not al.same_model
    assert _pairs(al) == [(0, 1), (1, 2), (2, 0)]
    assert max(p.distance for p in al.pairs) < 1e-9


def test_same_model_corresponds_by_number():
    a = _model(["total_spending", "order_count"], "log", [0, 0], [1, 1], [[1, 2], [3, 4]], ["x", "y"])
    al = align_models(a, a)
    assert al.same_model and _pairs(al) == [(0, 0), (1, 1)] and "same model" in al.note()


def test_different_features_refused_pointing_at_model():
    a = _model(["total_spending", "order_count"], "log", [0, 0], [1, 1], [[1, 2], [3, 4]], ["x", "y"])
    b = _model(["total_spending", "recency_days"], "log", [0, 0], [1, 1], [[1, 2], [3, 4]], ["x", "y"])
    with pytest.raises(CustsegError, match=r"first run only: order_count; the second run only: recency_days.*--model"):
        align_models(a, b)
