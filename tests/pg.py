"""pytest fixtures for PostgreSQL: a server from CUSTSEG_TEST_PG_URL, or a throwaway cluster.

`pg_url` is the URL of a database the tests may create schemas in: CUSTSEG_TEST_PG_URL when set
(.ci/run starts a cluster and sets it), else a cluster this session starts itself with
tests/pg_cluster.py when PostgreSQL is installed (initdb found), else the tests that need it skip
and say why. `pg_schema` is a fresh schema per test, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import tempfile

import pytest

from pg_cluster import find_bindir, start, stop

ENV = "CUSTSEG_TEST_PG_URL"


def psycopg_or_skip():
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (it is a dependency of custseg: pip install -e .)")
    return psycopg


@pytest.fixture(scope="session")
def pg_url():
    psycopg = psycopg_or_skip()
    url = os.environ.get(ENV)
    if url:
        try:
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            pytest.fail(f"{ENV} is set but its server cannot be reached: {str(exc).splitlines()[0]}")
        yield url
        return
    if find_bindir() is None:
        pytest.skip(f"no PostgreSQL server: set {ENV}=postgresql://user:password@host:port/db, "
                    "or install PostgreSQL (apt-get install postgresql) so the tests start their own")
    # Not under pytest's tmp_path: the server's user must be able to reach the directory.
    directory = tempfile.mkdtemp(prefix="custseg-pg-")
    try:
        url = start(directory)
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip, said in full
        stop(directory)
        detail = getattr(exc, "stderr", "") or ""
        pytest.skip(f"could not start a throwaway PostgreSQL cluster: {exc} {detail}".strip())
    try:
        yield url
    finally:
        stop(directory)


@pytest.fixture
def pg_schema(pg_url):
    """A fresh schema in the test database (dropped with everything in it afterwards)."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
