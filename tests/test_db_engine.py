"""The SQL-database engine end to end (issue 15): the same order lines in a CSV, in PostgreSQL
(typed, and as text), in SQLite and in a DuckDB file give the same customers, features, k and
segments; --write-table; scoring compiled into the database; bad inputs.

PostgreSQL tests use the `pg_url` / `pg_schema` fixtures (tests/pg.py): a throwaway server, or a
skip that says why.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import custseg
from custseg.clustering.scaling import Scaling, assign
from custseg.errors import CustsegError
from custseg.model import SegmentationModel
from custseg.pipeline import score
from helpers import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from db_load import load  # noqa: E402

KINDS = ["csv", "sqlite", "duckdb", "postgres", "postgres_text"]
# Values a CSV export holds that a database's plain CAST gets wrong (fails the query on PostgreSQL,
# reads as 0 or 12 on SQLite): the CSV reader and the guarded casts must drop the same lines.
DIRTY = {"total_sales": ["abc", "", "12abc", "1e400", "€1,234.50", " 7.5 ", "-3", "1_000", "inf"],
         "day": ["31/02/2019", "29/02/2019", "29/02/2020", "2019-13-01", "", "5/1/2019"],
         "ordered_item_quantity": ["x", "", "2.0", "1e1"],
         "customer_id": ["", "  ", "1000003"]}


def password_of(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    """A few thousand Shopify-like lines with dirty values, as a CSV; and a shuffled copy of them."""
    from custseg.sample import write_sample

    directory = tmp_path_factory.mktemp("dblines")
    path = write_sample(directory / "orders.csv", "shopify", 4000, 11)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    rng = random.Random(5)
    for column, values in DIRTY.items():
        index = header.index(column)
        for value in values:
            row = list(rng.choice(rows))
            row[index] = value
            rows.append(row)
    dirty = directory / "dirty.csv"
    with open(dirty, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows([header, *rows])
    rng.shuffle(rows)
    shuffled = directory / "shuffled.csv"
    with open(shuffled, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows([header, *rows])
    return {"clean": path, "dirty": dirty, "shuffled": shuffled, "directory": directory}


def source(kind: str, csv_path: Path, request, directory: Path, name: str) -> dict:
    """segment() arguments reading csv_path's lines (loaded shuffled into a database)."""
    if kind == "csv":
        return {"data": str(csv_path)}
    if kind.startswith("postgres"):
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        load(str(csv_path), url, f"{schema}.{name}", text=kind == "postgres_text")
        return {"data": url, "table": f"{schema}.{name}"}
    suffix = "db" if kind == "sqlite" else "duckdb"
    path = directory / f"{name}-{kind}.{suffix}"
    if kind == "sqlite":
        sqlite3.connect(path).close()
    load(str(csv_path), f"{kind}:///{path}", name, text=True)
    return {"data": f"{kind}:///{path}", "table": name}


def run(args: dict, **options):
    data = args.pop("data")
    return custseg.segment(data, **args, **options)


def assert_same_result(expected, got):
    a, b = expected.segments_table, got.segments_table
    assert b.column("customer_id").to_pylist() == a.column("customer_id").to_pylist()
    for name in expected.features:
        np.testing.assert_allclose(b.column(name).to_numpy(), a.column(name).to_numpy(), rtol=1e-9, atol=1e-9)
    assert got.k == expected.k
    assert b.column("segment").to_pylist() == a.column("segment").to_pylist()
    # the lifecycle summary: from the customer table's query on DuckDB, by its own window query in a
    # database (profiles/backtest.py): the same customers' P(alive) and expected orders and value
    lifecycle = [n for n in a.column_names if n == "p_alive" or n.startswith("expected_")]
    assert len(lifecycle) == 3 and lifecycle == [n for n in b.column_names if n in lifecycle]
    for name in lifecycle:
        np.testing.assert_allclose(b.column(name).to_numpy(), a.column(name).to_numpy(), rtol=1e-6, atol=1e-9,
                                   err_msg=name)
    assert got.data_quality["rows_read"] == expected.data_quality["rows_read"]
    assert got.data_quality["rows_used"] == expected.data_quality["rows_used"]
    counts = {r["rule"]: r["rows_dropped"] for r in expected.data_quality["rules"] if r["rule"] != "malformed_line"}
    assert {r["rule"]: r["rows_dropped"] for r in got.data_quality["rules"]} == counts


@pytest.fixture(scope="module")
def from_csv(lines):
    return {which: custseg.segment(str(lines[which]), seed=3) for which in ("clean", "dirty")}


@pytest.mark.parametrize("kind", KINDS[1:])
@pytest.mark.parametrize("which", ["clean", "dirty"])
def test_a_database_gives_what_the_csv_gives(kind, which, lines, from_csv, request, tmp_path):
    """Customers, features (1e-9), k, segments and cleaning counts equal the CSV's, with the lines
    stored in another order; the dirty copy (text columns) exercises the guarded casts."""
    expected = from_csv[which]
    if which == "dirty":
        dropped = {r["rule"]: r["rows_dropped"] for r in expected.data_quality["rules"]}
        assert dropped["invalid_amount"] >= 5 and dropped["invalid_date"] >= 4 and dropped["missing_customer"] >= 2
    stored = lines["shuffled"] if which == "dirty" else lines["clean"]
    kind_ = "postgres_text" if kind == "postgres" and which == "dirty" else kind
    args = source(kind_, stored, request, tmp_path, "orders")
    got = run(args, seed=3)
    assert_same_result(expected, got)
    assert got.summary["engine"] == ("postgres" if kind.startswith("postgres") else kind)


def test_an_ibis_table_expression_is_segmented_where_it_lives(lines, from_csv, tmp_path):
    import ibis

    path = tmp_path / "shop.db"
    sqlite3.connect(path).close()
    load(str(lines["dirty"]), f"sqlite:///{path}", "orders", text=True)
    backend = ibis.sqlite.connect(str(path))
    got = custseg.segment(backend.table("orders"), seed=3)
    assert_same_result(from_csv["dirty"], got)
    assert backend.table("orders").count().execute() > 0  # the user's connection is still open


def test_a_database_opened_from_its_url_is_closed_when_the_run_returns(lines, tmp_path, monkeypatch):
    from custseg.engines import sql

    closed = []
    close = sql.Database.close
    monkeypatch.setattr(sql.Database, "close", lambda db: (closed.append(db.url.masked), close(db)))
    path = tmp_path / "shop.db"
    sqlite3.connect(path).close()
    load(str(lines["clean"]), f"sqlite:///{path}", "orders", text=True)
    got = custseg.segment(f"sqlite:///{path}", table="orders", seed=3)
    assert closed == [f"sqlite:///{path}"] and got.summary["customers"] > 0


def test_write_table_is_read_back_by_plain_sql(lines, from_csv, tmp_path):
    path = tmp_path / "shop.db"
    sqlite3.connect(path).close()
    load(str(lines["clean"]), f"sqlite:///{path}", "orders", text=True)
    url = f"sqlite:///{path}"
    result = custseg.segment(url, table="orders", seed=3, write_table="customer_segments")
    assert result.summary["write_table"] == "main.customer_segments"
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT customer_id, segment, segment_name FROM customer_segments").fetchall()
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    table = result.segments_table
    expected = sorted(zip(table.column("customer_id").to_pylist(), table.column("segment").to_pylist(),
                          table.column("segment_name").cast(pa.string()).to_pylist()))
    assert sorted(rows) == expected
    assert names == {"orders", "customer_segments"}  # no temporary table left behind
    # An existing table: refused before any work (no stage started), unless replaced.
    stages = []
    with pytest.raises(CustsegError, match="already exists"):
        custseg.segment(url, table="orders", write_table="customer_segments",
                        progress=lambda kind, message: stages.append(message))
    assert stages == []
    with pytest.raises(CustsegError, match="order lines are read from"):
        custseg.segment(url, table="orders", write_table="main.ORDERS",
                        progress=lambda kind, message: stages.append(message))
    with pytest.raises(CustsegError, match="order lines are read from"):
        custseg.segment(url, query="SELECT * FROM orders WHERE 1 = 1", write_table="orders")
    assert stages == []
    custseg.segment(url, table="orders", seed=3, write_table="customer_segments", if_exists="replace")
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM customer_segments").fetchone()[0] == table.num_rows


def test_write_table_on_postgres(lines, pg_url, pg_schema):
    import psycopg

    load(str(lines["dirty"]), pg_url, f"{pg_schema}.orders", text=True)
    result = custseg.segment(pg_url, table=f"{pg_schema}.orders", seed=3,
                             write_table=f"{pg_schema}.customer_segments")
    with psycopg.connect(pg_url) as con:
        rows = con.execute(f'SELECT customer_id, segment, segment_name FROM "{pg_schema}".customer_segments').fetchall()
    table = result.segments_table
    assert sorted(rows) == sorted(zip(table.column("customer_id").to_pylist(), table.column("segment").to_pylist(),
                                      table.column("segment_name").cast(pa.string()).to_pylist()))


# ---------------------------------------------------------------------------- scoring in the database


def tiny_model(method: str, centres, mean=None, scale=None, features=("total_spending", "order_count")):
    k, n = np.asarray(centres).shape
    return SegmentationModel(
        features=list(features), centers=np.asarray(centres, dtype=np.float64),
        scaling=Scaling(method, np.asarray(mean if mean is not None else np.zeros(n), dtype=np.float64),
                        np.asarray(scale if scale is not None else np.ones(n), dtype=np.float64)),
        segments=[{"id": i, "name": f"S{i}", "description": "", "strategy": ""} for i in range(k)],
        schema="generic")


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "postgres"])
def test_the_compiled_scorer_equals_the_python_scorer(backend, request, tmp_path):
    """Random customers (with repeats and exact ties) scored by the Ibis expression on a database and
    by scaling.assign: the same labels, for every scaling; ties go to the lower index in both."""
    import ibis

    from custseg.clustering.in_database import nearest_centre

    rng = np.random.default_rng(1)
    X = np.column_stack([rng.lognormal(4, 1.5, 3000) * rng.choice([-1, 1, 1, 1], 3000),
                         rng.integers(0, 30, 3000).astype(float)])
    X[:10] = 0.0
    X[10:20] = [15.0, 1.0]  # halfway between the first two centres of the tie model below
    if backend == "postgres":
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        con = custseg.engines.sql.connect(url).backend
        name = f"{schema}.customers"
    else:
        path = tmp_path / f"c.{backend}"
        con = ibis.sqlite.connect(str(path)) if backend == "sqlite" else ibis.duckdb.connect(str(path))
        name = "customers"
    data = pa.table({"row": np.arange(len(X)), "total_spending": X[:, 0], "order_count": X[:, 1]})
    schema_name, _, table_name = name.rpartition(".")
    con.create_table(table_name, data, database=schema_name or None)
    table = con.table(table_name, database=schema_name or None)
    models = [
        tiny_model("log", rng.normal(2, 2, (6, 2))),
        tiny_model("log-standard", rng.normal(0, 1, (5, 2)), mean=[3.0, 1.5], scale=[1.7, 0.9]),
        tiny_model("standard", rng.normal(0, 1, (4, 2)), mean=[100.0, 5.0], scale=[300.0, 4.0]),
        tiny_model("none", [[10.0, 1.0], [20.0, 1.0], [500.0, 9.0]]),       # ties at (15, 1): segment 0
        tiny_model("none", [[20.0, 1.0], [10.0, 1.0], [20.0, 1.0]]),       # ties: 0, and 0 before 2
        tiny_model("standard", [[-1.0, 0.0], [1.0, 0.0]], mean=[15.0, 1.0], scale=[5.0, 2.0]),
    ]
    for model in models:
        expr = table.mutate(segment=nearest_centre(table, model.features, model.scaling, model.centers))
        got = con.to_pyarrow(expr.select("row", "segment")).to_pandas().sort_values("row")["segment"].to_numpy()
        expected = assign(model.scaling.transform(X), model.centers)
        assert (got == expected).all(), (model.scaling.method, np.flatnonzero(got != expected)[:5])
        assert (got == model.predict(X)).all()
    assert (got[10:20] == 0).all() and (expected[10:20] == 0).all()  # the exact ties, lower index


def test_predict_in_postgres_writes_the_python_scorers_labels(lines, from_csv, pg_url, pg_schema, tmp_path):
    """custseg predict from a text table into --write-table: the labels of predict on the CSV, and
    the customers come back only when --out asks for them."""
    import psycopg

    model_path = from_csv["dirty"].model.save(tmp_path / "model.json")
    load(str(lines["shuffled"]), pg_url, f"{pg_schema}.orders", text=True)
    expected = custseg.predict(model_path, str(lines["dirty"]))
    predictions = score(model_path, pg_url, table=f"{pg_schema}.orders", write_table=f"{pg_schema}.scores",
                        fetch=False)
    assert predictions.table is None
    assert predictions.counts() == dict(zip(from_csv["dirty"].model.segment_names,
                                            np.bincount(expected.segment, minlength=from_csv["dirty"].k).tolist()))
    with psycopg.connect(pg_url) as con:
        rows = con.execute(f'SELECT customer_id, segment, segment_name FROM "{pg_schema}".scores').fetchall()
    assert sorted(rows) == sorted(zip(expected.customer_id, expected.segment, expected.segment_name))
    fetched = custseg.predict(model_path, pg_url, table=f"{pg_schema}.orders")
    assert fetched.customer_id.tolist() == expected.customer_id.tolist()
    assert fetched.segment.tolist() == expected.segment.tolist()
    for name in from_csv["dirty"].features:
        np.testing.assert_allclose(fetched[name], expected[name], rtol=1e-9)


# ---------------------------------------------------------------------------- the command line


def tables_of(pg_url: str) -> set[str]:
    import psycopg

    with psycopg.connect(pg_url) as con:
        return {f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")}


def test_cli_run_and_predict_from_postgres_show_no_password(lines, pg_url, pg_schema, tmp_path):
    load(str(lines["dirty"]), pg_url, f"{pg_schema}.orders", text=True)
    password = password_of(pg_url)
    out = tmp_path / "run"
    done = cli("run", pg_url, "--table", f"{pg_schema}.orders", "-o", out, "--seed", "3",
               "--write-table", f"{pg_schema}.segments", env={"CUSTSEG_PROGRESS": "1"})
    assert done.returncode == 0, done.stderr
    assert "bytes" in done.stderr and "received from" in done.stderr  # the size of what came back
    for text in (done.stdout, done.stderr, *(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())):
        assert password not in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == [f"{pg_url.replace(password, '***')} (table {pg_schema}.orders)"]
    assert summary["write_table"] == f"{pg_schema}.segments"
    scored = cli("predict", out / "model.json", pg_url, "--table", f"{pg_schema}.orders",
                 "--write-table", f"{pg_schema}.scores", env={"CUSTSEG_PROGRESS": "1"})
    assert scored.returncode == 0, scored.stderr
    assert password not in scored.stdout + scored.stderr
    assert f"Wrote table {pg_schema}.scores" in scored.stdout
    assert {f"{pg_schema}.orders", f"{pg_schema}.segments", f"{pg_schema}.scores"} <= tables_of(pg_url)
    # The password as a query parameter (?password=...) is masked the same way.
    in_query = pg_url.replace(f":{password}@", "@") + ("&" if "?" in pg_url else "?") + f"password={password}"
    out = tmp_path / "run2"
    done = cli("run", in_query, "--table", f"{pg_schema}.orders", "-o", out, "--no-report",
               env={"CUSTSEG_PROGRESS": "1"})
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr, *(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())):
        assert password not in text
    assert "password=***" in json.loads((out / "summary.json").read_text())["inputs"][0]


def test_cli_bad_database_inputs(lines, pg_url, pg_schema, tmp_path):
    """Each: exit 2, one line, no password anywhere, no output directory, nothing created in the database."""
    import secrets

    import psycopg

    load(str(lines["clean"]), pg_url, f"{pg_schema}.orders")
    password = password_of(pg_url)
    user_host, database = pg_url.split("@", 1)[1].rsplit("/", 1)
    role, role_password = f"reader_{secrets.token_hex(4)}", secrets.token_hex(12)
    with psycopg.connect(pg_url, autocommit=True) as con:
        if not con.execute("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            pytest.skip("the test user may not create roles (CREATEROLE)")
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{role_password}'")
        con.execute(f'GRANT USAGE ON SCHEMA "{pg_schema}" TO {role}')
        con.execute(f'GRANT SELECT ON "{pg_schema}".orders TO {role}')
        con.execute(f'CREATE TABLE "{pg_schema}".taken (a int)')
        con.execute(f'CREATE TABLE "{pg_schema}".nocolumns (a text)')
    reader = pg_url.replace(pg_url.split("//", 1)[1].split("@", 1)[0], f"{role}:{role_password}")
    table = f"{pg_schema}.orders"
    cases = {
        "unreachable": ([pg_url.replace(user_host, "127.0.0.1:1"), "--table", table], "cannot be reached"),
        "password": ([pg_url.replace(f":{password}@", f":{password}x@"), "--table", table], "password"),
        "database": ([pg_url.rsplit("/", 1)[0] + "/no_such_db", "--table", table], "no such database"),
        "table": ([pg_url, "--table", f"{pg_schema}.nope"], "no table"),
        "column": ([pg_url, "--table", f"{pg_schema}.nocolumns"], "missing column"),
        "map": ([pg_url, "--table", table, "--map", "customer_id=nope"], "no column 'nope'"),
        "query": ([pg_url, "--query", f'SELECT * FROM "{pg_schema}".orders WHERE order_id / (order_id - order_id) > 0'],
                  "division by zero"),
        "syntax": ([pg_url, "--query", "SELEC nope"], "--query"),
        "writes": ([pg_url, "--query", f'DELETE FROM "{pg_schema}".orders'], "may not change the database"),
        "privilege": ([reader, "--table", table, "--write-table", f"{pg_schema}.out"], "lacks the privilege"),
        "exists": ([pg_url, "--table", table, "--write-table", f"{pg_schema}.taken"], "already exists"),
        "source": ([pg_url, "--table", table, "--write-table", table], "read from"),
    }
    before = tables_of(pg_url)
    try:
        for case, (args, hint) in cases.items():
            out = tmp_path / case
            done = cli("run", *args, "-o", out, env={"CUSTSEG_PROGRESS": "1"})
            assert done.returncode == 2, (case, done.stderr)
            # (progress lines are on, to check them for the password too; the error is one line, the last)
            lines_ = [line for line in done.stderr.strip().splitlines() if line.startswith("custseg:")]
            assert len(lines_) == 1 and lines_[0].startswith("custseg: error: "), (case, done.stderr)
            assert done.stderr.strip().endswith(lines_[0]) and hint in lines_[0], (case, lines_[0])
            assert password not in done.stdout + done.stderr and role_password not in done.stderr, case
            assert not out.exists(), case
        assert tables_of(pg_url) == before
        with psycopg.connect(pg_url) as con:
            assert con.execute(f'SELECT count(*) FROM "{pg_schema}".orders').fetchone()[0] == 4000
        # The same read-only user may segment (its temporary tables need no privilege beyond the default).
        done = cli("run", reader, "--table", table, "-o", tmp_path / "reader", "--no-report")
        assert done.returncode == 0, done.stderr
        assert role_password not in done.stdout + done.stderr + (tmp_path / "reader" / "summary.json").read_text()
        assert tables_of(pg_url) == before
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{pg_schema}" FROM {role}')
            con.execute(f'REVOKE ALL ON SCHEMA "{pg_schema}" FROM {role}')
            con.execute(f"DROP ROLE {role}")


def test_database_options_without_a_database_are_refused(lines, tmp_path):
    done = cli("run", lines["clean"], "--table", "orders", "-o", tmp_path / "o")
    assert done.returncode == 2 and "needs a database input" in done.stderr
    done = cli("run", "sqlite:///x.db", lines["clean"], "-o", tmp_path / "o")
    assert done.returncode == 2 and "only input" in done.stderr
    path = tmp_path / "shop.db"
    sqlite3.connect(path).close()
    load(str(lines["clean"]), f"sqlite:///{path}", "orders", text=True)
    done = cli("run", f"sqlite:///{path}", "-o", tmp_path / "o")
    assert done.returncode == 2 and "needs --table [schema.]table or --query" in done.stderr
    done = cli("run", f"sqlite:///{path}", "--table", "orders", "--engine", "spark", "-o", tmp_path / "o")
    assert done.returncode == 2 and "drop --engine" in done.stderr
    done = cli("run", f"sqlite:///{path}", "--table", "orders", "--if-exists", "append", "-o", tmp_path / "o")
    assert done.returncode == 2 and "--if-exists 'append'" in done.stderr
    done = cli("run", f"sqlite:///{tmp_path}/missing.db", "--table", "orders", "-o", tmp_path / "o")
    assert done.returncode == 2 and "no such database file" in done.stderr
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_dates_from_parts_equal_python(backend, request, tmp_path):
    """engines/sql.date_from_parts (the text-date parser's quick path): a date where Python's
    datetime.date accepts the parts, NULL elsewhere (never an error, never another day)."""
    import datetime as dt

    import ibis

    from custseg.engines.sql import date_from_parts

    parts = [("2019", "02", "29"), ("2020", "02", "29"), ("1900", "02", "29"), ("2000", "2", "29"),
             ("2024", "04", "31"), ("2024", "4", "30"), ("2024", "13", "01"), ("2024", "00", "10"),
             ("0000", "01", "01"), ("2024", "1", "5"), ("2024", "12", "31"), ("2024", "1x", "5"),
             ("20", "1", "5"), ("2024", "", "5"), (None, "1", "1"), ("2024", "٠1", "05"), ("2024", "12", "32")]
    table = pa.table({"i": list(range(len(parts))), "y": [p[0] for p in parts], "m": [p[1] for p in parts],
                      "d": [p[2] for p in parts]})
    if backend == "postgres":
        con = custseg.engines.sql.connect(request.getfixturevalue("pg_url")).backend
        schema = request.getfixturevalue("pg_schema")
    else:
        con, schema = ibis.sqlite.connect(str(tmp_path / "d.db")), None
    con.create_table("parts", table, database=schema)
    t = con.table("parts", database=schema)
    got = con.to_pyarrow(t.select("i", day=date_from_parts(t.y, t.m, t.d)).order_by("i")).column("day").to_pylist()

    def python(y, m, d):
        try:
            assert y is not None and len(y) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 2 for p in (m, d))
            return dt.date(int(y), int(m), int(d))
        except (AssertionError, ValueError):
            return None

    got = [v if v is None or isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10]) for v in got]
    assert got == [python(*p) for p in parts]
