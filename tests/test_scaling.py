"""The speed-ups keep results: fast parse paths, the line cache, integer ids, block-wise
clustering, sampled K-means starts, the segments format and the progress display."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from sklearn.cluster import KMeans

import custseg
import custseg.clustering.kmeans as clustering
import custseg.clustering.scaling as scaling_module
from custseg.clustering.estimator import CustomerSegmenter
import custseg.outputs.run as outputs
from custseg.sources.values import as_date, as_key, as_number, as_text


def _evaluate(expression_of, values: list, dtype: str = "string") -> list:
    """Apply an Ibis expression builder to a column of values, run by DuckDB."""
    table = ibis.memtable(pa.table({"v": pa.array(values, type=pa.from_numpy_dtype(np.int64) if dtype == "int64"
                                                  else pa.string())}))
    backend = ibis.duckdb.connect()
    return backend.to_pyarrow(table.select(out=expression_of(table.v))).column("out").to_pylist()


# ---------------------------------------------------------------------------- parsing: a second, plain implementation


def _reference_date(text: str | None, fmt: str) -> dt.date | None:
    """The documented rule: day/month/year (or year-month-day) with / - or . , time ignored; an
    ISO date in a day/month column is read as ISO (issue 18: two formats in one column)."""
    if text is None:
        return None
    if fmt != "iso":
        return _slashed_reference(text, fmt) or _slashed_reference(text, "iso")
    return _slashed_reference(text, fmt)


def _slashed_reference(text: str, fmt: str) -> dt.date | None:
    if fmt == "iso":
        m = re.match(r"^\s*(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})", text)
        if not m:
            return None
        y, mo, d = m.group(1), m.group(2), m.group(3)
    else:
        m = re.match(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})", text)
        if not m:
            return None
        a, b, y = m.groups()
        d, mo = (a, b) if fmt == "dmy" else (b, a)
        y = "20" + y if len(y) == 2 else y
        if len(y) != 4:
            return None
    try:
        return dt.date(int(y), int(mo), int(d))
    except ValueError:
        return None


TRICKY_DATES = [
    "04/02/2019", "4/2/2019", " 04/02/2019", "04/02/19", "04-02-2019", "04.02.2019", "04/02/2019 10:31",
    "31/02/2019", "31/12/2019", "12/31/2019", "1 /02/2019", "04/02/ 201", "04/02/20190", "0a/02/2019",
    "+1/02/2019", "2019-02-04", "2019-2-4", "2019-02-04T10:00:00Z", "2019/02/30", "", "  ", "nonsense", None,
    "12/1/2010 8:26", "4/2/2019 17:29", "4/12/2019 0:00", "4/2/20195 1:00", "4/2/201 1:00", "4/ 2/2019 1:00",
    "4/2/2019\t1:00", "4/2/19 10:00", "2019-02-04 17:55:29", "2019-02-04T17:55:29+01:00", "2019-02-4 1:00",
]


@pytest.mark.parametrize("fmt", ["dmy", "mdy", "iso"])
def test_dates_fast_path_gives_the_documented_dates(fmt):
    got = _evaluate(lambda v: as_date(v, fmt), TRICKY_DATES)
    assert got == [_reference_date(t, fmt) for t in TRICKY_DATES]


def _fixed_width_texts(order: str, count: int, seed: int) -> list[str]:
    """Texts shaped like a fixed-width date ('ab/cd/efgh', or 'efgh-ab-cd' for iso), each character
    a digit, a space, a sign or a letter, drawn at random; and real dates at the edges."""
    rng = np.random.default_rng(seed)
    # day 0-39, month 0-19, year 0900-2199 as digits, then a fifth of the characters replaced
    days, months, years = rng.integers(0, 40, count), rng.integers(0, 20, count), rng.integers(900, 2200, count)
    digits = np.array([list(f"{y:04d}{m:02d}{d:02d}") for y, m, d in zip(years, months, days)])
    noise = rng.choice(list("0123456789 +-a"), size=(count, 8))
    parts = np.where(rng.random((count, 8)) < 0.8, digits, noise)
    first, second = ((6, 8), (4, 6)) if order == "dmy" else ((4, 6), (6, 8))  # the day's and month's places
    texts = ["".join(p[:4]) + "-" + "".join(p[4:6]) + "-" + "".join(p[6:]) if order == "iso"
             else "".join(p[slice(*first)]) + "/" + "".join(p[slice(*second)]) + "/" + "".join(p[:4]) for p in parts]
    edges = ["29/02/2000", "29/02/1900", "31/04/2019", "00/01/2019", "01/00/2019", "01/01/0999", "01/01/1000",
             "31/12/9999", "1/01/20190", "01/02/20190", "01/02/2019  ", "01/02/201 ", " 1/02/2019", "01/02/2019 ", "01-02-2019"]
    if order == "iso":
        edges = [e[6:] + "-" + e[3:5] + "-" + e[:2] if len(e) == 10 else e for e in edges] + ["2019-02-04 "]
    return texts + edges


def _date_time_texts(order: str, count: int, seed: int) -> list[str]:
    """Texts shaped like a date with one- or two-digit day and month (the year mostly four digits),
    often followed by a time, some characters replaced by a digit, a space, a sign, a tab or a letter."""
    rng = np.random.default_rng(seed)
    times = ["", "", " 17:29", " 8:26", " 10:00:00", "T10:00:00+01:00", " ", "x", "\t9:00", "5", "  1:00"]
    texts = []
    for _ in range(count):
        day, month = (f"{v:02d}" if rng.random() < 0.4 else str(v) for v in (rng.integers(0, 40), rng.integers(0, 20)))
        year = str(rng.integers(900, 2200)).zfill(4)
        year = year if rng.random() < 0.9 else rng.choice([year[2:], year[1:], year + "5"])
        separator = "-" if order == "iso" else "/"
        text = separator.join([year, month, day] if order == "iso" else
                              [day, month, year] if order == "dmy" else [month, day, year])
        chars = [c if rng.random() < 0.93 else rng.choice(list("0123456789 +-a\t")) for c in text]
        texts.append(str(rng.choice(["", "", "", "", " ", "\t", "\v"])) + "".join(chars) + str(rng.choice(times)))
    # the year 0 is a date to DuckDB, not to Python's datetime (the reference): left out
    return [t for t in texts if not re.match(r"^\s*0000[/.\-]|^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]0000", t)]


@pytest.mark.parametrize("order", ["dmy", "mdy", "iso"])
def test_dates_read_by_the_engines_own_parser_are_the_documented_dates(order):
    """DuckDB reads 'dd/mm/yyyy' (and the other orders) with its strptime (engines/duckdb.py
    fixed_date); whatever it takes must be the date the general reading gives."""
    from custseg.engines import connect
    from custseg.options import EngineOptions
    from custseg.sources.casts import casts_of

    seed = ["dmy", "mdy", "iso"].index(order)
    texts = TRICKY_DATES + _fixed_width_texts(order, 20_000, seed) + _date_time_texts(order, 20_000, seed)
    with contextlib.closing(connect(EngineOptions())) as engine:
        table = ibis.memtable(pa.table({"i": pa.array(range(len(texts)), pa.int64()), "v": pa.array(texts, pa.string())}))
        with casts_of(engine):
            expr = table.select("i", out=as_date(table.v, order), quick=engine.fixed_date(table.v, order)).order_by("i")
        assert "TRY_STRPTIME" in engine.ibis.compile(expr)  # the quick reading is the one tested
        got = engine.ibis.to_pyarrow(expr)
    expected = [_reference_date(t, order) for t in texts]
    wrong = [(t, g, e) for t, g, e in zip(texts, got.column("out").to_pylist(), expected) if g != e]
    assert not wrong, wrong[:10]
    assert sum(e is not None for e in expected) > 6_000  # many texts are dates
    quick = got.column("quick").to_pylist()
    # ... and the quick reading takes the plain ones of both kinds (fixed width, and with a time)
    assert sum(q is not None for q in quick[len(TRICKY_DATES):][:20_000]) > 2_000
    assert sum(q is not None for q in quick[len(TRICKY_DATES) + 20_000:]) > 1_000  # (~440 without the times)
    plain = {"dmy": "4/2/2019 17:29", "mdy": "12/1/2010 8:26", "iso": "2019-02-04T17:55:29+01:00"}[order]
    assert quick[texts.index(plain)] is not None


def test_numbers_text_and_keys_parse_as_documented():
    numbers = [" 12.5 ", "\t7\n", "£1,234.50", "$ 3", "€2", "-4", "1e3", "abc", "", None, "1.5.5"]
    got = _evaluate(as_number, numbers)
    expected = [12.5, 7.0, 1234.5, 3.0, 2.0, -4.0, 1000.0, None, None, None, None]
    assert got == expected

    texts = [" 17850.0 ", "\t A \n", "", "   ", "x.0", "-3.00", "1.50", "007", "12", None]
    assert _evaluate(as_text, texts) == ["17850", "A", None, None, "x.0", "-3", "1.50", "007", "12", None]

    assert _evaluate(as_key, [17850, -3, None], dtype="int64")[:2] == [17850, -3]  # integers stay integers
    assert _evaluate(as_key, [" 17850.0 "]) == ["17850"]


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_text_is_stripped_as_python_strips_it(backend):
    """as_text against a plain implementation, on texts with whitespace, other control characters,
    non-ASCII letters and dots at either end (its strip is guarded by the ends' character codes)."""
    rng = np.random.default_rng(7)
    ends = [" ", "\t", "\n", "\r", "\v", "\f", "\x01", "\x1c", "\x1f", "!", "é", "中", ".", "0", ""]
    middles = ["", "A", "a b", "17850.0", "-3.00", "x.0", "1.50", "é", "\t", " "]
    texts = ["", " ", "\v", "\x01", None] + [
        "".join(rng.choice(ends, 2)) + str(rng.choice(middles)) + "".join(rng.choice(ends, 2)) for _ in range(3000)]

    def reference(text):
        if text is None:
            return None
        text = text.strip(" \t\n\r\v\f")  # the six characters strip() removes in every engine
        whole = re.fullmatch(r"(-?\d+)\.0+", text, flags=re.ASCII)
        text = whole.group(1) if whole else text
        return text or None

    if backend == "duckdb":
        con = ibis.duckdb.connect()
    else:  # custseg's SQLite connection (engines/sql.py)
        from custseg.engines.sql import sqlite_compiler

        con = ibis.sqlite.connect()
        con.compiler = sqlite_compiler()
    table = ibis.memtable(pa.table({"i": pa.array(range(len(texts)), pa.int64()), "v": pa.array(texts, pa.string())}))
    got = con.to_pyarrow(table.select("i", out=as_text(table.v)).order_by("i")).column("out").to_pylist()
    wrong = [(t, g, reference(t)) for t, g in zip(texts, got) if g != reference(t)]
    assert not wrong, wrong[:10]
    assert sum(t is not None and t != t.strip(" \t\n\r\v\f") for t in texts) > 1000  # many were stripped


# ---------------------------------------------------------------------------- the line cache and integer ids


def _counts(quality: dict) -> dict:
    """Lines read, used and dropped per rule. Where the first dropped lines are differs by file type
    (CSV lines, Parquet rows), and only CSV has a malformed_line rule."""
    return {"rows_read": quality["rows_read"], "rows_used": quality["rows_used"],
            **{r["rule"]: r["rows_dropped"] for r in quality["rules"] if r["rule"] != "malformed_line"}}


@pytest.mark.parametrize("schema", ["shopify", "online-retail", "generic"])
def test_csv_and_parquet_inputs_give_identical_outputs_with_and_without_the_caches(schema, tmp_path, monkeypatch):
    import custseg.pipeline as pipeline
    from custseg.sample import write_sample

    csv = write_sample(tmp_path / "orders.csv", schema, 8_000, 5)
    parquet = tmp_path / "orders.parquet"
    pq.write_table(pacsv.read_csv(csv), parquet)  # integer ids, numbers typed
    cached = custseg.segment(str(csv), k=3)
    from_parquet = custseg.segment(str(parquet), k=3)
    monkeypatch.setattr(pipeline, "worth_caching", lambda backend, source: False)
    monkeypatch.setattr(pipeline, "keep_customer_products", lambda backend, lines, provided: None)
    uncached = custseg.segment(str(csv), k=3)
    assert cached.segments_table.num_rows > 100
    for other in (from_parquet, uncached):
        assert other.segments_table.equals(cached.segments_table)
        assert _counts(other.data_quality) == _counts(cached.data_quality)
        assert other.best_sellers.equals(cached.best_sellers)
        assert other.profiles.equals(cached.profiles)
    assert from_parquet.segments_table.schema.field("customer_id").type == pa.string()


# ---------------------------------------------------------------------------- clustering


def _synthetic_customers(n: int, seed: int = 0) -> np.ndarray:
    """Log-scale features of n customers in four overlapping groups (like the seed's)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(4, size=n, p=[0.45, 0.3, 0.2, 0.05])
    centres = np.array([[0.7, 0.0, 3.2], [0.9, 0.05, 4.4], [1.2, 0.02, 5.5], [0.8, 0.6, 3.0]])
    spread = np.array([[0.1, 0.02, 0.5], [0.15, 0.05, 0.4], [0.3, 0.03, 0.6], [0.1, 0.1, 0.8]])
    return centres[group] + rng.normal(size=(n, 3)) * spread[group]


def test_sampled_starts_reach_the_inertia_of_a_full_data_fit():
    Z = _synthetic_customers(300_000)
    ours = clustering.fit_kmeans(Z, 4, seed=42, n_init=10, init_sample=100_000)
    _, ours_inertia = scaling_module.assign(Z, ours.cluster_centers_, with_inertia=True)
    full = KMeans(n_clusters=4, n_init=10, random_state=42).fit(Z)
    assert ours_inertia <= full.inertia_ * 1.005


def test_blockwise_lloyd_matches_scikit_learn_from_the_same_centres(monkeypatch):
    Z = _synthetic_customers(60_000, seed=1)
    start = KMeans(n_clusters=5, n_init=1, random_state=0, max_iter=2).fit(Z[:5000]).cluster_centers_
    reference = KMeans(n_clusters=5, init=start, n_init=1, max_iter=500).fit(Z)
    centres, n_iter = clustering.lloyd(Z, start, max_iter=500, chunk=7_000)
    np.testing.assert_allclose(centres, reference.cluster_centers_, rtol=1e-9, atol=1e-12)
    assert n_iter >= 1
    # and fit_kmeans uses it from LARGE rows on
    monkeypatch.setattr(clustering, "LARGE", 50_000)
    fitted = clustering.fit_kmeans(Z, 5, seed=3, n_init=2, init_sample=10_000)
    assert isinstance(fitted, clustering.FittedCentres)
    # the centres are the means of the labels' rows (what CustomerSegmenter recomputes from them)
    np.testing.assert_allclose(clustering.cluster_means(Z, fitted.labels_, fitted.cluster_centers_),
                               fitted.cluster_centers_, rtol=1e-9)


def test_the_estimator_takes_the_blockwise_path_for_many_customers(monkeypatch):
    """From LARGE customers on the final pass is clustering.lloyd; the estimator must work on its
    result as on scikit-learn's (a 37M-customer run once failed here)."""
    Z = _synthetic_customers(60_000, seed=4)
    small = CustomerSegmenter(n_clusters=4, sweep_sample=10_000, n_init=2).fit(Z)
    monkeypatch.setattr(clustering, "LARGE", 50_000)
    large = CustomerSegmenter(n_clusters=4, sweep_sample=10_000, n_init=2).fit(Z)
    # both stop at the same tolerance, not at the same bits: the same segments, nearly the same fit
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(small.labels_, large.labels_) > 0.99
    assert abs(large.inertia_ - small.inertia_) <= 1e-3 * small.inertia_
    np.testing.assert_allclose(large.cluster_centers_, small.cluster_centers_, rtol=1e-2)


def test_scaling_in_place_and_in_blocks_gives_the_same_numbers():
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.lognormal(3, 2, (5000, 3)), -rng.lognormal(1, 1, (50, 3)), np.zeros((3, 3))])
    for method in scaling_module.SCALES:
        scaling = scaling_module.Scaling.fit(X, method)
        expected = scaling_module.signed_log1p(X) if method.startswith("log") else X.copy()
        if method in ("log-standard", "standard"):
            expected = (expected - scaling.mean) / scaling.scale
        copied = scaling.transform(X, chunk=777)
        in_place = X.copy()
        returned = scaling.transform(in_place, copy=False, chunk=1000)
        assert returned is in_place
        np.testing.assert_array_equal(copied, expected)
        np.testing.assert_array_equal(in_place, expected)


def test_estimator_copy_x_false_overwrites_only_when_asked():
    X = np.abs(_synthetic_customers(2000, seed=4))
    kept = X.copy()
    custseg.CustomerSegmenter(n_clusters=3, sweep_sample=None).fit(X)
    np.testing.assert_array_equal(X, kept)
    a = custseg.CustomerSegmenter(n_clusters=3, sweep_sample=None).fit(kept.copy())
    b = custseg.CustomerSegmenter(n_clusters=3, sweep_sample=None, copy_x=False).fit(kept.copy())
    np.testing.assert_array_equal(a.labels_, b.labels_)


# ---------------------------------------------------------------------------- outputs and progress


def test_segments_are_parquet_above_the_threshold_and_the_summary_says_why(small_shopify, tmp_path, monkeypatch):
    result = custseg.segment(str(small_shopify), k=3)
    out = result.to_dir(tmp_path / "small", report=False)
    assert (out / "segments.csv").exists()
    monkeypatch.setattr(outputs, "PARQUET_FROM", 10)
    out = result.to_dir(tmp_path / "large", report=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["segments_format"]["file"] == "segments.parquet" and "Parquet" in summary["segments_format"]["reason"]
    assert pq.read_table(out / "segments.parquet").equals(result.segments_table)
    with pytest.raises(custseg.CustsegError if hasattr(custseg, "CustsegError") else Exception):
        result.to_dir(tmp_path / "bad", segments_format="ods")  # (xlsx is a format since issue 17)


def test_progress_lines_without_a_terminal_and_silence_when_quiet():
    from custseg.runtime.progress import StageDisplay

    buffer = io.StringIO()
    display = StageDisplay(Console(file=buffer, force_terminal=False, width=200))
    display.watch_engine(duckdb.connect().query_progress)
    display("start", "features: computing things")
    display("note", "1,234 customers")
    display("end", "features: done in 1.0 s")
    assert buffer.getvalue().splitlines() == ["… features: computing things", "  1,234 customers",
                                              "✓ features: done in 1.0 s"]
    quiet = io.StringIO()
    silent = StageDisplay(Console(file=quiet, force_terminal=False), quiet=True)
    silent("start", "x")
    silent("end", "x")
    assert quiet.getvalue() == ""


def test_sample_text_columns_follow_their_rules():
    from custseg.sample import PRODUCT_TYPES, generate

    table = next(generate("shopify", 5000, seed=9))
    rows = table.to_pylist()
    for row in rows[:2000]:
        assert row["product_title"].startswith(row["product_type"] + " Model ")
        assert row["product_type"] in PRODUCT_TYPES
        assert row["variant_sku"] == f"SKU-{row['variant_id'] % 10_000_000}"
        day = dt.datetime.strptime(row["day"], "%d/%m/%Y").date()
        assert dt.date(2018, 11, 1) <= day <= dt.date(2019, 4, 30)
        colour, size = row["variant_title"].split(" / ")
        assert size in ("XS", "S", "M", "L", "XL") and colour


def test_customers_come_in_natural_order_and_their_engine_table_is_dropped(small_shopify):
    from custseg.engines import connect
    from custseg.options import EngineOptions, RunOptions
    from custseg.pipeline import compute_features
    from custseg.runtime.stages import Stages

    backend = connect(EngineOptions())
    feats = compute_features(backend, [str(small_shopify)], RunOptions(), Stages())
    assert feats.source.lines.customer_id.type().is_integer()  # the typed reading: ordered as integers
    ids = feats.table.column("customer_id").to_pylist()
    assert ids == sorted(ids, key=lambda text: (len(text), text)) and len(set(ids)) == len(ids)
    assert all(feats.table.column(c).num_chunks == 1 for c in feats.table.column_names)
    left = backend.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'custseg_customers_%'").fetchall()
    assert left == []


@pytest.mark.parametrize("features", [1, 3, 7])
def test_assign_equals_the_plain_nearest_centre_computation(features):
    """assign / block_distances (column-major passes) give the same bits as summing squared
    differences along each row, and the same labels and inertia."""
    from custseg.clustering.scaling import assign, block_distances

    rng = np.random.default_rng(features)
    Z = rng.normal(size=(25_001, features)) * rng.uniform(0.1, 10, size=features)
    centres = rng.normal(size=(6, features))
    plain = ((Z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(block_distances(Z, centres).T, plain)
    labels, inertia = assign(Z, centres, chunk=4_000, with_inertia=True)
    np.testing.assert_array_equal(labels, plain.argmin(axis=1))
    assert inertia == pytest.approx(plain.min(axis=1).sum(), rel=1e-12)


def test_a_fetched_table_comes_in_one_piece_per_column_with_its_values():
    """engines.base.fetch_in_one_piece against Arrow's own joining of the batches: numbers, dates,
    text, a column that meets a null in its third batch, and a type the schema casts."""
    import datetime as dt

    from custseg.engines.base import fetch_in_one_piece

    rng = np.random.default_rng(3)
    n, size = 2_500, 1_000  # three batches, the last one short
    spend = rng.random(n)
    maybe = [None if i == 2_300 else float(i) for i in range(n)]
    table = pa.table({
        "customer_id": pa.array(rng.permutation(n), pa.int64()),
        "spend": pa.array(spend),
        "orders": pa.array(rng.integers(1, 9, n), pa.int32()),
        "first_day": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 900, n)]),
        "maybe": pa.array(maybe),
        "note": pa.array([f"n{i}" for i in range(n)]),
        "small": pa.array(rng.integers(0, 5, n), pa.int16()),
    })
    schema = table.schema.set(table.schema.get_field_index("small"), pa.field("small", pa.int64()))
    got = fetch_in_one_piece(iter(table.to_batches(max_chunksize=size)), schema, n)
    assert got.schema == schema
    assert all(got.column(name).num_chunks == 1 for name in got.column_names)
    expected = table.set_column(table.schema.get_field_index("small"), "small", table.column("small").cast(pa.int64()))
    assert got.equals(expected.combine_chunks())
    assert got.column("maybe").null_count == 1
    empty = fetch_in_one_piece(iter([]), schema, 0)
    assert empty.num_rows == 0 and empty.schema == schema
