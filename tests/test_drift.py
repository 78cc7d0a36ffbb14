"""predict warnings: shares unlike training, features outside the training range, another schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from custseg.profiles.drift import TrainingReference, check_drift


def _ref(customers, schema="shopify"):
    return TrainingReference(schema=schema, names=[f"S{i}" for i in range(len(customers))], customers=customers,
                             feature_min={"total_spending": 0.0, "order_count": 1.0},
                             feature_max={"total_spending": 1000.0, "order_count": 20.0})


def _labels(*counts):
    return np.repeat(np.arange(len(counts)), counts)


def _in_range(n):
    return {"total_spending": np.full(n, 50.0), "order_count": np.full(n, 2.0)}


def test_like_training_no_warning():
    drift = check_drift(_ref([92, 8]), _in_range(100), _labels(91, 9), "shopify")
    assert drift.warnings == []
    assert [s["share"] for s in drift.metadata["segments"]] == [0.91, 0.09]
    assert drift.metadata["segments"][1]["training_share"] == 0.08
    json.dumps(drift.metadata, allow_nan=False)


def test_ninety_percent_in_a_segment_that_held_eight():
    drift = check_drift(_ref([92, 8]), _in_range(100), _labels(10, 90), "shopify")
    assert drift.warnings == [
        "segment 0 (S0) holds 10% of these customers but held 92% in training; the data may differ from the "
        "training data.",
        "segment 1 (S1) holds 90% of these customers but held 8% in training; the data may differ from the "
        "training data."]
    assert drift.metadata["warnings"] == drift.warnings
    assert [s["flagged"] for s in drift.metadata["segments"]] == [True, True]


def test_ratio_rule_needs_five_points():
    # S2: 5% -> 20% (15 points, 4x): flagged; S0: 70% -> 55% (15 points, 1.3x): not
    drift = check_drift(_ref([70, 25, 5]), _in_range(100), _labels(55, 25, 20))
    assert [s["flagged"] for s in drift.metadata["segments"]] == [False, False, True]
    # 2% -> 6%: 3x but 4 points only
    drift = check_drift(_ref([98, 2]), _in_range(100), _labels(94, 6))
    assert drift.warnings == []


def test_few_customers_shares_not_judged():
    drift = check_drift(_ref([92, 8]), _in_range(10), _labels(0, 10))
    assert drift.warnings == [] and drift.metadata["segment_shares_compared"] is False


def test_features_outside_training_range():
    feats = _in_range(100)
    feats["total_spending"][:6] = 2000.0          # 6% above: flagged
    feats["order_count"][:5] = 0.0                 # 5% below: at the threshold, not flagged
    drift = check_drift(_ref([92, 8]), feats, _labels(92, 8))
    assert drift.warnings == ["6% of these customers have total_spending outside the training range (0 to 1000: "
                              "0 below, 6 above); the model never saw such customers."]
    rows = {r["name"]: r for r in drift.metadata["features"]}
    assert (rows["order_count"]["below"], rows["order_count"]["share_outside"], rows["order_count"]["flagged"]) \
        == (5, 0.05, False)


def test_another_schema():
    drift = check_drift(_ref([92, 8]), _in_range(100), _labels(92, 8), "online-retail")
    assert drift.warnings == ["the data has the online-retail schema but the model was trained on shopify data; "
                              "its segments may not describe these customers."]
    assert drift.metadata["schema"] == {"model": "shopify", "data": "online-retail", "differs": True}


def test_reference_from_profiles_ignores_empty_segments():
    profiles = pd.DataFrame({
        "segment": [1, 0, 2], "segment_name": ["B", "A", "C"], "customers": [30, 70, 0],
        "total_spending_min": [5.0, 0.5, np.nan], "total_spending_max": [900.0, 40.0, np.nan],
    })
    ref = TrainingReference.from_profiles(profiles, ["total_spending"], "generic")
    assert ref.names == ["A", "B", "C"] and ref.customers == [70, 30, 0]
    assert ref.shares == [0.7, 0.3, 0.0]
    assert (ref.feature_min, ref.feature_max) == ({"total_spending": 0.5}, {"total_spending": 900.0})
    again = TrainingReference.from_dict(json.loads(json.dumps(ref.to_dict())), ref.names)
    assert again == ref
    # a segment empty in training that now holds customers: no division by zero, flagged
    drift = check_drift(ref, {"total_spending": np.full(100, 10.0)}, _labels(50, 20, 30))
    assert drift.metadata["segments"][2]["flagged"] is True
    json.dumps(drift.metadata, allow_nan=False)


def test_reference_needs_feature_ranges():
    from custseg.errors import CustsegError

    with pytest.raises(CustsegError, match="order_count"):
        TrainingReference.from_profiles(pd.DataFrame({"segment": [0], "segment_name": ["A"], "customers": [1]}),
                                        ["order_count"], "generic")
