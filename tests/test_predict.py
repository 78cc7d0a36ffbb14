"""Scoring with a saved model: the training data gets the run's segments back, customer by customer;
a new period is segmented with the model's segments only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

import custseg
from custseg import CustsegError, load_model
from helpers import cli_in_process as run_cli
from helpers import split_by_date


def read_segments(path) -> pd.DataFrame:
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"customer_id": str, "segment_name": str}, keep_default_na=False)


def assert_same_assignment(run_segments: pd.DataFrame, scored: pd.DataFrame) -> None:
    """Every customer of the run is scored, into the same segment, and nobody else is."""
    assert scored["customer_id"].is_unique and run_segments["customer_id"].is_unique
    both = run_segments.merge(scored, on="customer_id", how="outer", suffixes=("_run", "_scored"),
                              indicator=True)
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"].head()
    different = both[both["segment_run"] != both["segment_scored"]]
    assert different.empty, f"{len(different)} customers differ, e.g.\n{different.head()}"
    assert (both["segment_name_run"] == both["segment_name_scored"]).all()


@pytest.fixture(scope="module")
def sample_run(shopify_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "sample_run"
    custseg.segment(str(shopify_sample), k=4, n_init=3).to_dir(out, report=False)
    return out


@pytest.fixture(scope="module")
def retail_run(tmp_path_factory):
    xlsx = shared_file("online_retail_sample_40k.xlsx")
    out = tmp_path_factory.mktemp("predict") / "retail_run"
    custseg.segment(str(xlsx), k_max=8).to_dir(out, report=False)  # k chosen by the elbow, as a user would
    return xlsx, out


# ---------------------------------------------------------------------------- exactness


def test_predict_reproduces_the_run_on_the_builtin_sample(sample_run, shopify_sample, tmp_path, capsys):
    out = tmp_path / "scored.csv"
    code, stdout, stderr = run_cli(capsys, "predict", str(sample_run / "model.json"), str(shopify_sample),
                                   "--out", str(out), "--quiet")
    assert code == 0, stderr
    scored = read_segments(out)
    assert list(scored.columns) == ["customer_id", "products_ordered", "average_return_rate", "total_spending",
                                    "segment", "segment_name", "r_score", "f_score", "m_score", "rfm_segment", "distance", "runner_up",
                                    "runner_up_distance", "borderline", "p_alive", "expected_orders_12m", "expected_value_12m"]
    assert_same_assignment(read_segments(sample_run / "segments.csv"), scored)
    assert out.read_bytes() == (sample_run / "segments.csv").read_bytes()  # same features, same bytes
    assert f"{len(scored):,} customers scored" in stdout


def test_assignment_equals_an_independent_nearest_centre(sample_run):
    """The run's segments are the nearest model centre in log1p space, computed here from the files alone."""
    model = json.loads((sample_run / "model.json").read_text(encoding="utf-8"))
    assert model["scaling"]["method"] == "log"
    segments = read_segments(sample_run / "segments.csv")
    names = [f["name"] for f in model["features"]]
    X = segments[names].to_numpy(dtype=float)
    Z = np.sign(X) * np.log1p(np.abs(X))  # "log": log1p, mirrored for refunds (docs/formats.md)
    centres = np.array(model["centers"])
    distances = ((Z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    nearest = distances.argmin(axis=1)
    # ties would make the comparison ambiguous; there are none in practice
    top2 = np.sort(distances, axis=1)[:, :2]
    clear = top2[:, 1] - top2[:, 0] > 1e-9
    assert clear.mean() > 0.999
    assert (nearest[clear] == segments["segment"].to_numpy()[clear]).all()


def test_predict_reproduces_the_run_on_real_online_retail(retail_run, tmp_path, capsys):
    xlsx, run_dir = retail_run
    expected = read_segments(run_dir / "segments.csv")
    # API with the run directory as model
    scored = custseg.predict(run_dir, str(xlsx))
    scored["customer_id"] = scored["customer_id"].astype(str)
    assert_same_assignment(expected, scored[["customer_id", "segment", "segment_name"]])
    assert len(scored) == json.loads((run_dir / "summary.json").read_text())["customers"]
    # CLI, Parquet output
    out = tmp_path / "scored.parquet"
    code, _, stderr = run_cli(capsys, "predict", str(run_dir / "model.json"), str(xlsx), "--out", str(out), "-q")
    assert code == 0, stderr
    assert_same_assignment(expected, read_segments(out)[["customer_id", "segment", "segment_name"]])


def test_predict_reproduces_a_run_on_customer_date_amount_data(tmp_path):
    invoices = shared_file("online_retail_invoices.csv")
    result = custseg.segment(str(invoices), k=4, n_init=3)
    scored = custseg.predict(result.model, str(invoices))
    assert list(scored.columns) == ["customer_id", "recency_days", "order_count", "total_spending", "segment",
                                    "segment_name", "r_score", "f_score", "m_score", "rfm_segment", "distance", "runner_up",
                                    "runner_up_distance", "borderline", "p_alive", "expected_orders_12m", "expected_value_12m"]
    assert_same_assignment(result.segments[["customer_id", "segment", "segment_name"]],
                           scored[["customer_id", "segment", "segment_name"]])
    run = result.segments.set_index("customer_id")  # the same customers, the same lifecycle scores
    assert (scored.set_index("customer_id").loc[run.index, "p_alive"].to_numpy() == run["p_alive"].to_numpy()).all()


def test_predict_accepts_a_dataframe_of_order_lines(small_shopify):
    result = custseg.segment(str(small_shopify), k=3, n_init=3)
    lines = pd.read_csv(small_shopify, dtype={"customer_id": str})
    scored = custseg.predict(result.model, lines)
    assert_same_assignment(result.segments[["customer_id", "segment", "segment_name"]],
                           scored[["customer_id", "segment", "segment_name"]])


# ---------------------------------------------------------------------------- a new period


def test_run_with_a_model_segments_a_new_period_with_its_segments(small_shopify, tmp_path, capsys):
    first, second = split_by_date(small_shopify, tmp_path)
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    custseg.segment(str(first), k=4, n_init=3).to_dir(run1, report=False)
    model = load_model(run1 / "model.json")
    code, stdout, stderr = run_cli(capsys, "run", str(second), "--model", str(run1 / "model.json"),
                                   "--out", str(run2), "--quiet")
    assert code == 0, stderr
    summary = json.loads((run2 / "summary.json").read_text())
    assert summary["k"] == model.k and summary["k_method"] == "model"
    assert "reused" in summary["k_reason"] and str(run1 / "model.json") in summary["k_reason"]
    segments = read_segments(run2 / "segments.csv")
    assert set(segments["segment_name"]) <= set(model.segment_names)
    profiles = pd.read_csv(run2 / "profiles.csv", keep_default_na=False)
    assert list(profiles["segment_name"]) == model.segment_names
    assert list(profiles["strategy"]) == model.strategies
    assert profiles["customers"].sum() == len(segments)
    # sizes are recomputed on the new data
    assert profiles["customers"].tolist() == [int((segments["segment"] == i).sum()) for i in range(model.k)]
    assert (run2 / "model.json").read_bytes() == (run1 / "model.json").read_bytes()
    k_selection = pd.read_csv(run2 / "k_selection.csv")
    assert k_selection.empty
    assert "reused" in (run2 / "report.html").read_text(encoding="utf-8")
    # the same segments as scoring the new period with the model
    scored = custseg.predict(run1, str(second))
    assert_same_assignment(segments[["customer_id", "segment", "segment_name"]],
                           scored[["customer_id", "segment", "segment_name"]])


# ---------------------------------------------------------------------------- mistakes


def test_data_without_a_column_the_model_needs_is_refused(sample_run, tmp_path, capsys):
    invoices = shared_file("online_retail_invoices.csv")
    out = tmp_path / "scored.csv"
    code, _, stderr = run_cli(capsys, "predict", str(sample_run / "model.json"), str(invoices), "--out", str(out))
    assert code == 2
    message = " ".join(stderr.split())
    assert "products_ordered" in message and "product" in message and str(invoices) in message
    assert str(sample_run / "model.json") in message
    assert not out.exists()
    code, _, stderr = run_cli(capsys, "run", str(invoices), "--model", str(sample_run), "--out",
                              str(tmp_path / "run"), "-q")
    assert code == 2 and "products_ordered" in stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra,message", [
    (["--k", "3"], "--k cannot be combined with --model"),
    (["--features", "total_spending"], "--features cannot be combined with --model"),
    (["--scale", "standard"], "--scale cannot be combined with --model"),
])
def test_run_refuses_options_the_model_fixes(sample_run, small_shopify, tmp_path, capsys, extra, message):
    code, _, stderr = run_cli(capsys, "run", str(small_shopify), "--model", str(sample_run), "--out",
                              str(tmp_path / "run"), "-q", *extra)
    assert code == 2 and message in stderr


def test_predict_output_rules(sample_run, small_shopify, tmp_path, capsys):
    existing = tmp_path / "scored.csv"
    existing.write_text("keep me")
    code, _, stderr = run_cli(capsys, "predict", str(sample_run), str(small_shopify), "--out", str(existing))
    assert code == 2 and "--force" in stderr and existing.read_text() == "keep me"
    code, _, stderr = run_cli(capsys, "predict", str(sample_run), str(small_shopify), "--out",
                              str(tmp_path / "scored.txt"))
    assert code == 2 and ".csv, .parquet or .xlsx" in stderr
    code, _, stderr = run_cli(capsys, "predict", str(sample_run), str(small_shopify), "--out", str(existing),
                              "--force", "-q")
    assert code == 0, stderr
    assert read_segments(existing)["segment"].between(0, 3).all()
    # no temporary file left behind; the drift check's metadata beside the predictions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv", "scored.csv.json"]
    code, _, stderr = run_cli(capsys, "predict", str(tmp_path / "missing.json"), str(small_shopify), "--out",
                              str(tmp_path / "x.csv"))
    assert code == 2 and "no such model file" in stderr


def test_predict_with_a_missing_input(sample_run, tmp_path):
    with pytest.raises(CustsegError, match="no such file"):
        custseg.predict(sample_run, str(tmp_path / "nope.csv"))


def test_names_from_a_model_are_printed_as_text_not_markup(sample_run, small_shopify, tmp_path, capsys):
    model = json.loads((sample_run / "model.json").read_text(encoding="utf-8"))
    model["segments"][0]["name"] = "Best [red]buyers[/red]"
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    code, stdout, stderr = run_cli(capsys, "run", str(small_shopify), "--model", str(path), "--out",
                                   str(tmp_path / "run"), "-q", "--no-report")
    assert code == 0, stderr
    assert "0 Best [red]buyers[/red]:" in stdout
