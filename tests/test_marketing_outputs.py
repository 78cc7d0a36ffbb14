"""Issue 17 wired into the tool: --format xlsx, --keep, --audiences, rename, compare's alignment,
predict's drift check, the Python API's warnings and keyword names, cancellations, --help."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import custseg
from custseg.errors import CustsegError, CustsegWarning
from helpers import cli
from conftest import shared_file


@pytest.fixture(scope="module")
def shop_with_email(small_shopify, tmp_path_factory):
    """The small Shopify sample with an email column (one per customer, one written as a formula)."""
    lines = pd.read_csv(small_shopify, dtype=str, keep_default_na=False)
    lines["email"] = "c" + lines["customer_id"] + "@example.com"
    first = lines["customer_id"].iloc[0]
    lines.loc[lines["customer_id"] == first, "email"] = "=HYPERLINK(\"x\")"
    path = tmp_path_factory.mktemp("keep") / "shop_email.csv"
    lines.to_csv(path, index=False)
    return path, first


@pytest.fixture(scope="module")
def marketing_run(shop_with_email, tmp_path_factory):
    path, _ = shop_with_email
    out = tmp_path_factory.mktemp("runs") / "run"
    done = cli("run", path, "--keep", "email", "--audiences", "--format", "xlsx", "--k", "4", "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def retail_xlsx():
    return shared_file("online_retail_sample_40k.xlsx")


def _segments(out):
    return pd.read_csv(out / "segments.csv", dtype={"customer_id": str, "email": str, "segment_name": str},
                       keep_default_na=False)


# ---------------------------------------------------------------------------- --keep


def test_keep_carries_the_column_into_segments(marketing_run, shop_with_email):
    path, first = shop_with_email
    segments = _segments(marketing_run)
    assert list(segments.columns)[-1] == "email"
    expected = pd.read_csv(path, dtype=str, keep_default_na=False).groupby("customer_id")["email"].first()
    got = segments.set_index("customer_id")["email"]
    # the formula-looking address gets an apostrophe in the CSV (as in every CSV output); the rest as read
    assert got[first] == "'" + expected[first]
    others = got.index != first
    assert (got[others] == expected.loc[got.index[others]]).all()


def test_keep_refuses_an_unknown_column_by_name(shop_with_email, tmp_path):
    path, _ = shop_with_email
    done = cli("run", path, "--keep", "email,phone", "-o", tmp_path / "out", "-q")
    assert done.returncode == 2
    assert "--keep phone: no such column" in done.stderr and "email" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_keep_refuses_a_column_with_two_values_per_customer(small_shopify, tmp_path):
    done = cli("run", small_shopify, "--keep", "product_type", "-o", tmp_path / "out", "-q")
    assert done.returncode == 2
    assert "--keep product_type: customer" in done.stderr and "more than one value" in done.stderr


def test_keep_in_python_names_the_keyword(shop_with_email):
    path, _ = shop_with_email
    with pytest.raises(CustsegError, match=r"^keep phone: no such column"):
        custseg.segment(str(path), keep=["phone"], k=2)


# ---------------------------------------------------------------------------- --audiences


def test_audiences_one_file_per_segment(marketing_run):
    segments = _segments(marketing_run)
    model = json.loads((marketing_run / "model.json").read_text())
    files = sorted((marketing_run / "audiences").glob("*.csv"))
    assert len(files) == len(model["segments"]) == 4
    for segment in model["segments"]:
        matching = [f for f in files if f.name.startswith(f"{segment['id']}-")]
        assert len(matching) == 1
        audience = pd.read_csv(matching[0], dtype=str, keep_default_na=False)
        assert list(audience.columns) == ["customer_id", "email"]
        mine = segments[segments.segment == segment["id"]]
        assert audience["customer_id"].tolist() == mine["customer_id"].tolist()
        assert audience["email"].tolist() == mine["email"].tolist()
    summary = json.loads((marketing_run / "summary.json").read_text())
    assert all(f"audiences/{f.name}" in summary["outputs"] for f in files)


# ---------------------------------------------------------------------------- --format xlsx


def test_workbook_reads_back_with_fastexcel(marketing_run, shop_with_email):
    import fastexcel

    _, first = shop_with_email
    reader = fastexcel.read_excel(marketing_run / "segments.xlsx")
    assert reader.sheet_names == ["segments", "profiles", "best sellers", "k selection"]
    sheet = reader.load_sheet("segments").to_pandas()
    segments = _segments(marketing_run)
    assert len(sheet) == len(segments)
    # ids are text cells: read back as text, equal to the CSV's
    assert sheet["customer_id"].map(type).eq(str).all()
    assert sheet["customer_id"].tolist() == segments["customer_id"].tolist()
    assert sheet["segment_name"].tolist() == segments["segment_name"].tolist()
    # the formula-looking text is neutralised, not a formula
    row = sheet[sheet.customer_id == first].iloc[0]
    assert row["email"].startswith("'=HYPERLINK")
    np.testing.assert_allclose(sheet["total_spending"].astype(float), segments["total_spending"].astype(float))
    profiles = reader.load_sheet("profiles").to_pandas()
    assert profiles["segment_name"].tolist() == pd.read_csv(marketing_run / "profiles.csv")["segment_name"].tolist()
    sellers = reader.load_sheet("best sellers").to_pandas()
    assert set(sellers["by"]) == {"customers"} and {"quantity", "revenue", "customers"} <= set(sellers.columns)


def test_workbook_is_refused_early_above_a_sheet(shop_with_email, monkeypatch, tmp_path):
    from custseg import options
    from custseg.pipeline import run

    path, _ = shop_with_email
    monkeypatch.setattr(options, "EXCEL_MAX_CUSTOMERS", 100)
    stages = []
    with pytest.raises(CustsegError, match="do not fit an Excel sheet.*use --format parquet"):
        run([str(path)], options.RunOptions(k=2, workbook=True), lambda kind, msg: stages.append(msg))
    assert not any(m.startswith("clustering") for m in stages)  # refused before the clustering


def test_predict_writes_a_workbook(marketing_run, shop_with_email, tmp_path):
    import fastexcel

    path, _ = shop_with_email
    out = tmp_path / "scored.xlsx"
    done = cli("predict", marketing_run, path, "--keep", "email", "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    sheet = fastexcel.read_excel(out).load_sheet(0).to_pandas()
    segments = _segments(marketing_run)
    assert sheet["customer_id"].tolist() == segments["customer_id"].tolist()
    assert sheet["segment"].astype(int).tolist() == segments["segment"].tolist()
    assert "email" in sheet.columns and (tmp_path / "scored.xlsx.json").is_file()


# ---------------------------------------------------------------------------- rename


def test_rename_round_trip_through_predict(marketing_run, shop_with_email, tmp_path):
    import shutil

    path, _ = shop_with_email
    run = tmp_path / "run"
    shutil.copytree(marketing_run, run)
    old = json.loads((run / "model.json").read_text())["segments"][2]["name"]
    assert old in (run / "report.html").read_text()
    done = cli("rename", run, '2=Lapsed big spenders')
    assert done.returncode == 0, done.stderr
    model = json.loads((run / "model.json").read_text())
    assert model["segments"][2]["name"] == "Lapsed big spenders"
    report = (run / "report.html").read_text()
    assert "Lapsed big spenders" in report and old not in report  # rebuilt, not removed
    segments = _segments(run)
    assert set(segments.loc[segments.segment == 2, "segment_name"]) == {"Lapsed big spenders"}
    assert pd.read_csv(run / "profiles.csv")["segment_name"][2] == "Lapsed big spenders"
    assert any(f.name == "2-lapsed-big-spenders.csv" for f in (run / "audiences").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["renamed"] == [{"segment": 2, "from": old, "to": "Lapsed big spenders"}]
    assert "report.html" in summary["outputs"]
    scored = tmp_path / "scored.csv"
    done = cli("predict", run, path, "-o", scored)
    assert done.returncode == 0, done.stderr
    assert "2 Lapsed big spenders" in done.stdout
    predicted = pd.read_csv(scored, dtype={"customer_id": str})
    assert set(predicted.loc[predicted.segment == 2, "segment_name"]) == {"Lapsed big spenders"}


def test_rename_from_a_names_file_and_refusals(marketing_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(marketing_run, run)
    names = tmp_path / "names.txt"
    names.write_text("# new names\n0=Browsers\n1=Returners\n")
    done = cli("rename", run, "--names", names)
    assert done.returncode == 0, done.stderr
    assert [s["name"] for s in json.loads((run / "model.json").read_text())["segments"]][:2] == \
        ["Browsers", "Returners"]
    before = (run / "segments.csv").read_bytes()
    done = cli("rename", run, "9=Nobody")
    assert done.returncode == 2 and "segment 9 does not exist" in done.stderr
    assert (run / "segments.csv").read_bytes() == before


# ---------------------------------------------------------------------------- compare


def test_compare_aligns_two_independent_fits(marketing_run, shop_with_email, tmp_path):
    path, _ = shop_with_email
    other = tmp_path / "k3"
    assert cli("run", path, "--k", "3", "-o", other, "-q", "--no-report").returncode == 0
    done = cli("compare", marketing_run, other, "-o", tmp_path / "cmp")
    assert done.returncode == 0, done.stderr
    assert "aligned to the first run's 4 by their centres" in done.stderr
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert page.index("Segments aligned by their centres") < page.index("<table")
    # Independently: match k=3's centres to k=4's by brute force over all injections, then count stayers.
    a = custseg.load_model(marketing_run / "model.json")
    b = custseg.load_model(other / "model.json")
    from itertools import permutations

    b_in_a = a.scaling.transform(b.scaling.inverse_transform(b.centers))
    best = min(permutations(range(4), 3),
               key=lambda p: sum(np.linalg.norm(a.centers[p[j]] - b_in_a[j]) for j in range(3)))
    first, second = _segments(marketing_run), _segments(other)
    both = first.merge(second, on="customer_id", suffixes=("_a", "_b"))
    stayed = int(sum((both.segment_a == best[j]) & (both.segment_b == j) for j in range(3)).sum())
    assert f"{stayed:,} kept their segment" in done.stdout


def test_compare_with_the_same_model_says_nothing(marketing_run, shop_with_email, tmp_path):
    path, _ = shop_with_email
    again = tmp_path / "again"
    reused = cli("run", path, "--model", marketing_run, "-o", again, "-q", "--no-report")
    assert reused.returncode == 0 and "warning" not in reused.stderr  # its own training data: no drift
    done = cli("compare", marketing_run, again, "-o", tmp_path / "cmp")
    assert done.returncode == 0 and "aligned" not in done.stderr
    assert "Segments aligned" not in (tmp_path / "cmp" / "compare.html").read_text()


def test_compare_refuses_different_features(marketing_run, tmp_path):
    tiny = custseg.segment(str(shared_file("online_retail_invoices.csv")), k=3,
                           mapping={"customer_id": "CustomerID", "order_date": "InvoiceDate", "amount": "TotalPrice",
                                    "order_id": "InvoiceNo"})
    tiny.to_dir(tmp_path / "rfm", report=False)
    done = cli("compare", marketing_run, tmp_path / "rfm", "-o", tmp_path / "cmp")
    assert done.returncode == 2 and "different features" in done.stderr and "--model" in done.stderr


# ---------------------------------------------------------------------------- predict's drift check


@pytest.fixture(scope="module")
def retail_run(retail_xlsx, tmp_path_factory):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = custseg.segment(str(retail_xlsx))
    out = result.to_dir(tmp_path_factory.mktemp("retail") / "run", report=False)
    return result, out, caught


def test_predict_warns_on_another_shops_data(retail_run, small_shopify, tmp_path):
    _, out, _ = retail_run
    scored = tmp_path / "scored.parquet"
    done = cli("predict", out, small_shopify, "--schema", "generic", "--map", "customer_id=customer_id",
               "--map", "order_date=day", "--map", "amount=total_sales", "--map", "order_id=order_id",
               "-o", scored, "-q")
    assert done.returncode == 0, done.stderr
    assert "custseg: warning:" in done.stderr and "model was trained on online-retail data" in done.stderr
    meta = json.loads((tmp_path / "scored.parquet.json").read_text())
    drift = meta["drift"]
    assert drift["schema"] == {"model": "online-retail", "data": "generic", "differs": True}
    assert drift["warnings"] and all(w in done.stderr for w in drift["warnings"])
    # the shares, recomputed from the written predictions
    table = pq.read_table(scored)
    counts = np.bincount(table.column("segment").to_numpy(), minlength=len(drift["segments"]))
    assert [s["customers"] for s in drift["segments"]] == counts.tolist()
    assert json.loads(table.schema.metadata[b"custseg"]) == meta


def test_run_with_another_shops_model_warns(retail_run, small_shopify, tmp_path):
    _, out, _ = retail_run
    done = cli("run", small_shopify, "--model", out, "--schema", "generic", "--map", "customer_id=customer_id",
               "--map", "order_date=day", "--map", "amount=total_sales", "--map", "order_id=order_id",
               "-o", tmp_path / "o", "-q", "--no-report")
    assert done.returncode == 0, done.stderr
    assert "custseg: warning: the data has the generic schema but the model was trained on online-retail" \
        in done.stderr


def test_predict_on_its_own_training_data_does_not_warn(retail_run, retail_xlsx, tmp_path):
    _, out, _ = retail_run
    done = cli("predict", out, retail_xlsx, "-o", tmp_path / "p.csv", "-q")
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "p.csv.json").read_text())
    assert meta["drift"]["warnings"] == [] and "warning: segment" not in done.stderr
    assert not any(f["flagged"] for f in meta["drift"]["features"])


def test_a_version_1_model_is_read_and_not_checked(retail_run, retail_xlsx, tmp_path):
    _, out, _ = retail_run
    data = json.loads((out / "model.json").read_text())
    assert data["version"] == 2 and set(data["training_reference"]) == {
        "schema", "segment_customers", "feature_min", "feature_max"}
    del data["training_reference"]
    data.pop("lifecycle", None)  # (the other version 2 field: a version 1 file has neither)
    data["version"] = 1
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(data))
    done = cli("predict", old, retail_xlsx, "-o", tmp_path / "p.csv", "-q")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "p.csv.json").read_text())["drift"]["checked"] is False
    data["training_reference"] = {"schema": "x", "segment_customers": [], "feature_min": {}, "feature_max": {}}
    old.write_text(json.dumps(data))
    with pytest.raises(CustsegError, match="version 2 files only"):
        custseg.load_model(old)


# ---------------------------------------------------------------------------- the Python API


def test_api_warns_about_dropped_lines(retail_run):
    result, _, caught = retail_run
    dropped = [w for w in caught if issubclass(w.category, CustsegWarning)]
    assert len(dropped) == 1 and issubclass(CustsegWarning, UserWarning)
    assert "dropped 10,060 of 40,000 lines" in str(dropped[0].message)
    assert "missing_customer 10,057" in str(dropped[0].message)
    assert dropped[0].filename == __file__  # points at the caller's line
    assert "dropped 10,060 of 40,000 lines" in result._repr_html_()


def test_api_warning_with_pytest_warns():
    from conftest import TEST_DATA

    with pytest.warns(CustsegWarning, match=r"dropped \d+ of \d+ lines: missing_customer"):
        custseg.segment(str(TEST_DATA / "online_retail_tiny.csv"), k=2)


def test_api_errors_name_the_keyword(shop_with_email):
    path, _ = shop_with_email
    with pytest.raises(CustsegError) as caught:
        custseg.segment(str(path), k=0)
    assert str(caught.value).startswith("k=0: k must be at least 2") and "--k" not in str(caught.value)
    with pytest.raises(CustsegError, match=r"^sweep_sample=5: sweep_sample must be at least 100"):
        custseg.segment(str(path), sweep_sample=5)
    with pytest.raises(CustsegError, match="^k cannot be combined with model"):
        custseg.segment(str(path), k=3, model="whatever.json")


def test_cli_errors_still_name_the_flag(shop_with_email, tmp_path):
    path, _ = shop_with_email
    done = cli("run", path, "--k", "0", "-o", tmp_path / "o", "-q")
    assert done.returncode == 2 and "custseg: error: --k must be at least 2" in done.stderr


def test_segment_has_a_real_signature():
    import inspect

    from custseg import options

    params = inspect.signature(custseg.segment).parameters
    assert params["k"].default is None and params["seed"].default == options.SEED
    assert params["k_max"].default == options.K_MAX and params["keep"].default is None
    assert params["top_products"].default == options.TOP_PRODUCTS
    assert "k_max" in custseg.segment.__doc__


# ---------------------------------------------------------------------------- cancellations, --help


def test_cancellations_with_count_and_value(retail_run, retail_xlsx):
    result, out, _ = retail_run
    quality = json.loads((out / "data_quality.json").read_text())
    import fastexcel

    raw = fastexcel.read_excel(retail_xlsx).load_sheet(0).to_pandas()
    kept = raw[raw.CustomerID.notna() & (raw.UnitPrice > 0)]
    cancel = kept.InvoiceNo.astype(str).str.startswith("C") | (kept.Quantity < 0)
    value = float((kept.Quantity[cancel].abs() * kept.UnitPrice[cancel]).sum())
    purchases = float((kept.Quantity[~cancel] * kept.UnitPrice[~cancel]).sum())
    c = quality["cancellations"]
    assert c["lines"] == int(cancel.sum()) == 648
    assert c["value"] == pytest.approx(value, abs=0.01)
    assert c["share_of_purchase_value"] == pytest.approx(value / purchases, abs=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["revenue"]["net_of_returns"] is False


def test_shopify_revenue_is_net_and_has_no_cancellations(marketing_run):
    summary = json.loads((marketing_run / "summary.json").read_text())
    assert summary["revenue"]["net_of_returns"] is True
    assert "cancellations" not in json.loads((marketing_run / "data_quality.json").read_text())


@pytest.mark.parametrize("command", ["run", "predict", "compare", "rename", "sample", "demo"])
def test_help_shows_no_python_type_names(command):
    done = cli(command, "--help")
    assert done.returncode == 0
    assert "<" not in done.stdout and "list[" not in done.stdout, done.stdout


def test_api_predict_warns_on_another_shops_data(retail_run, small_shopify):
    _, out, _ = retail_run
    with pytest.warns(CustsegWarning, match="model was trained on online-retail data"):
        frame = custseg.predict(out, str(small_shopify), schema="generic",
                                mapping={"customer_id": "customer_id", "order_date": "day",
                                         "amount": "total_sales", "order_id": "order_id"})
    assert len(frame) and set(frame.columns) >= {"customer_id", "segment", "segment_name"}
