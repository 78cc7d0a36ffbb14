"""custseg.db: order lines from PostgreSQL, SQLite and DuckDB files; guarded casts; writing back.

Tables are loaded and read back with the plain drivers (psycopg, sqlite3, duckdb) and plain SQL,
so what custseg.db reads and writes is checked against something it did not produce.
PostgreSQL tests use the `pg_url` / `pg_schema` fixtures (tests/pg.py): a throwaway server, or a
skip that says why.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sqlite3

import ibis
import pyarrow as pa
import pytest

from custseg.engines import sql as D
from custseg.errors import CustsegError

BACKENDS = ["postgres", "sqlite", "duckdb"]


class Target:
    """A database of one kind, filled and inspected with its plain driver."""

    def __init__(self, kind: str, url: str, schema: str, raw_url: str | None = None):
        self.kind, self.url, self.schema, self.raw_url = kind, url, schema, raw_url

    def q(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.kind == "postgres" else f'"{name}"'

    def _connect(self):
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(self.raw_url, autocommit=True)
        if self.kind == "sqlite":
            return sqlite3.connect(self.url.split(":///", 1)[1])
        import duckdb

        return duckdb.connect(self.url.split(":///", 1)[1])

    def run(self, sql: str, params=None, many=None) -> list[tuple]:
        con = self._connect()
        try:
            cur = con.cursor()
            if many is not None:
                cur.executemany(sql, many)
                rows = []
            else:
                cur.execute(sql, params) if params is not None else cur.execute(sql)
                rows = cur.fetchall() if cur.description else []
            if self.kind != "postgres":
                con.commit()
            return [tuple(r) for r in rows]
        finally:
            con.close()

    def load(self, name: str, header: list[str], rows: list[tuple], types: list[str] | None = None) -> None:
        types = types or ["TEXT"] * len(header)
        columns = ", ".join(f'"{c}" {t}' for c, t in zip(header, types))
        self.run(f"CREATE TABLE {self.q(name)} ({columns})")
        mark = "%s" if self.kind == "postgres" else "?"
        self.run(f"INSERT INTO {self.q(name)} VALUES ({', '.join([mark] * len(header))})", many=rows)

    def tables(self) -> set[str]:
        if self.kind == "sqlite":
            return {r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        schema = self.schema
        return {r[0] for r in self.run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = " +
            ("%s" if self.kind == "postgres" else "?"), [schema])}

    def name(self, table: str) -> str:
        """The name to give custseg.db (schema-qualified on PostgreSQL)."""
        return f"{self.schema}.{table}" if self.kind == "postgres" else table


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path):
    if request.param == "postgres":
        schema = request.getfixturevalue("pg_schema")
        url = request.getfixturevalue("pg_url")
        return Target("postgres", url, schema, raw_url=url)
    path = tmp_path / ("shop.db" if request.param == "sqlite" else "shop.duckdb")
    if request.param == "sqlite":
        sqlite3.connect(path).close()
    else:
        import duckdb

        duckdb.connect(str(path)).close()
    return Target(request.param, f"{request.param}:///{path}", "main")


def pg_password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def one_line(exc: CustsegError) -> str:
    text = str(exc)
    assert "\n" not in text and text.strip() == text
    return text


# ---------------------------------------------------------------------------- URLs


@pytest.mark.parametrize("url, masked", [
    ("postgresql://ann:s3cret@db.example:5432/shop", "postgresql://ann:***@db.example:5432/shop"),
    ("postgres://ann:p%40ss%3Aword@h/shop?sslmode=require", "postgres://ann:***@h/shop?sslmode=require"),
    ("mysql://root:pw@127.0.0.1/shop", "mysql://root:***@127.0.0.1/shop"),
    ("postgresql://ann@h/shop", "postgresql://ann@h/shop"),
    ("postgresql://ann@h/shop?sslmode=require&password=s%40cret", "postgresql://ann@h/shop?sslmode=require&password=***"),
    ("sqlite:////tmp/shop.db", "sqlite:////tmp/shop.db"),
])
def test_mask_url_hides_only_the_password(url, masked):
    assert D.mask_url(url) == masked
    assert str(D.parse_url(url)) == masked and masked in repr(D.parse_url(url))


def test_scrub_removes_the_password_raw_and_decoded():
    url = "postgres://ann:p%40ss%3Aword@h/shop"
    text = f"failed for {url}: p@ss:word and p%40ss%3Aword"
    assert "p@ss" not in D.scrub(text, url) and "p%40ss" not in D.scrub(text, url)


def test_parse_url_paths_and_kinds():
    assert D.parse_url("sqlite:///shop.db").path == "shop.db"
    assert D.parse_url("sqlite:////tmp/shop.db").path == "/tmp/shop.db"
    assert D.parse_url("duckdb:////tmp/x.duckdb").backend == "duckdb"
    assert D.parse_url("postgres://h/x").backend == "postgres"
    assert not D.is_database_url("orders.csv")
    assert not D.is_database_url("https://example.com/orders.csv")
    assert not D.is_database_url("s3://bucket/orders.parquet")
    with pytest.raises(CustsegError, match="sqlite:///relative/path"):
        D.parse_url("sqlite://shop.db")


def test_missing_database_file_is_an_error_and_is_not_created(tmp_path):
    for scheme in ("sqlite", "duckdb"):
        path = tmp_path / f"missing.{scheme}"
        with pytest.raises(CustsegError, match="no such database file") as info:
            D.connect(f"{scheme}:///{path}")
        one_line(info.value)
        assert not path.exists()


def test_unknown_scheme_and_missing_driver_name_what_to_install():
    with pytest.raises(CustsegError, match="not a database custseg knows") as info:
        D.connect("nosuchdb://u:Pw1234567@h/x")
    assert "Pw1234567" not in one_line(info.value)
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        with pytest.raises(CustsegError, match=r"pip install 'custseg\[mysql\]'") as info:
            D.connect("mysql://u:Pw1234567@127.0.0.1:3306/x")
        assert "Pw1234567" not in one_line(info.value)


# ---------------------------------------------------------------------------- connecting to PostgreSQL


def test_postgres_connection_errors_are_one_masked_line(pg_url):
    password = pg_password(pg_url)
    user_host, database = pg_url.rsplit("/", 1)
    port = int(user_host.rsplit(":", 1)[1])
    wrong = pg_url.replace(f":{password}@", ":Wr0ngSecret77@")
    cases = {
        "wrong password": (wrong, "wrong user name or password", "Wr0ngSecret77"),
        "missing database": (f"{user_host}/no_such_db", "no such database", password),
        "closed port": (pg_url.replace(f":{port}/", f":{_closed_port()}/"), "cannot be reached", password),
    }
    for label, (url, hint, secret) in cases.items():
        with pytest.raises(CustsegError) as info:
            D.connect(url)
        message = one_line(info.value)
        assert hint in message, (label, message)
        assert secret not in message and "***" in message, (label, message)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_reprs_and_progress_lines_hide_the_password(pg_url, pg_schema):
    password = pg_password(pg_url)
    target = Target("postgres", pg_url, pg_schema, raw_url=pg_url)
    target.load("orders", ["customer_id"], [("a",)])
    database = D.connect(pg_url)
    source = D.read_lines(database, table=f"{pg_schema}.orders")
    shown = [repr(database), str(database.url), repr(database.url), database.describe(source.label), repr(source)]
    assert all(password not in text for text in shown), shown
    assert f"table {pg_schema}.orders" in database.describe(source.label)


# ---------------------------------------------------------------------------- reading


def test_read_table_and_query(target):
    rows = [("c1", "2024-01-05", "12.50"), ("c2", "2024-02-01", "abc"), ("c1", "2024-03-01", "")]
    target.load("orders", ["customer_id", "order_date", "amount"], rows)
    database = D.connect(target.url)
    by_table = D.read_lines(database, table=target.name("orders"))
    got = D.to_arrow(database, by_table.lines)
    assert sorted(tuple(r.values()) for r in got.to_pylist()) == sorted(rows)
    assert by_table.tables == {(target.schema, "orders")}
    query = f"SELECT customer_id, amount FROM {target.q('orders')} WHERE customer_id = 'c1'"
    by_query = D.read_lines(database, query=query)
    assert sorted(tuple(r.values()) for r in D.to_arrow(database, by_query.lines).to_pylist()) == \
        [("c1", ""), ("c1", "12.50")]
    assert by_query.tables == {(target.schema, "orders")}
    # A name written in another case finds the one table it can mean.
    upper = D.read_lines(database, table=target.name("ORDERS"))
    assert D.to_arrow(database, upper.lines).num_rows == 3
    qualified = D.read_lines(database, table=f"{target.schema}.orders")  # 'main' in SQLite and DuckDB files
    assert D.to_arrow(database, qualified.lines).num_rows == 3


def test_read_errors_are_one_line_and_change_nothing(target):
    target.load("orders", ["customer_id", "amount"], [("c1", "1")])
    database = D.connect(target.url)
    with pytest.raises(CustsegError, match=r"no table .*tables there: orders") as info:
        D.read_lines(database, table=target.name("ordres"))
    one_line(info.value)
    failing = {
        f"SELECT * FROM {target.q('nope')}": "no such table",
        f"SELECT nope FROM {target.q('orders')}": "no such column",
        f"SELECT 1 AS x; DELETE FROM {target.q('orders')}": "2 statements",
        f"DELETE FROM {target.q('orders')}": "may not change the database",
        f"DROP TABLE {target.q('orders')}": "may not change the database",
    }
    if target.kind == "postgres":  # a data-modifying WITH parses as a SELECT
        failing[f"WITH d AS (DELETE FROM {target.q('orders')} RETURNING *) SELECT * FROM d"] = \
            "may not change the database"
    for query, expected in failing.items():
        with pytest.raises(CustsegError) as info:
            D.read_lines(database, query=query)
        assert expected in one_line(info.value), (query, str(info.value))
    with pytest.raises(CustsegError, match="--table"):
        D.read_lines(database)
    assert target.run(f"SELECT customer_id, amount FROM {target.q('orders')}") == [("c1", "1")]


def test_a_query_failing_while_it_runs_is_one_line(pg_url):
    database = D.connect(pg_url)
    source = D.read_lines(database, query="SELECT 1 / (x - 1) AS y FROM (SELECT 1 AS x) AS t")
    with pytest.raises(CustsegError, match="division by zero") as info:
        D.to_arrow(database, source.lines)
    assert pg_password(pg_url) not in one_line(info.value)


# ---------------------------------------------------------------------------- guarded casts

NUMBERS = {  # text -> the number it is, or None (never 0 for a bad value)
    "": None, "abc": None, "1,5": None, "12.50": 12.5, "(3)": None, "7": 7.0, " 8 ": 8.0, "+4": 4.0,
    "-.5": -0.5, "5.": 5.0, "1e3": 1000.0, "1E-2": 0.01, "0": 0.0, "-0.0": 0.0, "1e400": None, "inf": None,
    "nan": None, "1_000": 1000.0, "1_000.2_5": 1000.25, "1__0": None, "_1": None, "1_": None,
    "1._5": None, "9" * 77 + ".5": float("9" * 77 + ".5"), "9" * 81: None, "0x1F": None, "12.5abc": None, "$12": None, "2024-01-05": None, None: None,
}
DATES = {
    "2024-01-05": dt.date(2024, 1, 5), "2024-02-29": dt.date(2024, 2, 29), "2000-02-29": dt.date(2000, 2, 29),
    "2024-1-5": dt.date(2024, 1, 5), " 2024-12-31 ": dt.date(2024, 12, 31), "2023-02-29": None, "1900-02-29": None,
    "2024-02-31": None, "2024-04-31": None, "2024-13-01": None, "2024-00-10": None, "0000-01-01": None,
    "": None, "abc": None, "12.50": None, "2024-01-05 10:30": None, "05/01/2024": None, None: None,
}
INTEGERS = {"7": 7, "-3": -3, " 42 ": 42, "12.50": None, "": None, "abc": None, "99999999999999999999": None,
            "1e3": None, None: None}


def _cast_all(target, values: dict, to: str) -> dict:
    target.load("vals", ["i", "s"], [(str(i), v) for i, v in enumerate(values)])
    database = D.connect(target.url)
    t = D.read_lines(database, table=target.name("vals")).lines
    out = D.to_arrow(database, t.select(i=t.i.cast("int64"), x=D.guarded_cast(t.s, to)).order_by("i"))
    keys = list(values)
    return {keys[r["i"]]: r["x"] for r in out.to_pylist()}


def test_guarded_number_cast(target):
    got = _cast_all(target, NUMBERS, "float64")
    assert got == NUMBERS


def test_guarded_date_cast(target):
    got = _cast_all(target, DATES, "date")
    got = {k: (v if v is None or isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])) for k, v in got.items()}
    assert got == DATES


def test_guarded_integer_cast(target):
    assert _cast_all(target, INTEGERS, "int64") == INTEGERS


def test_guarded_cast_on_generated_text_equals_python(target):
    """Numbers built digit by digit (good) and spoilt by construction (bad), against Python's float."""
    rng = random.Random(5)
    values = {}
    for _ in range(150):
        whole = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 8)))
        text = rng.choice(["", "-", "+"]) + whole + ("." + frac if frac or rng.random() < 0.2 else "")
        if rng.random() < 0.3:
            text += f"e{rng.choice(['', '-', '+'])}{rng.randint(0, 40)}"
        if rng.random() < 0.5:
            values[text] = float(text)
        else:  # spoilt: a letter, a comma, brackets or a second dot inside
            spoil = rng.choice(["x", ",", "()", ".."])
            cut = rng.randint(0, len(text))
            values[text[:cut] + spoil + text[cut:]] = None
    got = _cast_all(target, values, "float64")
    for text, expected in values.items():
        if expected is None:
            assert got[text] is None, text
        else:
            assert got[text] == pytest.approx(expected, rel=1e-15, abs=0), text


def test_ibis_try_cast_is_unsafe_where_the_guard_is_used():
    """Why the guard exists: Ibis 12 compiles try_cast to a plain CAST on PostgreSQL and MySQL and
    has none on SQLite; DuckDB's is a real TRY_CAST (which D.try_cast_for keeps)."""
    t = ibis.table({"s": "string"}, name="t")
    assert "TRY_CAST" not in ibis.to_sql(t.s.try_cast("float64"), dialect="postgres")
    assert "TRY_CAST" not in ibis.to_sql(t.s.try_cast("float64"), dialect="mysql")
    assert "TRY_CAST" in ibis.to_sql(t.s.try_cast("float64"), dialect="duckdb")
    with pytest.raises(Exception, match="TryCast"):
        ibis.to_sql(t.s.try_cast("float64"), dialect="sqlite")
    for dialect in ("postgres", "mysql", "sqlite"):
        sql = ibis.to_sql(D.try_cast_for(dialect)(t.s, "float64"), dialect=dialect)
        assert "CASE" in sql.upper() and "TRY_CAST" not in sql.upper()


# ---------------------------------------------------------------------------- writing back

SEGMENTS = pa.table({"customer_id": ["c1", "c2", "007"], "segment": [0, 1, 1],
                     "segment_name": ["Loyal", "New", "New"], "recency_days": [3.5, 10.0, 0.0]})


def _temporaries(target) -> set[str]:
    return {n for n in target.tables() if n.startswith(D.TEMP_PREFIX)}


def test_write_table_new_fail_and_replace(target):
    database = D.connect(target.url)
    name = target.name("customer_segments")
    written = D.write_table(database, name, SEGMENTS)
    assert written.endswith("customer_segments")
    rows = target.run(f"SELECT customer_id, segment, segment_name, recency_days FROM {target.q('customer_segments')} "
                      "ORDER BY customer_id")
    assert rows == [("007", 1, "New", 0.0), ("c1", 0, "Loyal", 3.5), ("c2", 1, "New", 10.0)]
    # if_exists=fail (the default): one line, and the table keeps its rows.
    with pytest.raises(CustsegError, match="already exists.*--if-exists replace") as info:
        D.write_table(database, name, SEGMENTS.slice(0, 1))
    one_line(info.value)
    assert target.run(f"SELECT count(*) FROM {target.q('customer_segments')}") == [(3,)]
    # replace: the new rows, nothing else left behind.
    D.write_table(database, name, SEGMENTS.slice(0, 1), if_exists="replace")
    assert target.run(f"SELECT customer_id FROM {target.q('customer_segments')}") == [("c1",)]
    assert _temporaries(target) == set()
    with pytest.raises(CustsegError, match="--if-exists"):
        D.write_table(database, name, SEGMENTS, if_exists="append")


def test_write_table_refuses_the_source(target):
    target.load("orders", ["customer_id", "amount"], [("c1", "1")])
    database = D.connect(target.url)
    for source in (D.read_lines(database, table=target.name("orders")),
                   D.read_lines(database, query=f"SELECT * FROM {target.q('orders')}")):
        for name in (target.name("orders"), target.name("ORDERS")):
            with pytest.raises(CustsegError, match="order lines are read from"):
                D.write_table(database, name, SEGMENTS, if_exists="replace", source=source)
    assert target.run(f"SELECT customer_id, amount FROM {target.q('orders')}") == [("c1", "1")]
    assert _temporaries(target) == set()


def test_a_failing_swap_leaves_the_old_object_and_no_temporary(target):
    """Replacing a view (DROP TABLE fails on it) fails inside the transaction: the view stays
    and the uniquely named table with the new rows is removed."""
    target.load("orders", ["customer_id"], [("c1",)])
    target.run(f"CREATE VIEW {target.q('segments_view')} AS SELECT customer_id FROM {target.q('orders')}")
    database = D.connect(target.url)
    with pytest.raises(CustsegError) as info:
        D.write_table(database, target.name("segments_view"), SEGMENTS, if_exists="replace")
    assert "it is a view" in one_line(info.value)
    assert target.run(f"SELECT customer_id FROM {target.q('segments_view')}") == [("c1",)]
    assert _temporaries(target) == set()


def test_write_without_privilege_creates_nothing(pg_url, pg_schema):
    """A user who may read the schema but not create in it: one line, no password, nothing created."""
    import secrets

    import psycopg

    role, password = f"reader_{secrets.token_hex(4)}", secrets.token_hex(12)
    with psycopg.connect(pg_url, autocommit=True) as con:
        can_create_roles = con.execute("SELECT rolcreaterole OR rolsuper FROM pg_roles "
                                       "WHERE rolname = current_user").fetchone()[0]
        if not can_create_roles:
            pytest.skip("the test user may not create roles (CREATEROLE)")
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        con.execute(f'GRANT USAGE ON SCHEMA "{pg_schema}" TO {role}')
    try:
        reader_url = pg_url.replace(f"//{pg_url.split('//')[1].split('@')[0]}@", f"//{role}:{password}@")
        database = D.connect(reader_url)
        with pytest.raises(CustsegError, match="lacks the privilege") as info:
            D.write_table(database, f"{pg_schema}.customer_segments", SEGMENTS)
        assert password not in one_line(info.value)
        database.close()
        with psycopg.connect(pg_url, autocommit=True) as con:
            names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                               "WHERE table_schema = %s", [pg_schema])}
        assert names == set()
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f'REVOKE ALL ON SCHEMA "{pg_schema}" FROM {role}')
            con.execute(f"DROP ROLE {role}")


# ---------------------------------------------------------------------------- parity probe


@pytest.mark.parametrize("schema, rows", [("generic", 400), ("shopify", 300)])
def test_lines_read_back_equal_the_csv(target, tmp_path, schema, rows):
    """The same CSV loaded as text into each database reads back line for line (phase 2 compares
    customers, features and segments)."""
    from custseg.sample import write_sample

    path = write_sample(tmp_path / f"{schema}.csv", schema, rows, 3)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        lines = [tuple(line) for line in reader]
    assert len(lines) == rows
    target.load("lines", header, lines)
    database = D.connect(target.url)
    for source in (D.read_lines(database, table=target.name("lines")),
                   D.read_lines(database, query=f"SELECT * FROM {target.q('lines')}")):
        table = D.to_arrow(database, source.lines)
        assert table.column_names == header
        assert sorted(tuple(r.values()) for r in table.to_pylist()) == sorted(lines)


def test_a_hostile_table_name_is_an_identifier_not_sql(target):
    """Names are quoted by sqlglot, never pasted: a name holding quotes and SQL is just a name."""
    target.load("orders", ["customer_id"], [("c1",)])
    database = D.connect(target.url)
    hostile = 'seg"; DROP TABLE orders; --'
    quoted = '"' + hostile.replace('"', '""') + '"'
    name = f'"{target.schema}".{quoted}' if target.kind == "postgres" else quoted
    D.write_table(database, name, SEGMENTS)
    assert target.run(f"SELECT count(*) FROM {target.q('orders')}") == [(1,)]
    stored = f'"{target.schema}".{quoted}' if target.kind == "postgres" else quoted
    assert target.run(f"SELECT count(*) FROM {stored}") == [(3,)]


def test_no_error_names_the_password(pg_url, pg_schema):
    """Every failure on a real server, collected: none shows the password, all show the masked URL."""
    password = pg_password(pg_url)
    target = Target("postgres", pg_url, pg_schema, raw_url=pg_url)
    target.load("orders", ["customer_id"], [("c1",)])
    target.run(f"CREATE VIEW {target.q('v')} AS SELECT * FROM {target.q('orders')}")
    database = D.connect(pg_url)
    attempts = [
        lambda: D.read_lines(database, table=f"{pg_schema}.nope"),
        lambda: D.read_lines(database, query=f"SELECT nope FROM {target.q('orders')}"),
        lambda: D.to_arrow(database, D.read_lines(database, query="SELECT CAST('x' AS integer) AS n").lines),
        lambda: D.write_table(database, f"{pg_schema}.orders", SEGMENTS),
        lambda: D.write_table(database, f"{pg_schema}.v", SEGMENTS, if_exists="replace"),
        lambda: D.write_table(database, "no_such_schema.segments", SEGMENTS),
    ]
    hints = ["no table", "no such column", "cannot be computed", "already exists", "it is a view",
             "no such schema"]
    for attempt, hint in zip(attempts, hints):
        with pytest.raises(CustsegError) as info:
            attempt()
        message = one_line(info.value)
        assert hint in message, message
        assert password not in message, message


def test_replacing_a_table_that_views_depend_on_keeps_it(pg_url, pg_schema):
    target = Target("postgres", pg_url, pg_schema, raw_url=pg_url)
    target.load("segments", ["customer_id"], [("old",)])
    target.run(f"CREATE VIEW {target.q('mailing')} AS SELECT customer_id FROM {target.q('segments')}")
    with pytest.raises(CustsegError, match="views.* depend on it") as info:
        D.write_table(D.connect(pg_url), f"{pg_schema}.segments", SEGMENTS, if_exists="replace")
    one_line(info.value)
    assert target.run(f"SELECT customer_id FROM {target.q('mailing')}") == [("old",)]
    assert _temporaries(target) == set()
