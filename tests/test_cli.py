"""The command line as a user meets it: exit codes, one-line errors, --force, determinism."""

import json

import pandas as pd

from conftest import TEST_DATA
from helpers import cli


def assert_user_error(done, *words):
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [l for l in done.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_missing_file(tmp_path):
    done = cli("run", tmp_path / "nope.csv", "--out", tmp_path / "out")
    assert_user_error(done, "nope.csv", "no such file")
    assert not (tmp_path / "out").exists()


def test_file_without_needed_columns(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("name,city\nann,paris\n")
    done = cli("run", path, "--out", tmp_path / "out")
    assert_user_error(done, "cols.csv", "customer_id", "found: name, city")
    assert not (tmp_path / "out" / "segments.csv").exists()


def test_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_user_error(cli("run", empty, "--out", tmp_path / "o1"), "empty.csv", "empty")
    header = tmp_path / "header.csv"
    header.write_text("customer_id,order_date,amount\n")
    assert_user_error(cli("run", header, "--out", tmp_path / "o2"), "header.csv")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_too_few_customers_and_bad_options(tmp_path):
    assert_user_error(cli("run", TEST_DATA / "generic_tiny.csv", "--k", "5", "--out", tmp_path / "o"), "--k")
    assert_user_error(cli("run", TEST_DATA / "generic_tiny.csv", "--features", "happiness", "--out",
                          tmp_path / "o"), "happiness")
    assert_user_error(cli("run", TEST_DATA / "generic_tiny.csv", "--map", "customer_id", "--out",
                          tmp_path / "o"), "--map")
    assert_user_error(cli("run", TEST_DATA / "generic_tiny.csv", "--scale", "cubic", "--out", tmp_path / "o"),
                      "cubic")


def test_debug_shows_a_traceback(tmp_path):
    done = cli("--debug", "run", tmp_path / "nope.csv", "--out", tmp_path / "out")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_existing_output_needs_force(small_shopify, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert_user_error(cli("run", small_shopify, "--out", out, "--k", "3"), "not a custseg output")
    # --force replaces only custseg's own output directory, never the user's files
    assert_user_error(cli("run", small_shopify, "--out", out, "--k", "3", "--force"), "not a custseg output")
    assert (out / "mine.txt").read_text() == "keep me"
    (out / "mine.txt").unlink()
    assert cli("run", small_shopify, "--out", out, "--k", "3", "-q").returncode == 0   # empty: written
    assert_user_error(cli("run", small_shopify, "--out", out, "--k", "3"), "--force")
    done = cli("run", small_shopify, "--out", out, "--k", "3", "--force", "-q")
    assert done.returncode == 0, done.stderr
    assert (out / "summary.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]   # no temporary leftovers


def test_run_outputs_and_stdout(small_shopify, tmp_path):
    out = tmp_path / "out"
    done = cli("run", small_shopify, "--out", out, env={"CUSTSEG_PROGRESS": "1"})
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert "customers in" in done.stdout and summary["k_method"] in ("elbow", "silhouette")
    assert "features:" in done.stderr   # progress goes to stderr
    k_sel = pd.read_csv(out / "k_selection.csv")
    assert list(k_sel.columns) == ["k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin"]
    assert k_sel.k.tolist() == list(range(1, 16)) and (k_sel.inertia.diff().dropna() <= 1e-6).all()
    quality = json.loads((out / "data_quality.json").read_text())
    assert quality["rows_read"] == 6000 and quality["customers_kept"] == summary["customers"]
    profiles = pd.read_csv(out / "profiles.csv")
    assert {"segment", "segment_name", "strategy", "customers", "customer_share", "revenue_share",
            "description"} <= set(profiles.columns)
    model = json.loads((out / "model.json").read_text())
    assert len(model["centers"]) == summary["k"]


def test_same_input_and_seed_give_identical_segments(small_shopify, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("run", small_shopify, "--out", a, "-q", "--no-report").returncode == 0
    assert cli("run", small_shopify, "--out", b, "-q", "--no-report").returncode == 0
    assert (a / "segments.csv").read_bytes() == (b / "segments.csv").read_bytes()
    assert (a / "profiles.csv").read_bytes() == (b / "profiles.csv").read_bytes()


def test_sample_command_is_deterministic(tmp_path):
    for name in ("a.csv", "b.csv"):
        assert cli("sample", tmp_path / name, "--rows", "3000", "--seed", "9").returncode == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    lines = pd.read_csv(tmp_path / "a.csv")
    assert len(lines) == 3000
    assert (lines.ordered_item_quantity == 0).any() and (lines.returned_item_quantity < 0).any()
    per_customer = lines[lines.ordered_item_quantity > 0].groupby("customer_id").product_type.nunique()
    assert (per_customer == 1).mean() > 0.5     # most customers ordered one product type


def test_demo_replaces_its_own_output(tmp_path):
    out = tmp_path / "demo"
    for _ in range(2):
        done = cli("demo", "--out", out, "--rows", "5000", "-q")
        assert done.returncode == 0, done.stderr
    assert (out / "report.html").exists() and "report" in done.stdout
