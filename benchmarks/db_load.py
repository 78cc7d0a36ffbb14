"""Load a CSV of order lines into a database table, typed (the column types DuckDB detects) or as text.

    python benchmarks/db_load.py FILE.csv postgresql://user:pw@host/db schema.orders [--text]
    python benchmarks/db_load.py FILE.csv sqlite:///shop.db orders [--text]
    python benchmarks/db_load.py FILE.csv duckdb:///shop.duckdb orders [--text]

Used by benchmarks/database.py and the parity tests (tests/test_db_engine.py). PostgreSQL is
loaded with COPY (psycopg), SQLite with executemany, DuckDB with CREATE TABLE AS read_csv.
The table must not exist.
"""

from __future__ import annotations

import sqlite3
import sys

import duckdb

PG_TYPES = {"BIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double precision", "VARCHAR": "text",
            "DATE": "date", "TIMESTAMP": "timestamp", "BOOLEAN": "boolean", "SMALLINT": "smallint",
            "TINYINT": "smallint", "FLOAT": "real"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(name: str) -> str:
    return ".".join(_quote(part) for part in name.split("."))


def load(csv_path: str, url: str, table: str, text: bool = False) -> int:
    """Create `table` in the database of `url` holding the lines of `csv_path`; the number of lines."""
    con = duckdb.connect()
    # CSV columns as the custseg CSV reader sees them: DuckDB's detected types, or all text.
    relation = con.read_csv(csv_path, all_varchar=text, header=True)
    columns = relation.columns
    types = [str(t) for t in relation.types]
    if url.startswith("duckdb:///"):
        target = duckdb.connect(url.split(":///", 1)[1])
        target.execute(f"CREATE TABLE {_qualified(table)} AS SELECT * FROM read_csv(?, all_varchar = {text}, "
                       "header = true)", [csv_path])
        count = target.execute(f"SELECT count(*) FROM {_qualified(table)}").fetchone()[0]
        target.close()
        return count
    rows = relation.fetchall()
    if url.startswith("sqlite:///"):
        target = sqlite3.connect(url.split(":///", 1)[1])
        declared = ", ".join(f"{_quote(c)} {'TEXT' if text or t == 'VARCHAR' else 'NUMERIC' if t != 'DATE' else 'TEXT'}"
                             for c, t in zip(columns, types))
        target.execute(f"CREATE TABLE {_qualified(table)} ({declared})")
        rows = [tuple(v.isoformat() if hasattr(v, "isoformat") else v for v in row) for row in rows]
        target.executemany(f"INSERT INTO {_qualified(table)} VALUES ({', '.join('?' * len(columns))})", rows)
        target.commit()
        target.close()
        return len(rows)
    import psycopg  # the driver custseg installs

    declared = ", ".join(f"{_quote(c)} {PG_TYPES.get(t, 'text')}" for c, t in zip(columns, types))
    with psycopg.connect(url) as target, target.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {_qualified(table)} ({declared})")
        with cursor.copy(f"COPY {_qualified(table)} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--text"]
    if len(args) != 3:
        sys.exit(__doc__)
    n = load(args[0], args[1], args[2], text="--text" in sys.argv)
    print(f"loaded {n:,} lines into {args[2]}")
