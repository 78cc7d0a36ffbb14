"""model.json: round trips, predictions against a second implementation, and tampered files refused."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import custseg
from custseg import CustomerSegmenter, CustsegError, SegmentationModel, load_model
from custseg.clustering.scaling import Scaling
from helpers import cli_in_process as run_cli


def tiny_model(method: str = "log") -> SegmentationModel:
    """Two segments over (total_spending, order_count) with centres in log1p space."""
    mean = np.array([3.0, 0.5]) if method == "log-standard" else np.zeros(2)
    scale = np.array([2.0, 0.25]) if method == "log-standard" else np.ones(2)
    return SegmentationModel(
        features=["total_spending", "order_count"], scaling=Scaling(method, mean, scale),
        centers=np.array([[math.log1p(10.0), math.log1p(1.0)], [math.log1p(1000.0), math.log1p(10.0)]]),
        segments=[{"id": 0, "name": "Small", "description": "d0", "strategy": "s0"},
                  {"id": 1, "name": "Big", "description": "d1", "strategy": "s1"}],
        schema="generic", training={"customers": 4, "k_reason": "k = 2 was given", "inertia": 1.5},
    )


@pytest.fixture(scope="module")
def small_run(small_shopify):
    return custseg.segment(str(small_shopify), k=3, n_init=3)


@pytest.fixture()
def model_file(small_run, tmp_path):
    return small_run.model.save(tmp_path / "model.json")


# ---------------------------------------------------------------------------- round trips


def test_model_json_round_trip_is_exact(small_run, tmp_path):
    model = small_run.model
    loaded = load_model(model.save(tmp_path / "model.json"))
    assert loaded.to_json() == model.to_json()
    assert np.array_equal(loaded.centers, model.centers)  # bit for bit: repr floats
    assert np.array_equal(loaded.scaling.mean, model.scaling.mean)
    assert np.array_equal(loaded.scaling.scale, model.scaling.scale)
    assert loaded.segment_names == list(small_run.profiles.segment_name)
    assert loaded.strategies == list(small_run.profiles.strategy)
    assert loaded.features == ["products_ordered", "average_return_rate", "total_spending"]


def test_model_json_is_plain_documented_json(model_file):
    data = json.loads(model_file.read_text(encoding="utf-8"))
    assert data["format"] == "custseg-model" and data["version"] == 2
    assert set(data) == {"format", "version", "custseg_version", "feature_definitions_version", "schema",
                         "features", "scaling", "centers", "segments", "training", "lifecycle",
                         "training_reference"}
    assert [f["name"] for f in data["features"]] == ["products_ordered", "average_return_rate", "total_spending"]
    assert all(f["definition"] for f in data["features"])
    assert len(data["centers"]) == len(data["segments"]) == 3
    assert [s["id"] for s in data["segments"]] == [0, 1, 2]
    assert data["scaling"]["method"] == "log"


def test_load_model_accepts_a_run_directory(small_run, tmp_path):
    out = small_run.to_dir(tmp_path / "run", report=False)
    assert load_model(out).to_json() == small_run.model.to_json()


def test_predict_matches_a_direct_nearest_centre_computation():
    model = tiny_model()
    # (100, 3): log1p distances 5.40 to Small and 6.29 to Big; (200, 4): 9.28 and 3.20
    X = np.array([[12.0, 1.0], [900.0, 9.0], [0.0, 1.0], [5000.0, 40.0], [100.0, 3.0], [200.0, 4.0]])
    # hand: nearest centre in log1p space, written out without custseg's code
    expected = []
    for row in X:
        z = np.log1p(row)
        d = [sum((z - c) ** 2) for c in model.centers]
        expected.append(int(np.argmin(d)))
    assert model.predict(X).tolist() == expected == [0, 1, 0, 1, 0, 1]
    frame = pd.DataFrame(X[:, ::-1], columns=["order_count", "total_spending"])  # other column order
    assert model.predict(frame).tolist() == expected


def test_predict_with_standardised_scaling():
    model = tiny_model("log-standard")
    X = np.array([[12.0, 1.0], [900.0, 9.0]])
    Z = (np.log1p(X) - model.scaling.mean) / model.scaling.scale
    expected = [int(np.argmin(((z - model.centers) ** 2).sum(axis=1))) for z in Z]
    assert model.predict(X).tolist() == expected


def test_predict_refuses_missing_columns_and_bad_shapes():
    model = tiny_model()
    with pytest.raises(CustsegError, match="order_count"):
        model.predict(pd.DataFrame({"total_spending": [1.0]}))
    with pytest.raises(CustsegError, match="2 feature columns"):
        model.predict(np.ones((3, 3)))
    with pytest.raises(CustsegError, match="finite"):
        model.predict(np.array([[np.nan, 1.0]]))


def test_customer_segmenter_json_round_trip():
    rng = np.random.default_rng(3)
    X = rng.lognormal(mean=2.0, sigma=1.0, size=(400, 3))
    fitted = CustomerSegmenter(n_clusters=4, n_init=3).fit(X)
    text = SegmentationModel.from_segmenter(fitted).to_json()
    again = SegmentationModel.from_json(text).to_segmenter()
    assert np.array_equal(again.predict(X), fitted.labels_)
    assert np.array_equal(again.transform(X), fitted.transform(X))
    assert SegmentationModel.from_segmenter(again).to_json() == text
    data = json.loads(text)
    assert data["schema"] == "matrix" and [f["name"] for f in data["features"]] == ["x0", "x1", "x2"]
    assert [s["name"] for s in data["segments"]] == ["Segment 0", "Segment 1", "Segment 2", "Segment 3"]
    # a matrix model scores matrices, not order lines
    with pytest.raises(CustsegError, match="feature matrix"):
        SegmentationModel.from_json(text).check_columns({"customer_id", "amount"}, "orders.csv")


def test_customer_segmenter_on_named_features_gives_a_usable_model():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.lognormal(size=(300, 3)), columns=["total_spending", "order_count", "avg_order_value"])
    fitted = CustomerSegmenter(n_clusters=3, scale="log-standard", n_init=3).fit(frame)
    model = SegmentationModel.from_json(SegmentationModel.from_segmenter(fitted, segment_names=["a", "b", "c"]).to_json())
    assert model.features == list(frame.columns) and model.schema == "generic"
    assert model.segment_names == ["a", "b", "c"]
    assert np.array_equal(model.predict(frame), fitted.labels_)


# ---------------------------------------------------------------------------- tampered files


def _set(path, value):
    def change(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _drop_first_column(d):
    d["centers"] = [row[1:] for row in d["centers"]]


TAMPERED = {
    "centres with a column too few": (_drop_first_column, "centers"),
    "one centre too many": (lambda d: d["centers"].append(d["centers"][0]), "one entry per centre"),
    "scaling mean too short": (_set(["scaling", "mean"], [0.0]), "scaling"),
    "centres are text": (lambda d: d["centers"][0].__setitem__(0, "1.5"), "numbers"),
    "centre is a boolean": (lambda d: d["centers"][0].__setitem__(0, True), "numbers"),
    "centres not a matrix": (_set(["centers"], 3), "list of lists"),
    "unknown version": (_set(["version"], 99), "version 99"),
    "version as text": (_set(["version"], "1"), "version"),
    "version as boolean": (_set(["version"], True), "version"),
    "other format": (_set(["format"], "sklearn-pickle"), "format"),
    "__reduce__ at the top": (_set(["__reduce__"], ["os.system", ["echo hi"]]), "__reduce__"),
    "py/object in a segment": (lambda d: d["segments"][0].__setitem__("py/object", "os.system"), "py/object"),
    "py/reduce in training": (_set(["training", "py/reduce"], [{"py/function": "os.system"}]), "py/"),
    "unknown top-level field": (_set(["loader"], "custom"), "unknown field"),
    "extra scaling field": (_set(["scaling", "function"], "exec"), "scaling"),
    "extra feature field": (lambda d: d["features"][0].__setitem__("code", "x"), "features[0]"),
    "unknown training field": (_set(["training", "callback"], "x"), "training"),
    "unknown feature": (lambda d: d["features"][0].__setitem__("name", "lifetime_value"), "unknown feature"),
    "feature twice": (lambda d: d["features"][1].__setitem__("name", d["features"][0]["name"]), "twice"),
    "zero scale": (_set(["scaling", "scale"], [0.0, 1.0, 1.0]), "positive"),
    "unknown scaling method": (_set(["scaling", "method"], "quantile"), "scaling.method"),
    "segment ids out of order": (lambda d: d["segments"][0].__setitem__("id", 5), "segments[0]"),
    "segment id boolean": (lambda d: d["segments"][1].__setitem__("id", True), "segments[1]"),
    "segment without name": (lambda d: d["segments"][0].__setitem__("name", ""), "name"),
    "segment name with newline": (lambda d: d["segments"][0].__setitem__("name", "a\nb"), "name"),
    "duplicate segment names": (lambda d: d["segments"][1].__setitem__("name", d["segments"][0]["name"]),
                                "distinct"),
    "missing centres": (lambda d: d.pop("centers"), "missing field"),
    "feature definitions of another version": (_set(["feature_definitions_version"], 2), "definitions"),
    "a list instead of an object": (lambda d: d.clear(), "format"),
}


@pytest.mark.parametrize("name", list(TAMPERED))
def test_tampered_model_is_refused(model_file, name):
    change, message = TAMPERED[name]
    data = json.loads(model_file.read_text(encoding="utf-8"))
    change(data)
    model_file.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CustsegError, match="not a usable custseg model") as info:
        load_model(model_file)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("literal,message", [
    ("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "Infinity"), ("1e400", "finite"),
])
def test_non_finite_numbers_are_refused(model_file, literal, message):
    text = model_file.read_text(encoding="utf-8")
    start = text.index('"centers"')
    # the first number of the centres becomes NaN / Infinity / a literal that overflows to infinity
    tampered = text[:start] + re.sub(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", literal, text[start:], count=1)
    model_file.write_text(tampered, encoding="utf-8")
    with pytest.raises(CustsegError) as info:
        load_model(model_file)
    assert message in str(info.value)


@pytest.mark.parametrize("text,message", [
    ("not json at all", "invalid JSON"),
    ('{"format": "custseg-model", "format": "custseg-model"}', "appears twice"),
    ("[" * 100_000 + "]" * 100_000, "not a custseg model"),
    ("", "invalid JSON"),
])
def test_unparseable_files_are_refused(tmp_path, text, message):
    path = tmp_path / "model.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CustsegError, match=message):
        load_model(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(CustsegError, match="no such model file"):
        load_model(tmp_path / "nope.json")


@pytest.mark.parametrize("name", ["__reduce__ at the top", "unknown version", "centres with a column too few",
                                  "py/object in a segment"])
def test_cli_refuses_tampered_model_with_exit_2(model_file, small_shopify, tmp_path, capsys, name):
    change, message = TAMPERED[name]
    data = json.loads(model_file.read_text(encoding="utf-8"))
    change(data)
    model_file.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "scored.csv"
    code, _, stderr = run_cli(capsys, "predict", str(model_file), str(small_shopify), "--out", str(out))
    assert code == 2, stderr
    line = " ".join(stderr.split())  # one message (Rich may wrap it)
    assert line.startswith("custseg: error:") and message in line and stderr.count("custseg:") == 1, stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    code, _, stderr = run_cli(capsys, "run", str(small_shopify), "--model", str(model_file), "--out",
                              str(tmp_path / "run"), "--quiet")
    assert code == 2 and message in " ".join(stderr.split())
    assert not (tmp_path / "run").exists()
