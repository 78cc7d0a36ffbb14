"""End to end on the built-in sample: the flow runs and writes every output."""

import json

import pandas as pd

import custseg


def test_segment_small_sample_writes_all_outputs(small_shopify, tmp_path):
    result = custseg.segment(str(small_shopify), k=4)
    out = result.to_dir(tmp_path / "out")
    for name in ("segments.csv", "profiles.csv", "k_selection.csv", "best_sellers.csv", "data_quality.json",
                 "summary.json", "model.json", "report.html"):
        assert (out / name).exists(), name
    segments = pd.read_csv(out / "segments.csv")
    assert list(segments.columns) == ["customer_id", "products_ordered", "average_return_rate", "total_spending",
                                      "segment", "segment_name", "r_score", "f_score", "m_score", "rfm_segment",
                                      "distance", "runner_up", "runner_up_distance", "borderline", "p_alive", "expected_orders_12m", "expected_value_12m"]
    assert set(segments.segment) == {0, 1, 2, 3}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == 4 and summary["customers"] == len(segments)
