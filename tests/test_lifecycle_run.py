"""The lifecycle models wired into run, predict, model.json and --holdout (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_DATA, shared_file
from custseg.model import MODEL_VERSION, load_model
from custseg.profiles import backtest as bt
from custseg.profiles.lifecycle import DEFAULT_MODEL, FIT_SAMPLE
from custseg.profiles.lifecycle_models import LifecycleModel, score_customers
from helpers import cli

# One order per line (order ids), the data ending on 2024-03-31: the summary's clock ends on
# 2024-04-01 (an order on the last day gives T = 1).
TINY = """customer_id,order_id,order_date,amount
A,1,2024-01-01,100
A,2,2024-01-11,50
A,3,2024-03-01,70
B,4,2024-02-01,40
C,5,2024-01-05,30
C,6,2024-01-20,-80
D,7,2024-03-31,10
D,8,2024-03-31,20
E,9,2024-01-02,0
E,10,2024-02-02,0
F,11,2024-01-03,25
F,12,2024-01-10,35
F,13,2024-01-17,45
F,14,2024-02-14,55
G,15,2024-03-10,60
H,16,2024-01-15,15
H,17,2024-03-20,25
"""

# Computed by hand: x repeat orders, t_x days first -> last, T days first -> 2024-04-01,
# mean value of the repeat orders (value_orders of them; a one-time buyer: their net spend, weight 0).
# Without quantities a negative amount is a refund, not a purchase (sources/schemas.py): no order.
HAND = {  # customer: (x, t_x, T, mean_value, value_orders)
    "A": (2, 60, 91, 60.0, 2),    # Jan 1, Jan 11, Mar 1: (50 + 70) / 2
    "B": (0, 0, 60, 40.0, 0),     # Feb 1 only
    "C": (0, 0, 87, -50.0, 0),    # a refund larger than the purchase (no purchase: no order): net -50
    "D": (1, 0, 1, 20.0, 1),      # two orders on the last day
    "E": (1, 31, 90, 0.0, 1),     # zero spend
    "F": (3, 42, 89, 45.0, 3),    # Jan 3 .. Feb 14: (35 + 45 + 55) / 3
    "G": (0, 0, 22, 60.0, 0),
    "H": (1, 65, 77, 25.0, 1),    # Jan 15 -> Mar 20
}


def _segments(directory: Path) -> pd.DataFrame:
    return pd.read_csv(directory / "segments.csv", dtype={"customer_id": str, "segment_name": str},
                       keep_default_na=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("lifecycle")
    data = base / "tiny.csv"
    data.write_text(TINY, encoding="utf-8")
    out = base / "run"
    done = cli("run", data, "--out", out, "--k", "2", "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    return data, out


def test_tiny_table_scores_match_the_models_called_on_the_hand_summary(tiny_run):
    _, out = tiny_run
    segments = _segments(out).set_index("customer_id")
    assert list(segments.columns[-3:]) == ["p_alive", "expected_orders_12m", "expected_value_12m"]
    model = load_model(out / "model.json").lifecycle
    assert model is not None and model.purchases.model == DEFAULT_MODEL
    ids = list(HAND)
    x, t_x, T, mean, vo = (np.array([HAND[c][i] for c in ids], dtype=float) for i in range(5))
    want = score_customers(model, x, t_x, T, mean, vo)
    got = segments.loc[ids]
    np.testing.assert_allclose(got["p_alive"], want["p_alive"], rtol=1e-12)
    np.testing.assert_allclose(got["expected_orders_12m"], want["expected_orders"], rtol=1e-12)
    np.testing.assert_allclose(got["expected_value_12m"], want["expected_value"], rtol=1e-12)
    # a wrong summary would not match: e.g. counting the first order as a repeat
    wrong = score_customers(model, x + 1, t_x, T, mean, vo)
    assert not np.allclose(got["expected_orders_12m"], wrong["expected_orders"], rtol=1e-9)


def test_zero_and_negative_spenders_get_finite_columns(tiny_run):
    _, out = tiny_run
    segments = _segments(out).set_index("customer_id")
    columns = ["p_alive", "expected_orders_12m", "expected_value_12m"]
    assert np.isfinite(segments[columns].to_numpy(float)).all()
    assert segments.loc["C", "expected_value_12m"] == 0.0  # refunds exceeded purchases
    assert segments.loc["E", "expected_value_12m"] == 0.0  # spent nothing
    assert segments.loc["A", "expected_value_12m"] > 0
    assert ((segments["p_alive"] >= 0) & (segments["p_alive"] <= 1)).all()


def test_profiles_have_the_per_segment_lifecycle_columns(tiny_run):
    _, out = tiny_run
    profiles = pd.read_csv(out / "profiles.csv")
    segments = _segments(out)
    for seg, group in segments.groupby("segment"):
        row = profiles.set_index("segment").loc[seg]
        assert row["expected_value_12m"] == pytest.approx(group["expected_value_12m"].sum())
        assert row["expected_orders_12m"] == pytest.approx(group["expected_orders_12m"].sum())
        assert row["mean_p_alive"] == pytest.approx(group["p_alive"].mean())
        assert row["likely_lost"] == (group["p_alive"] < 0.5).sum()
        lost_spend = group.loc[group["p_alive"] < 0.5, "total_spending"].sum()
        assert row["revenue_at_stake"] == pytest.approx(lost_spend)
    assert profiles["expected_value_12m_share"].sum() == pytest.approx(1.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lifecycle"]["status"] == "scored"
    assert summary["lifecycle"]["columns"] == ["p_alive", "expected_orders_12m", "expected_value_12m"]


def test_model_json_version_2_round_trip(tiny_run, tmp_path):
    _, out = tiny_run
    data = json.loads((out / "model.json").read_text())
    assert MODEL_VERSION == 2 and data["version"] == 2
    assert data["lifecycle"]["purchases"]["model"] == DEFAULT_MODEL
    assert data["lifecycle"]["horizon_months"] == 12 and data["lifecycle"]["monthly_discount"] == 0.01
    loaded = load_model(out / "model.json")
    assert loaded.lifecycle == LifecycleModel.from_dict(data["lifecycle"])
    again = loaded.save(tmp_path / "again.json")
    assert again.read_text() == (out / "model.json").read_text()


def test_predict_gives_the_same_lifecycle_columns_as_the_run(tiny_run, tmp_path):
    data, out = tiny_run
    scored = tmp_path / "scored.csv"
    done = cli("predict", out / "model.json", data, "--out", scored, "--quiet")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(scored, dtype={"customer_id": str}).set_index("customer_id")
    want = _segments(out).set_index("customer_id")
    for column in ("p_alive", "expected_orders_12m", "expected_value_12m"):
        np.testing.assert_array_equal(got.loc[want.index, column], want[column])


def test_a_version_1_model_still_loads_and_predict_says_why_there_is_no_lifecycle(tmp_path):
    # written by custseg before this change (format version 1) on tests/data/shopify_tiny.csv
    v1 = TEST_DATA / "model_v1_shopify_tiny.json"
    assert json.loads(v1.read_text())["version"] == 1
    model = load_model(v1)
    assert model.lifecycle is None and model.version == 1
    scored = tmp_path / "scored.csv"
    done = cli("predict", v1, TEST_DATA / "shopify_tiny.csv", "--out", scored)
    assert done.returncode == 0, done.stderr
    assert "format version 1" in done.stderr
    columns = pd.read_csv(scored).columns
    assert "p_alive" not in columns and "expected_orders_12m" not in columns
    assert list(columns[-1:]) == ["borderline"]  # issue 13's columns end the table without lifecycle ones


def test_a_version_1_model_with_a_lifecycle_key_is_refused(tmp_path):
    data = json.loads((TEST_DATA / "model_v1_shopify_tiny.json").read_text())
    data["lifecycle"] = None
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps(data))
    done = cli("predict", bad, TEST_DATA / "shopify_tiny.csv", "--out", tmp_path / "s.csv")
    assert done.returncode == 2 and "version 2 field" in done.stderr and "Traceback" not in done.stderr


def test_horizon_in_weeks_names_the_columns_and_counts_fewer_orders(tiny_run, tmp_path):
    data, out = tiny_run
    week_out = tmp_path / "weeks"
    done = cli("run", data, "--out", week_out, "--k", "2", "--quiet", "--no-report", "--horizon", "26w")
    assert done.returncode == 0, done.stderr
    weeks = _segments(week_out)
    assert list(weeks.columns[-3:]) == ["p_alive", "expected_orders_26w", "expected_value_26w"]
    year = _segments(out)
    assert (weeks["expected_orders_26w"] < year["expected_orders_12m"]).all()
    np.testing.assert_array_equal(weeks["segment"], year["segment"])  # the segments do not move


@pytest.mark.parametrize("option", ["--horizon", "--holdout"])
def test_bad_durations_are_one_line_errors(tiny_run, tmp_path, option):
    data, _ = tiny_run
    done = cli("run", data, "--out", tmp_path / "x", option, "12y")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("custseg: error:") and option in done.stderr
    assert "Traceback" not in done.stderr


def test_without_dates_or_amounts_the_columns_are_absent_with_the_reason(tiny_run):
    # every schema custseg reads today requires dates; the guard is the lifecycle step's own
    import ibis

    from custseg.profiles.lifecycle import attach, run_lifecycle

    lines = ibis.memtable(pd.DataFrame({"customer_id": ["a", "b"], "amount": [1.0, 2.0]}))
    outcome = run_lifecycle(lines, {"customer_id", "amount"}, None, ["a", "b"], "12m", 42)
    assert outcome.model is None and not outcome.scores
    assert outcome.info["status"] == "absent" and "order_date" in outcome.info["reason"]

    class Result:  # what attach touches
        segments_table = None
        profiles = None
        summary: dict = {}
        model = type("M", (), {"lifecycle": "old", "training": {}})()

    result = Result()
    attach(result, outcome, np.array([0, 1]), 2)
    assert result.summary["lifecycle"]["reason"] == outcome.info["reason"]
    assert result.model.lifecycle is None and result.segments_table is None  # no columns added


# ---------------------------------------------------------------------------- --holdout on real data


@pytest.fixture(scope="module")
def retail_holdout(tmp_path_factory):
    path = shared_file("online_retail_invoices.csv")
    out = tmp_path_factory.mktemp("holdout") / "run"
    done = cli("run", path, "--out", out, "--holdout", "90d", "--quiet")
    assert done.returncode == 0, done.stderr
    return path, out


def _direct_backtest(path: Path, segments: pd.DataFrame) -> dict:
    import ibis

    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "CustomerID": str})
    lines = pd.DataFrame({"customer_id": raw["CustomerID"], "order_id": raw["InvoiceNo"],
                          "order_date": pd.to_datetime(raw["InvoiceDate"]),
                          "amount": raw["TotalPrice"]}).dropna(subset=["customer_id"])
    table = ibis.memtable(lines)
    cutoff, days = bt.holdout_cutoff(lines["order_date"].max(), bt.parse_duration("90d"))
    summary = bt.lifecycle_summary(table, cutoff, days).to_pandas().sort_values("customer_id").reset_index(drop=True)
    model = bt.fit_lifecycle(summary, model=DEFAULT_MODEL, sample_size=FIT_SAMPLE, seed=42)
    daily = bt.repeat_orders_by_day(table, cutoff, days).to_pandas()
    names = segments.set_index("customer_id")["segment_name"].reindex(summary["customer_id"]).to_numpy(dtype=object)
    return bt.backtest(summary, model, names, holdout_days=days, daily_repeat_orders=daily)


def test_holdout_summary_equals_the_backtest_called_directly(retail_holdout):
    path, out = retail_holdout
    got = json.loads((out / "summary.json").read_text())["backtest"]
    want = _direct_backtest(path, _segments(out))
    assert got["cutoff"] == "2011-09-11" and got["holdout_days"] == 90
    assert got["customers"] == want["customers"] == 3370
    for key in ("predicted_orders", "actual_orders", "predicted_revenue", "actual_revenue", "mean_p_alive"):
        assert got["total"][key] == pytest.approx(want["total"][key], rel=1e-6), key
    assert [s["segment"] for s in got["segments"]] == [s["segment"] for s in want["segments"]]
    for g, w in zip(got["segments"], want["segments"]):
        assert g["customers"] == w["customers"]
        assert g["predicted_orders"] == pytest.approx(w["predicted_orders"], rel=1e-6)
        assert g["actual_revenue"] == pytest.approx(w["actual_revenue"], rel=1e-9)
    for key in ("p_alive", "expected_orders"):
        assert got["auc"][key] == pytest.approx(want["auc"][key], abs=1e-6)
    assert got["segment_ranking"]["actual_order"] == want["segment_ranking"]["actual_order"]
    assert got["tracking"]["actual"] == want["tracking"]["actual"]
    np.testing.assert_allclose(got["tracking"]["predicted"], want["tracking"]["predicted"], rtol=1e-6)


def test_holdout_aucs_meet_the_issue_threshold_with_the_default_model(retail_holdout):
    _, out = retail_holdout
    backtest = json.loads((out / "summary.json").read_text())["backtest"]
    assert backtest["model"] == DEFAULT_MODEL
    assert backtest["auc"]["p_alive"] >= 0.7
    assert backtest["auc"]["expected_orders"] >= 0.7


def test_holdout_run_segments_only_the_lines_before_the_cutoff(retail_holdout):
    _, out = retail_holdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["customers"] == 3370  # customers with an order before 2011-09-11
    quality = json.loads((out / "data_quality.json").read_text())
    assert quality["holdout"]["cutoff"] == "2011-09-11"


def test_holdout_report_has_the_tracking_figure(retail_holdout):
    _, out = retail_holdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'data-figure="tracking"' in html and '"tracking":' in html
    assert "Backtest: the last 90d held out" in html


def test_a_horizon_in_days_scores_like_the_conditional_expectation():
    from dataclasses import replace

    from custseg.profiles.lifecycle_models import PurchaseModel, SpendModel, conditional_expected_purchases

    x, t_x, T = np.array([0.0, 2, 5]), np.array([0.0, 30, 200]), np.array([40.0, 90, 365])
    mean, vo = np.array([20.0, 35, 50]), np.array([0.0, 2, 5])
    for purchases in (PurchaseModel("pnbd", 0.55, 10.6, 0.61, 11.7), PurchaseModel("mbgnbd", 0.5, 6.2, 0.9, 1.6)):
        months = LifecycleModel(purchases, SpendModel(6.25, 3.74, 15.44), horizon_months=12)
        days = replace(months, horizon_days=12 * 30.4375)
        a, b = score_customers(months, x, t_x, T, mean, vo), score_customers(days, x, t_x, T, mean, vo)
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-12)
        short = score_customers(replace(months, horizon_days=45.0), x, t_x, T, mean, vo)
        np.testing.assert_allclose(short["expected_orders"],
                                   conditional_expected_purchases(purchases, 45.0, x, t_x, T), rtol=1e-9)
        # 45 days: a whole month discounted once, the rest at 45 / 30.4375 months
        assert (short["expected_value"] < a["expected_value"]).all()
        assert LifecycleModel.from_dict(replace(months, horizon_days=45.0).to_dict()).horizon_days == 45.0
