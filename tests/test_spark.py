"""The Spark engine gives the same customers, features and segments as DuckDB.

One local[2] SparkSession serves every test (small shuffle partitions, no UI). The
DuckDB engine is the reference: same customer ids in the same order, every feature
equal to 1e-9, the same data quality counts, and an adjusted Rand index >= 0.99
between the two segmentations at the same k.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

import custseg
from custseg.engines.spark import spark_session
from custseg.options import EngineOptions
from custseg.errors import CustsegError

from conftest import shared_file


def _spark_missing_reason() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed: pip install 'custseg[spark]' (part of the test extras)"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "Java (17 or 21) is not installed: Spark needs a JDK on PATH or JAVA_HOME"
    return None


@pytest.fixture(scope="session")
def spark():
    reason = _spark_missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers (mapInArrow) need custseg's packages
    session = (
        SparkSession.builder.master("local[2]").appName("custseg-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def shopify_csv(tmp_path_factory):
    from custseg.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("spark") / "shopify.csv", "shopify", 6_000, 7)


@pytest.fixture(scope="module")
def generic_csv(tmp_path_factory):
    from custseg.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("spark") / "generic.csv", "generic", 6_000, 11)


@pytest.fixture(scope="module")
def shopify_duck(shopify_csv):
    """The DuckDB reference on the shopify sample at k = 4 (computed once)."""
    return custseg.segment(str(shopify_csv), k=4)


def assert_same_features(duck, spark_result):
    """Same customers in the same order, every computed feature equal to 1e-9."""
    a, b = duck.all_features.to_pandas(), spark_result.all_features.to_pandas()
    assert list(a.columns) == list(b.columns)
    assert a.customer_id.tolist() == b.customer_id.tolist()
    for column in a.columns[1:]:
        np.testing.assert_allclose(b[column].to_numpy(float), a[column].to_numpy(float), rtol=1e-9, atol=1e-9,
                                   err_msg=column)


def assert_same_segmentation(duck, spark_result):
    assert spark_result.k == duck.k
    ari = adjusted_rand_score(duck.segments.segment, spark_result.segments.segment)
    assert ari >= 0.99, ari


def run_both(data, spark, **options):
    duck = custseg.segment(data, **options)
    on_spark = custseg.segment(data, engine="spark", spark_session=spark, **options)
    return duck, on_spark


# ---------------------------------------------------------------------------- parity


def quality_counts(quality: dict) -> dict:
    """Rows read/used and lines dropped per rule. Malformed CSV lines and the first line numbers of
    each rule are found by the DuckDB reader only (docs/scaling.md), so they are left out."""
    return {"rows_read": quality["rows_read"], "rows_used": quality["rows_used"],
            **{r["rule"]: r["rows_dropped"] for r in quality["rules"] if r["rule"] != "malformed_line"}}


@pytest.mark.spark
def test_shopify_sample_same_customers_features_and_segments(spark, shopify_csv, shopify_duck):
    duck = shopify_duck
    on_spark = custseg.segment(str(shopify_csv), k=4, engine="spark", spark_session=spark)
    assert_same_features(duck, on_spark)
    assert_same_segmentation(duck, on_spark)
    assert quality_counts(on_spark.data_quality) == quality_counts(duck.data_quality)
    assert on_spark.summary["engine"] == "spark"
    assert on_spark.summary["clustering_backend"] == "scikit-learn"  # small enough to collect
    assert on_spark.profiles.segment_name.tolist() == duck.profiles.segment_name.tolist()
    pd.testing.assert_frame_equal(on_spark.best_sellers, duck.best_sellers, check_dtype=False)
    # the lifecycle summary computed by Spark gives the same model and scores
    assert on_spark.summary["lifecycle"]["status"] == "scored"
    spark_fit, duck_fit = (r.summary["lifecycle"]["parameters"]["purchases"] for r in (on_spark, duck))
    for name in ("r", "alpha", "s", "beta"):
        assert spark_fit[name] == pytest.approx(duck_fit[name], rel=1e-6), name
    for column in ("p_alive", "expected_orders_12m", "expected_value_12m"):
        np.testing.assert_allclose(on_spark.segments[column], duck.segments[column], rtol=1e-6, err_msg=column)


@pytest.mark.spark
def test_generic_sample_rfm_same_as_duckdb(spark, generic_csv):
    duck, on_spark = run_both(str(generic_csv), spark, k=4)
    assert on_spark.features == ["recency_days", "order_count", "total_spending"]
    assert_same_features(duck, on_spark)
    assert_same_segmentation(duck, on_spark)


@pytest.mark.spark
@pytest.mark.parametrize("name, schema", [
    ("online_retail_sample_40k.xlsx", "online-retail"),
    ("online_retail_invoices.csv", "generic"),  # the invoices are auto-mapped as generic
])
def test_online_retail_real_data_same_as_duckdb(spark, name, schema):
    duck, on_spark = run_both(str(shared_file(name)), spark, k=4)
    assert on_spark.summary["schema"] == schema
    if schema == "online-retail":
        assert quality_counts(on_spark.data_quality) == quality_counts(duck.data_quality)
    assert_same_features(duck, on_spark)
    assert_same_segmentation(duck, on_spark)
    if schema == "generic":
        # total_spending is the per-customer sum of TotalPrice (an independent pandas computation)
        raw = pd.read_csv(shared_file(name), dtype={"CustomerID": str})
        raw["CustomerID"] = raw["CustomerID"].str.replace(r"\.0$", "", regex=True)
        expected = raw.groupby("CustomerID").TotalPrice.sum()
        got = on_spark.all_features.to_pandas().set_index("customer_id").total_spending
        np.testing.assert_allclose(got.to_numpy(), expected.reindex(got.index).to_numpy(), rtol=1e-9, atol=1e-6)


@pytest.mark.spark
def test_dirty_values_parse_the_same_under_ansi_mode(spark, tmp_path):
    """Words in number columns, impossible dates, Excel-style ids: counted and dropped alike."""
    path = tmp_path / "dirty.csv"
    path.write_text(
        "customer_id,order_date,amount\n"
        "104.0,2024-01-05,10\n"      # an id exported as a float: 104
        "104,2024-01-09,\"£1,000.50\"\n"  # currency sign and thousands comma
        "105,2024-02-31,5\n"          # no such date
        "105,2024-03-01,abc\n"        # not a number
        "106,2024-03-02,7\n"
        ",2024-03-03,8\n"             # no customer
        "107,25/03/2024,9\n",         # another date format (day first: unambiguous), read alike or not at all
        encoding="utf-8",
    )
    duck, on_spark = run_both(str(path), spark, k=2)
    assert quality_counts(on_spark.data_quality) == quality_counts(duck.data_quality)
    assert on_spark.all_features.column("customer_id").to_pylist() == ["104", "106", "107"]
    assert_same_features(duck, on_spark)


# ---------------------------------------------------------------------------- Spark inputs


@pytest.mark.spark
def test_spark_dataframe_input_reuses_the_session(spark, shopify_csv, shopify_duck, monkeypatch):
    from pyspark.sql import SparkSession

    frame = spark.read.csv(str(shopify_csv), header=True, inferSchema=False)

    def no_new_session(*args, **kwargs):
        raise AssertionError("a new SparkSession was built")

    monkeypatch.setattr(type(SparkSession.builder), "getOrCreate", no_new_session)
    on_spark = custseg.segment(frame, engine="spark", k=4)
    assert on_spark.summary["engine"] == "spark"
    assert_same_features(shopify_duck, on_spark)
    assert_same_segmentation(shopify_duck, on_spark)


@pytest.mark.spark
def test_file_url_and_parquet_inputs(spark, shopify_csv, shopify_duck, tmp_path):
    import pyarrow.csv as pacsv

    parquet = tmp_path / "lines.parquet"
    pq.write_table(pacsv.read_csv(shopify_csv), parquet)
    by_url = custseg.segment(f"file://{parquet}", k=4, engine="spark", spark_session=spark)
    assert by_url.summary["inputs"] == [f"file://{parquet}"]
    assert_same_features(shopify_duck, by_url)


# ---------------------------------------------------------------------------- MLlib


@pytest.fixture(scope="module")
def mllib_run(spark, shopify_csv, tmp_path_factory):
    """The shopify sample with every customer kept in Spark (spark_local_limit=0): MLlib sweep and fit."""
    result = custseg.segment(str(shopify_csv), k_max=6, engine="spark", spark_session=spark, spark_local_limit=0)
    out = result.to_dir(tmp_path_factory.mktemp("mllib") / "out", report=False)
    return result, out


@pytest.mark.spark
def test_mllib_segments_agree_with_scikit_learn(mllib_run, shopify_csv):
    result, out = mllib_run
    duck = custseg.segment(str(shopify_csv), k=result.k)
    assert result.summary["clustering_backend"] == "spark-mllib"
    assert result.summary["customers"] == duck.summary["customers"]
    segments = pd.read_parquet(out / "segments.parquet")  # a directory written by Spark
    assert len(segments) == duck.summary["customers"]
    # (no per-customer margins or RFM: the customers stay in Spark; docs/formats.md)
    lifecycle_columns = ["p_alive", "expected_orders_12m", "expected_value_12m"]
    assert list(segments.columns) == ["customer_id", *duck.features, "segment", "segment_name", *lifecycle_columns]
    both = duck.segments.merge(segments, on="customer_id", suffixes=("_duck", "_spark"))
    for name in lifecycle_columns:
        np.testing.assert_allclose(both[f"{name}_spark"], both[f"{name}_duck"], rtol=1e-6, err_msg=name)
    profiles = result.profiles.set_index("segment")
    for seg, group in segments.groupby("segment"):
        assert profiles.loc[seg, "expected_value_12m"] == pytest.approx(group["expected_value_12m"].sum(), rel=1e-9)
        assert profiles.loc[seg, "likely_lost"] == (group["p_alive"] < 0.5).sum()
    # lifecycle: fitted on a collected sample, scored in Spark (mapInArrow), written with the segments
    assert result.summary["lifecycle"]["status"] == "scored" and result.summary["lifecycle"]["scored_in"] == "spark"
    assert duck.summary["customers"] < 10_000  # the sample is everyone here: the same model as DuckDB's
    spark_fit, duck_fit = (r.summary["lifecycle"]["parameters"]["purchases"] for r in (result, duck))
    for name in ("r", "alpha", "s", "beta"):
        assert spark_fit[name] == pytest.approx(duck_fit[name], rel=1e-6), name
    merged = duck.segments.merge(segments, on="customer_id", suffixes=("_duck", "_spark"))
    assert len(merged) == len(segments)
    for name in duck.features:
        np.testing.assert_allclose(merged[f"{name}_spark"], merged[f"{name}_duck"], rtol=1e-9, atol=1e-9)
    # MLlib's k-means|| and scikit-learn's k-means++ reach (almost) the same partition here.
    assert adjusted_rand_score(merged.segment_duck, merged.segment_spark) >= 0.95
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clustering_backend"] == "spark-mllib" and "segments.parquet" in summary["outputs"]


@pytest.mark.spark
def test_mllib_profiles_are_computed_over_every_customer(mllib_run):
    """Profiles from Spark equal a pandas group-by over the segments Spark wrote."""
    result, out = mllib_run
    segments = pd.read_parquet(out / "segments.parquet")
    grouped = segments.groupby("segment")
    profiles = result.profiles.set_index("segment")
    assert profiles.customers.tolist() == grouped.size().tolist()
    for name in result.features:
        np.testing.assert_allclose(profiles[f"{name}_mean"], grouped[name].mean(), rtol=1e-9)
        np.testing.assert_allclose(profiles[f"{name}_max"], grouped[name].max(), rtol=1e-12)
    names = segments.groupby("segment").segment_name.first()
    assert names.tolist() == result.profiles.segment_name.tolist()
    top = result.best_sellers
    assert set(top.segment) == set(range(result.k)) and set(top.by) == {"customers"}


@pytest.mark.spark
def test_mllib_names_come_from_the_per_segment_table(mllib_run, shopify_csv):
    """Customers kept in Spark: the names and facts come from the engine's per-segment table and
    aggregates, checked against their rules, and the facts equal the in-memory ones of DuckDB."""
    from custseg.profiles.naming import DataFacts, check_name, words_in_name

    result, out = mllib_run
    summary = json.loads((out / "summary.json").read_text())
    duck = custseg.segment(str(shopify_csv), k=result.k)
    facts = summary["naming_facts"]
    for key, value in duck.summary["naming_facts"].items():
        assert facts[key] == pytest.approx(value, rel=1e-9), key
    profiles = pd.read_csv(out / "profiles.csv")
    for row in profiles.itertuples():
        assert row.name_words and check_name(words_in_name(row.segment_name), profiles, DataFacts(**facts),
                                             row.segment) == []
    assert "stability" in profiles and profiles.stability.between(0, 1).all()
    assert profiles.filter(like="rfm_").sum(axis=1).round(9).eq(1).all()


@pytest.mark.spark
def test_mllib_sweep_inertia_and_elbow(mllib_run):
    result, _ = mllib_run
    table = result.k_selection
    assert table.k.tolist() == [1, 2, 3, 4, 5, 6]
    # k = 1: the total sum of squares of the log1p features (the sweep sample holds everyone here)
    X = np.log1p(result.segments[result.features].to_numpy(float))
    assert table.inertia.iloc[0] == pytest.approx(((X - X.mean(axis=0)) ** 2).sum(), rel=1e-9)
    assert (np.diff(table.inertia) < 0).all()
    assert table.silhouette.iloc[1:].between(-1, 1).all()
    assert result.summary["k_method"] in ("elbow", "silhouette")
    assert result.k in table.k.tolist()


# ---------------------------------------------------------------------------- CLI and errors


@pytest.mark.spark
def test_cli_engine_spark_writes_the_same_segments(spark, shopify_csv, shopify_duck, tmp_path, monkeypatch):
    from custseg import cli

    out_spark = tmp_path / "spark"
    monkeypatch.setattr(sys, "argv", ["custseg", "run", str(shopify_csv), "--k", "4", "--no-report", "-q",
                                      "--engine", "spark", "--out", str(out_spark)])
    cli.entry()
    a, b = shopify_duck.segments, pd.read_csv(out_spark / "segments.csv", dtype={"customer_id": str})
    assert a.customer_id.tolist() == b.customer_id.tolist()
    assert adjusted_rand_score(a.segment, b.segment) >= 0.99
    assert json.loads((out_spark / "summary.json").read_text())["engine"] == "spark"


def test_missing_pyspark_names_the_extra(monkeypatch, small_shopify, tmp_path, capsys):
    """Without PySpark, --engine spark is one line naming custseg[spark], exit 2, no output."""
    from custseg import cli

    for module in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` now raises ImportError
    with pytest.raises(CustsegError, match=r"pip install 'custseg\[spark\]'"):
        spark_session(EngineOptions(engine="spark"))
    monkeypatch.setattr(sys, "argv", ["custseg", "run", str(small_shopify), "--engine", "spark",
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        cli.entry()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "custseg[spark]" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_spark_conf_is_a_user_error(small_shopify, tmp_path, monkeypatch, capsys):
    from custseg import cli

    monkeypatch.setattr(sys, "argv", ["custseg", "run", str(small_shopify), "--engine", "spark",
                                      "--spark-conf", "spark.executor.memory", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        cli.entry()
    assert exit_info.value.code == 2
    assert "key=value" in capsys.readouterr().err


@pytest.mark.spark
def test_segments_written_by_spark_are_neutralised_but_ids_kept(spark, tmp_path):
    from custseg.outputs.run import write_segments_spark

    frame = spark.createDataFrame([("=1+1", 0, "=HYPERLINK(1)"), ("b", 1, "@SUM(A1)"), ("c", 1, "Loyal")],
                                  ["customer_id", "segment", "segment_name"])
    write_segments_spark(tmp_path, frame, "csv")
    parts = sorted((tmp_path / "segments.csv").glob("part-*.csv"))
    table = pd.concat([pd.read_csv(p, dtype=str) for p in parts]).sort_values("segment_name")
    assert sorted(table.customer_id) == ["=1+1", "b", "c"]
    assert sorted(table.segment_name) == ["'=HYPERLINK(1)", "'@SUM(A1)", "Loyal"]
