"""The SQL-database engine: order lines from a SQL database, segments back into it.

A database is named by a URL:

* ``postgresql://user:password@host:5432/shop`` (also ``postgres://``): the driver (psycopg 3)
  installs with custseg;
* ``mysql://user:password@host:3306/shop``: ``pip install 'custseg[mysql]'`` (mysqlclient);
* ``sqlite:///relative/shop.db``, ``sqlite:////absolute/shop.db``; ``duckdb:///shop.duckdb`` likewise
  (three slashes and a relative path, four and an absolute one, as in SQLAlchemy);
* any other scheme that Ibis has a backend for (``bigquery://``, ``snowflake://``, ``trino://`` ...)
  goes to ``ibis.connect(url)`` when that backend is installed (``pip install 'ibis-framework[NAME]'``).

The lines come from ``--table [schema.]table`` or from ``--query "SELECT ..."``: the query is used
as given (Ibis wraps it as a subquery); no SQL is built from any other user value, identifiers are
quoted by sqlglot. Every error is one CustsegError line that names what went wrong and what to do;
the URL's password never appears in one (nor in a repr or a progress line): `mask_url`.

Text columns are parsed with `guarded_cast`: Ibis 12 compiles `try_cast` to a plain CAST on
PostgreSQL and MySQL (one bad value fails the whole query) and has no `try_cast` on SQLite (whose
CAST turns '' and 'abc' into 0 and '12abc' into 12). The guard matches the text against a pattern
of what the cast accepts before casting it, so a bad value is NULL everywhere, never 0.

`write_table` writes a customer table into a new, uniquely named table and renames it into place
in one transaction, so readers see the old table or the complete new one, never half of one.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge

from ..errors import CustsegError
from .base import Engine

# scheme -> (Ibis backend name, sqlglot dialect, what to install when the backend is missing)
KNOWN_SCHEMES = {
    "postgresql": ("postgres", "postgres", "custseg (its PostgreSQL driver, psycopg, installs with it)"),
    "postgres": ("postgres", "postgres", "custseg (its PostgreSQL driver, psycopg, installs with it)"),
    "mysql": ("mysql", "mysql", "custseg[mysql]"),
    "sqlite": ("sqlite", "sqlite", "ibis-framework[sqlite]"),
    "duckdb": ("duckdb", "duckdb", "ibis-framework[duckdb]"),
}
WRITABLE = ("postgres", "sqlite", "duckdb", "mysql")
CONNECT_TIMEOUT_SECONDS = 10
MASK = "***"
TEMP_PREFIX = "custseg_tmp_"


# ---------------------------------------------------------------------------- URLs


def is_database_url(text: Any) -> bool:
    """Whether `text` names a database (scheme://...), not a file path or an http(s) URL of a file."""
    if not isinstance(text, str):
        return False
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://", text)
    return bool(match) and match.group(1).lower() not in ("http", "https", "s3", "gs", "gcs", "az", "abfs",
                                                          "abfss", "hdfs", "file")


def mask_url(url: str) -> str:
    """The URL with its password replaced by *** (user, host, port and database stay)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", rf"\1{MASK}@", url)
    query = re.sub(r"(^|&)((?:password|pass|pwd)=)[^&]*", rf"\1\2{MASK}", parts.query, flags=re.I)
    if query != parts.query:  # ?password=... (PostgreSQL's drivers read it there too)
        url = url.replace("?" + parts.query, "?" + query, 1)
        parts = parts._replace(query=query)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def _secrets_of(url: str) -> list[str]:
    """The password as written in the URL and decoded (both must never be shown)."""
    try:
        raw = urlsplit(url).netloc.rsplit("@", 1)[0].split(":", 1)[1] if "@" in urlsplit(url).netloc else ""
    except (ValueError, IndexError):
        raw = ""
    try:
        in_query = [v for k, v in parse_qsl(urlsplit(url).query) if k.lower() in ("password", "pass", "pwd")]
    except ValueError:
        in_query = []
    return sorted({s for s in (raw, unquote(raw), *in_query) if s}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with the URL replaced by its masked form and any trace of its password removed."""
    text = text.replace(url, mask_url(url))
    for secret in _secrets_of(url):
        text = text.replace(secret, MASK)
    return text


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL. Its repr and str show the masked URL only."""

    url: str = field(repr=False)
    scheme: str
    backend: str            # the Ibis backend's name
    dialect: str            # sqlglot's dialect name
    path: str | None = None  # the file of sqlite:// and duckdb:// URLs

    @property
    def masked(self) -> str:
        return mask_url(self.url)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.masked!r})"


def parse_url(url: str) -> DatabaseUrl:
    """Recognise a database URL; a clear error when it is malformed or its backend is unknown."""
    if not is_database_url(url):
        raise CustsegError(f"{mask_url(str(url))!s}: not a database URL; write it as "
                           "postgresql://user:password@host:5432/database, sqlite:///file.db or duckdb:///file.duckdb.")
    scheme = url.split("://", 1)[0].lower()
    if scheme in KNOWN_SCHEMES:
        backend, dialect, _ = KNOWN_SCHEMES[scheme]
    else:
        backend = dialect = scheme.split("+", 1)[0]
    path = None
    if backend in ("sqlite", "duckdb"):
        rest = url.split("://", 1)[1]
        if not rest.startswith("/") or rest in ("/", ""):
            raise CustsegError(f"{mask_url(url)}: write a {scheme} file as {scheme}:///relative/path "
                               f"or {scheme}:////absolute/path.")
        path = unquote(rest[1:].split("?", 1)[0])
    return DatabaseUrl(url=url, scheme=scheme, backend=backend, dialect=dialect, path=path)


# ---------------------------------------------------------------------------- connecting


@dataclass
class Database:
    """An open connection: the Ibis backend and the URL it came from (shown masked)."""

    url: DatabaseUrl
    backend: Any = field(repr=False)

    @property
    def name(self) -> str:
        return self.url.backend

    def __repr__(self) -> str:
        return f"Database({self.url.masked!r})"

    def describe(self, source: str | None = None) -> str:
        """What a progress line says about where the lines come from (password masked)."""
        return f"{self.url.masked}" + (f" ({source})" if source else "")

    def default_schema(self) -> str:
        try:
            return str(self.backend.current_database)
        except Exception:  # a backend without schemas
            return ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.backend.disconnect()


def connect(url: str) -> Database:
    """Open the database named by `url`; a CustsegError (password masked) when it cannot be opened."""
    parsed = parse_url(url)
    try:
        backend = _connect(parsed)
    except CustsegError:
        raise
    except ImportError as exc:  # the backend's driver is not installed
        raise _missing_backend(parsed, exc) from None
    except Exception as exc:
        raise translate_error(exc, parsed, "connecting") from None
    return Database(url=parsed, backend=backend)


def _connect(parsed: DatabaseUrl):
    if parsed.backend == "postgres":
        parts = urlsplit(parsed.url)
        options = dict(parse_qsl(parts.query))
        options.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
        database = unquote(parts.path.lstrip("/")) or options.pop("dbname", None) or None
        password = unquote(parts.password) if parts.password is not None else options.pop("password", None)
        user = unquote(parts.username or "") or options.pop("user", None) or None
        options.pop("password", None)
        return ibis.postgres.connect(
            host=parts.hostname or None, port=parts.port or 5432, user=user, password=password, database=database,
            **options,
        )
    if parsed.backend == "mysql":
        parts = urlsplit(parsed.url)
        import MySQLdb  # noqa: F401  # the optional driver: a clear message below when it is missing
        return ibis.mysql.connect(
            host=parts.hostname or "localhost", port=parts.port or 3306, user=unquote(parts.username or "") or None,
            password=unquote(parts.password) if parts.password is not None else None,
            database=unquote(parts.path.lstrip("/")) or None,
        )
    if parsed.backend in ("sqlite", "duckdb"):
        path = Path(parsed.path)
        # Connecting would create an empty database where the user mistyped a path.
        if not path.is_file():
            raise CustsegError(f"{parsed.masked}: no such database file {str(path)!r}; check the path "
                               f"({parsed.scheme}:///relative/path or {parsed.scheme}:////absolute/path).")
        if parsed.backend == "sqlite":
            backend = ibis.sqlite.connect(str(path))
            backend.compiler = sqlite_compiler()  # this connection only
            return backend
        return ibis.duckdb.connect(str(path))
    return ibis.connect(parsed.url)


def sqlite_compiler():
    """Ibis' SQLite compiler with isnan: SQLite stores no NaN (it becomes NULL), so no number is NaN
    there (Ibis 12 refuses the operation, which the cleaning rules use on every engine); and a
    character's code by SQLite's own unicode() (NULL for an empty text), not by Ibis' Python
    function, which raises on an empty text (sources/values.py reads the ends' codes of every text)."""
    import ibis.expr.operations as ops  # Ibis' compiler internals, for SQLite only
    from ibis.backends.sql.compilers.sqlite import SQLiteCompiler

    class Compiler(SQLiteCompiler):
        UNSUPPORTED_OPS = tuple(op for op in SQLiteCompiler.UNSUPPORTED_OPS if op is not ops.IsNan)
        SIMPLE_OPS = {**SQLiteCompiler.SIMPLE_OPS, ops.StringAscii: "unicode"}

        def visit_IsNan(self, op, *, arg):
            return self.if_(arg.is_(sge.null()), sge.null(), sge.false())

    return Compiler()


def _missing_backend(parsed: DatabaseUrl, exc: ImportError) -> CustsegError:
    if parsed.scheme in KNOWN_SCHEMES:
        package = KNOWN_SCHEMES[parsed.scheme][2]
    else:
        package = f"ibis-framework[{parsed.backend}]"
    return CustsegError(f"{parsed.masked}: the {parsed.backend} driver is not installed "
                        f"({exc.name or _first_line(exc)}); install it with: pip install '{package}'.")


# ---------------------------------------------------------------------------- errors


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def translate_error(exc: BaseException, parsed: DatabaseUrl, doing: str, what: str = "") -> CustsegError:
    """One line for a driver's or Ibis's exception: what failed, on which (masked) database, what to do."""
    where = parsed.masked
    message = _first_line(exc)
    full = str(exc)
    lower = full.lower()
    sqlstate = getattr(exc, "sqlstate", None) or ""
    kind = type(exc).__name__
    target = f" {what}" if what else ""
    if kind == "UnknownBackend" or "don't know how to connect" in lower:
        hint = (f"{parsed.scheme}:// is not a database custseg knows; use postgresql://, mysql://, sqlite:///, "
                "duckdb:/// or a scheme of an installed Ibis backend (pip install 'ibis-framework[NAME]')")
    elif "password authentication failed" in lower or sqlstate == "28P01" or "access denied for user" in lower:
        hint = "wrong user name or password; check them in the URL"
    elif re.search(r'database "[^"]*" does not exist', full) or sqlstate == "3D000" or "unknown database" in lower:
        hint = "no such database on the server; check the database name at the end of the URL"
    elif ("connection refused" in lower or "could not translate host name" in lower or "timeout expired" in lower
          or "can't connect" in lower or "no route to host" in lower or "name or service not known" in lower
          or "network is unreachable" in lower or "could not connect" in lower):
        hint = "the server cannot be reached; check the host and port, and that the server accepts connections"
    elif sqlstate == "3F000" or re.search(r'schema "[^"]*" does not exist', full) or (
            kind == "CatalogException" and "schema with name" in lower):
        hint = "no such schema; create it first or name an existing schema"
    elif kind == "TableNotFound" or sqlstate == "42P01" or "no such table" in lower or (
            kind == "CatalogException" and "does not exist" in lower):
        hint = "no such table; check the name (schema.table) and that the URL names the right database"
    elif sqlstate == "42703" or "no such column" in lower or "unknown column" in lower or (
            "referenced column" in lower) or (
            "column" in lower and "does not exist" in lower):
        hint = "no such column; check the column names of the table or query"
    elif (sqlstate == "42501" or "permission denied" in lower or "insufficient privilege" in lower
          or "readonly database" in lower or "read-only" in lower or "command denied" in lower):
        hint = "the database user lacks the privilege; ask for it or use another user or schema"
    elif sqlstate == "42P07" or "already exists" in lower:
        hint = "it already exists; choose another name or pass --if-exists replace"
    elif sqlstate == "42809" or "is not a table" in lower or "drop view" in lower or "of type view" in lower:
        hint = "it is a view, not a table; drop the view or write the segments to another table"
    elif sqlstate == "2BP01" or "depend on it" in lower:
        hint = "other objects (views) depend on it; drop them first or write to another table"
    elif sqlstate.startswith("22") or "invalid input syntax" in lower or "conversion error" in lower or (
            "division by zero" in lower):
        hint = "a value in the data cannot be computed as asked; check the casts and arithmetic of the --query"
    elif sqlstate.startswith("42") or kind in ("ParseError", "ParserException", "SyntaxError", "ProgrammingError"):
        hint = "the SQL is not valid for this database; check the --query"
    else:
        hint = "check the database, the URL and the query"
    return CustsegError(scrub(f"{where}: {doing}{target} failed: {message} ({hint}).", parsed.url))


# ---------------------------------------------------------------------------- reading


@dataclass
class DatabaseSource:
    """The order lines of a database: the lazy table and the tables they are read from."""

    db: Database
    lines: ir.Table
    label: str                        # 'table public.orders' or 'query' (for progress lines)
    tables: set[tuple[str, str]]      # (schema, table), lower-case: what --write-table must not name


def _table_parts(db: Database, name: str, option: str) -> tuple[str | None, str]:
    """(schema or None, table) of 'table', 'schema.table' or '"Quoted Schema"."Table"'."""
    try:
        table = sg.to_table(name.strip(), dialect=db.url.dialect)
    except Exception:
        table = None
    if table is None or not table.name or table.args.get("catalog") is not None:
        raise CustsegError(f"{option} {name!r}: write a table as table or schema.table.")
    return (table.db or None), table.name


def table_names(db: Database, schema: str | None) -> list[str]:
    """The tables and views in `schema` (the default schema when None)."""
    try:
        if db.name == "duckdb":
            # Ibis 12's list_tables calls fetch_arrow_table, which DuckDB 2 no longer has.
            rows = db.backend.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [schema or db.default_schema()]).fetchall()
            return [row[0] for row in rows]
        return list(db.backend.list_tables(database=schema) if schema else db.backend.list_tables())
    except Exception as exc:
        raise translate_error(exc, db.url, "listing the tables of", schema or "the database") from None


def _resolve_table(db: Database, schema: str | None, table: str) -> str:
    """The table's stored name: as written, or the one table whose name differs only in case."""
    names = table_names(db, schema)
    if table in names:
        return table
    folded = [n for n in names if n.lower() == table.lower()]
    if len(folded) == 1:
        return folded[0]
    shown = ", ".join(sorted(names)[:10]) + (" ..." if len(names) > 10 else "")
    qualified = f"{schema}.{table}" if schema else table
    raise CustsegError(scrub(
        f"{db.url.masked}: no table {qualified!r}" + (f" (tables there: {shown})" if names else " (no tables there)")
        + "; check --table (schema.table) and the database in the URL.", db.url.url))


_WRITES = (sge.Insert, sge.Update, sge.Delete, sge.Merge, sge.Drop, sge.Create, sge.Alter, sge.Command,
           sge.TruncateTable)


def check_query(query: str, dialect: str) -> sge.Expression:
    """The parsed --query: exactly one statement, a query (SELECT / WITH / UNION), writing nothing."""
    try:
        statements = [s for s in sg.parse(query, read=dialect) if s is not None]
    except sg.errors.ParseError as exc:
        raise CustsegError(f"--query cannot be read as {dialect} SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise CustsegError(f"--query holds {len(statements)} statements; give exactly one SELECT.")
    statement = statements[0]
    if not isinstance(statement, sge.Query) or any(True for _ in statement.find_all(*_WRITES)):
        raise CustsegError("--query must be one SELECT (or WITH ... SELECT) that reads the order lines; "
                           "it may not change the database.")
    return statement


def read_lines(db: Database, table: str | None = None, query: str | None = None) -> DatabaseSource:
    """The order lines of `table` ([schema.]table) or of `query` (one SELECT), as a lazy Ibis table."""
    if (table is None) == (query is None):
        raise CustsegError("a database needs --table [schema.]table or --query \"SELECT ...\" (one of them).")
    default = db.default_schema().lower()
    if table is not None:
        schema, name = _table_parts(db, table, "--table")
        name = _resolve_table(db, schema, name)
        try:
            lines = db.backend.table(name, database=schema) if schema else db.backend.table(name)
        except Exception as exc:
            raise translate_error(exc, db.url, "reading the table", table) from None
        label = f"table {schema + '.' if schema else ''}{name}"
        return DatabaseSource(db, lines, label, {((schema or default).lower(), name.lower())})
    statement = check_query(query, db.url.dialect)
    read = {((t.db or default).lower(), t.name.lower()) for t in statement.find_all(sge.Table) if t.name}
    try:
        lines = db.backend.sql(query, schema=_duckdb_query_schema(db, query)) if db.name == "duckdb" else \
            db.backend.sql(query)
    except Exception as exc:
        raise translate_error(exc, db.url, "running the --query") from None
    return DatabaseSource(db, lines, "query", read)


def _duckdb_query_schema(db: Database, query: str):
    """The columns of a DuckDB query, from a relation that is not run (Ibis 12 asks DuckDB through
    fetch_arrow_table, which DuckDB 2 no longer has)."""
    from ibis.backends.sql.datatypes import DuckDBType

    relation = db.backend.con.sql(query)
    return ibis.schema({n: DuckDBType.from_string(str(t)) for n, t in zip(relation.columns, relation.types)})


def to_arrow(db: Database, expr: ir.Expr, doing: str = "reading the order lines"):
    """Run `expr` on the database; its errors (a failing query, a lost connection) as one line."""
    try:
        return db.backend.to_pyarrow(expr)
    except Exception as exc:
        raise translate_error(exc, db.url, doing) from None


# ---------------------------------------------------------------------------- guarded casts

# What every supported cast reads as a number: decimal notation, an optional sign and exponent,
# surrounding whitespace. A two-digit exponent and at most MAX_NUMBER_LENGTH characters keep the
# value between 1e-180 and 1e180, so PostgreSQL's cast never fails with "out of range" (a length
# test, not bounded repetitions in the pattern: PostgreSQL matches the unbounded pattern 5 times
# faster); 'inf', 'nan', '0x1F', '1,5' and '(3)' are not numbers here (DuckDB's TRY_CAST reads the
# first two: the cleaning rules drop them either way).
NUMBER_PATTERN = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,2})?\s*$"
MAX_NUMBER_LENGTH = 80
INTEGER_PATTERN = r"^\s*[-+]?[0-9]{1,18}\s*$"
# DuckDB's TRY_CAST (what a CSV file's text goes through) also reads single underscores between
# digits ('1_000' is 1000): so does the guard, by checking the text without them.
_DIGITS = r"[0-9]+(_[0-9]+)*"
UNDERSCORED_PATTERN = rf"^\s*[-+]?({_DIGITS}(\.({_DIGITS})?)?|\.{_DIGITS})([eE][-+]?{_DIGITS})?\s*$"
DATE_PATTERN = r"^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}\s*$"
# A number as the number parser leaves it (sources/number_formats.py parse): no spaces, no grouping.
CHECKED_NUMBER_PATTERN = r"^[-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]{1,2})?$"


def guarded_cast(value: ir.Value, to: str) -> ir.Value:
    """`value` cast to "float64", "int64" or "date"; NULL (never an error, never 0) where it is not one.

    Text is matched against the pattern of what the cast reads before it is cast; a date is
    'YYYY-M-D' with a valid day of its month (leap years included), assembled with ibis.date so
    no database parses (or normalises: SQLite reads '2024-02-31' as 2 March) a text date.
    Non-text values are cast directly (a number column holds numbers already).
    """
    if to not in ("float64", "int64", "date"):
        raise ValueError(f"guarded_cast: unsupported type {to!r}")
    if not value.type().is_string():
        return value.cast(to)
    text = value.strip()
    if to == "float64":
        plain = text.replace("_", "")
        number = ibis.ifelse(value.contains("_"), value.re_search(UNDERSCORED_PATTERN) & plain.re_search(NUMBER_PATTERN),
                             value.re_search(NUMBER_PATTERN))
        # (nested: the length is tested before anything is cast, on every database)
        return ibis.cases((plain.length() <= MAX_NUMBER_LENGTH,
                           ibis.cases((number, plain.cast("float64")), else_=ibis.null("float64"))),
                          else_=ibis.null("float64"))
    if to == "int64":
        return ibis.cases((value.re_search(INTEGER_PATTERN), text.cast("int64")), else_=ibis.null("int64"))
    year = text.re_extract(r"^([0-9]{4})-", 1).cast("int64")
    month = text.re_extract(r"^[0-9]{4}-([0-9]{1,2})-", 1).cast("int64")
    day = text.re_extract(r"-([0-9]{1,2})$", 1).cast("int64")
    # Nested, so no database evaluates the parts of a text that is not a date at all.
    return ibis.cases((value.re_search(DATE_PATTERN), valid_date(year, month, day)), else_=ibis.null("date"))


def valid_date(year: ir.IntegerValue, month: ir.IntegerValue, day: ir.IntegerValue) -> ir.DateValue:
    """The date of year, month and day; NULL where there is no such day (leap years included)."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = ibis.cases((month == 2, ibis.ifelse(leap, 29, 28)), (month.isin([4, 6, 9, 11]), 30), else_=31)
    valid = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month)
    return ibis.cases((valid, ibis.date(year, month, day)), else_=ibis.null("date"))


def date_from_parts(year: ir.StringValue, month: ir.StringValue, day: ir.StringValue) -> ir.DateValue:
    """The date of a 4-digit year, a 1-2 digit month and day given as text (NULL where they are not
    digits or not a day): what guarded_cast does to 'Y-M-D', without joining and re-parsing the text
    (PostgreSQL evaluates each of guarded_cast's regular expressions once per use: a text date then
    costs a dozen; here the parts are checked by three)."""
    digits = (year.re_search(r"^[0-9]{4}$") & month.re_search(r"^[0-9]{1,2}$") & day.re_search(r"^[0-9]{1,2}$"))
    parts = [part.cast("int64") for part in (year, month, day)]
    return ibis.cases((digits, valid_date(*parts)), else_=ibis.null("date"))


def try_cast_for(backend_name: str):
    """The cast that parses text on this backend without failing: DuckDB's own TRY_CAST, else the guard."""
    if backend_name == "duckdb":
        return lambda value, to: value.try_cast(to)
    return guarded_cast


# ---------------------------------------------------------------------------- writing back


def _ident(name: str, dialect: str) -> str:
    return sg.to_identifier(name, quoted=True).sql(dialect)


def _qualified(schema: str | None, name: str, dialect: str) -> str:
    return sg.table(name, db=schema, quoted=True).sql(dialect)


def write_table(db: Database, name: str, table, if_exists: str = "fail",
                source: DatabaseSource | None = None) -> str:
    """Write the Arrow `table` (or an Ibis expression on this database: computed there) as `name`
    ([schema.]table); return the name written (schema.table).

    The rows go into a new table with a unique name, which is renamed to `name` in one
    transaction (dropping the old `name` first with if_exists="replace"): readers see the old
    table or the complete new one. Nothing is left behind when a step fails. A `name` that is one
    of the tables the lines were read from is refused.
    """
    schema, target = check_write_target(db, name, if_exists, source)
    if not isinstance(table, (pa.Table, ir.Table)):
        table = pa.table(table)
    if isinstance(table, pa.Table):
        table = plain_columns(table)
    temp = TEMP_PREFIX + secrets.token_hex(8)
    shown = f"{schema}.{target}" if schema else target
    try:
        db.backend.create_table(temp, obj=table, database=schema)
    except Exception as exc:
        _drop_quietly(db, schema, temp)
        raise translate_error(exc, db.url, "creating the table", f"for {shown}") from None
    try:
        _swap_into_place(db, schema, temp, target, replace=if_exists == "replace")
    except Exception as exc:
        _drop_quietly(db, schema, temp)
        raise translate_error(exc, db.url, "writing the table", shown) from None
    return shown


def plain_columns(table):
    """An Arrow table with dictionary columns (segment_name) decoded to their values: every database
    stores them as plain text."""
    for index, column in enumerate(table.schema):
        if pa.types.is_dictionary(column.type):
            table = table.set_column(index, column.name, table.column(index).cast(column.type.value_type))
    return table


def _exists(db: Database, schema: str | None, name: str) -> bool:
    return name.lower() in {n.lower() for n in table_names(db, schema)}


def _drop_quietly(db: Database, schema: str | None, name: str) -> None:
    statement = f"DROP TABLE IF EXISTS {_qualified(schema, name, db.url.dialect)}"
    with contextlib.suppress(Exception):
        _transaction(db, [statement])


def _swap_into_place(db: Database, schema: str | None, temp: str, target: str, replace: bool) -> None:
    """Rename `temp` to `target` (after dropping an old `target`) in one transaction."""
    dialect = db.url.dialect
    old, new = _qualified(schema, target, dialect), _qualified(schema, temp, dialect)
    if db.name == "mysql":
        # MySQL commits around DDL; RENAME TABLE of several pairs is atomic on its own.
        if replace and _exists(db, schema, target):
            parked = _qualified(schema, TEMP_PREFIX + secrets.token_hex(8), dialect)
            _transaction(db, [f"RENAME TABLE {old} TO {parked}, {new} TO {old}", f"DROP TABLE {parked}"])
        else:
            _transaction(db, [f"RENAME TABLE {new} TO {old}"])
        return
    # PostgreSQL, SQLite and DuckDB: DDL is transactional. RENAME TO takes a bare name (same schema).
    statements = [f"DROP TABLE IF EXISTS {old}"] if replace else []
    statements.append(f"ALTER TABLE {new} RENAME TO {_ident(target, dialect)}")
    _transaction(db, statements)


def _transaction(db: Database, statements: list[str]) -> None:
    """Run `statements` in one transaction on the backend's own connection (all or nothing)."""
    raw = db.backend.con
    if db.name == "postgres":
        with raw.cursor() as cursor, raw.transaction():
            for statement in statements:
                cursor.execute(statement)
        return
    if db.name == "duckdb":
        raw.begin()
        try:
            for statement in statements:
                raw.execute(statement)
        except BaseException:
            raw.rollback()
            raise
        raw.commit()
        return
    if db.name == "sqlite":
        if raw.in_transaction:
            raw.commit()
        cursor = raw.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            for statement in statements:
                cursor.execute(statement)
            raw.commit()
        except BaseException:
            if raw.in_transaction:
                raw.rollback()
            raise
        finally:
            cursor.close()
        return
    cursor = raw.cursor()  # MySQL: each statement is atomic on its own
    try:
        for statement in statements:
            cursor.execute(statement)
        raw.commit()
    finally:
        cursor.close()



def check_write_target(db: Database, name: str, if_exists: str = "fail",
                       source: DatabaseSource | None = None) -> tuple[str | None, str]:
    """(schema, table) of a --write-table, refused when it is a table the lines are read from, when
    it exists (with if_exists="fail") or, on PostgreSQL, when the user may not create tables in its
    schema: checked before any work, so a long run does not end in an error."""
    if if_exists not in ("fail", "replace"):
        raise CustsegError(f"--if-exists {if_exists!r}: use fail or replace.")
    if db.name not in WRITABLE:
        raise CustsegError(f"{db.url.masked}: writing a table back is supported on PostgreSQL, MySQL, SQLite and "
                           f"DuckDB, not {db.name}; write the segments to a file instead.")
    schema, target = _table_parts(db, name, "--write-table")
    schema = schema or (db.default_schema() or None)
    if source is not None and ((schema or "").lower(), target.lower()) in source.tables:
        raise CustsegError(f"--write-table {name!r} is a table the order lines are read from; "
                           "write the segments to another table (the source is never modified).")
    if if_exists == "fail" and _exists(db, schema, target):
        raise CustsegError(scrub(f"{db.url.masked}: table {schema + '.' if schema else ''}{target} already "
                                 "exists; choose another --write-table or pass --if-exists replace.", db.url.url))
    if db.name == "postgres":
        _check_create_privilege(db, schema or "public")
    return schema, target


def _check_create_privilege(db: Database, schema: str) -> None:
    try:
        with db.backend.con.cursor() as cursor:
            cursor.execute("SELECT has_schema_privilege(current_user, n.oid, 'CREATE') FROM pg_namespace n "
                           "WHERE n.nspname = %s", (schema,))
            row = cursor.fetchone()
        db.backend.con.commit()
    except Exception as exc:
        raise translate_error(exc, db.url, "checking the privileges on schema", schema) from None
    if row is None:
        raise CustsegError(scrub(f"{db.url.masked}: no such schema {schema!r} for --write-table; create it first "
                                 "or name an existing schema.", db.url.url))
    if not row[0]:
        raise CustsegError(scrub(f"{db.url.masked}: the database user lacks the privilege to create tables in schema "
                                 f"{schema!r} (CREATE); ask for it (GRANT CREATE ON SCHEMA ...) or use another "
                                 "user or schema.", db.url.url))


# ---------------------------------------------------------------------------- the engine

DRIVER_MODULES = ("psycopg", "sqlite3", "duckdb", "_duckdb", "MySQLdb", "pymysql", "ibis", "sqlglot", "pyarrow")


def connect_sql(options) -> "SqlEngine":
    """The engine of a database input: options.database is a URL, or the Ibis backend of a table
    expression the user built."""
    database = options.database
    if isinstance(database, str):
        return SqlEngine(connect(database), owned=True)
    name = getattr(database, "name", "ibis")
    if name == "sqlite":
        database.compiler = sqlite_compiler()  # (isnan for the cleaning rules; nothing else changes)
    url = DatabaseUrl(url=f"{name}://", scheme=name, backend=name, dialect=name)
    return SqlEngine(Database(url=url, backend=database))


def tables_of(expr: ir.Table, default: str) -> set[tuple[str, str]]:
    """(schema, table), lower-case, of the database tables an Ibis expression reads."""
    import ibis.expr.operations as ops  # Ibis' operation types, only to find the tables read

    found = set()
    for op in expr.op().find(ops.DatabaseTable):
        namespace = getattr(op, "namespace", None)
        schema = getattr(namespace, "database", None) if namespace is not None else None
        found.add(((schema or default).lower(), op.name.lower()))
    return found


class SqlEngine(Engine):
    """A SQL database through Ibis: the order lines are read, cleaned and turned into customer
    features by the database; only the customer table comes back (its size is reported)."""

    reads_database = True
    caches_lines = True  # the parsed lines go into a temporary table: parsed once, and the feature
    # queries stay shallow (SQLite's parser overflows on the parsing inlined into the aggregations)

    def __init__(self, db: Database, owned: bool = False):
        super().__init__(db.backend)
        self.db = db
        self.owned = owned  # opened from a URL by custseg (closed with the run), not the user's backend
        self.name = db.name
        self.cast = try_cast_for(db.name)
        self.cheap_try_cast = db.name == "duckdb"
        self.source: DatabaseSource | None = None
        self.received_bytes = 0
        self.received_rows = 0

    def __repr__(self) -> str:
        return f"SqlEngine({self.db.url.masked!r})"

    def close(self) -> None:
        """Disconnect from a database custseg opened from its URL (a backend the user gave stays open)."""
        if self.owned:
            self.db.close()

    # ------------------------------------------------------------------ reading

    def prepare(self, data, table: str | None, query: str | None, write_table: str | None = None,
                if_exists: str = "fail") -> None:
        """Open --table / --query (or take the user's Ibis table) and check --write-table, before any work."""
        if isinstance(data, ir.Table):
            self.source = DatabaseSource(self.db, data, "an Ibis table", tables_of(data, self.db.default_schema()))
        else:
            self.source = read_lines(self.db, table=table, query=query)
        if write_table is not None:
            check_write_target(self.db, write_table, if_exists, self.source)

    def database_lines(self) -> tuple[ir.Table, str]:
        """The lines' lazy table and where they come from (masked URL and table or query)."""
        if self.source is None:
            raise CustsegError("a database input needs --table [schema.]table or --query \"SELECT ...\".")
        return self.source.lines, self.db.describe(self.source.label)

    def keep(self, expr: ir.Table, prefix: str) -> tuple[str, ir.Table]:
        if self.name == "sqlite":  # its decimals are floats, and Ibis cannot read their declared type back
            expr = expr.mutate(**{c: expr[c].cast("float64") for c, t in expr.schema().items() if t.is_decimal()})
        return super().keep(expr, prefix)

    def drop(self, name: str | None) -> None:
        if name:
            with contextlib.suppress(Exception):  # temporary: it goes with the connection anyway
                self.db.backend.drop_table(name, force=True)

    def table_of(self, data) -> ir.Table:
        if isinstance(data, ir.Table):
            return data
        raise CustsegError("a database engine reads its own tables, not an in-memory DataFrame.")

    def try_cast(self, value: ir.Value, to: str) -> ir.Value:
        return self.cast(value, to)

    def cast_number_text(self, value: ir.StringValue) -> ir.FloatingValue:
        if self.cheap_try_cast:
            return super().cast_number_text(value)
        # The text has the shape of a number already: only what the cast cannot take is left to
        # refuse (a sign or point without digits, an exponent past two digits, a very long text).
        valid = (value.length() <= MAX_NUMBER_LENGTH) & value.re_search(CHECKED_NUMBER_PATTERN)
        return ibis.cases((valid, value.cast("float64")), else_=ibis.null("float64"))

    def date_from_parts(self, year: ir.StringValue, month: ir.StringValue, day: ir.StringValue) -> ir.DateValue:
        if self.name == "duckdb":  # its TRY_CAST is safe and quick
            return (year + "-" + month.lpad(2, "0") + "-" + day.lpad(2, "0")).try_cast("date")
        return date_from_parts(year, month, day)

    def execute(self, expr: ir.Expr):
        return self.db.backend.execute(expr)

    @contextlib.contextmanager
    def translating(self):
        try:
            yield
        except CustsegError as exc:  # (errors made here are masked already; scrub once more)
            raise CustsegError(scrub(str(exc), self.db.url.url)) from None
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in DRIVER_MODULES:
                raise
            raise translate_error(exc, self.db.url, "the query on the order lines") from None

    # ------------------------------------------------------------------ results

    def fetch_customers(self, customers: ir.Table, finish) -> "pa.Table":
        """The customer table from the database, put in `finish`'s order here (by DuckDB in memory,
        the same expression as for files): a server's collation would order text ids its own way."""
        table = to_arrow(self.db, customers, "computing the customer features")
        self.received_rows += table.num_rows
        self.received_bytes += table.nbytes
        if table.num_rows == 0:
            return table
        local = ibis.duckdb.connect()
        try:
            sorted_table = local.to_pyarrow(finish(ibis.memtable(table)))
        finally:
            local.disconnect()
        return pa.Table.from_batches(sorted_table.to_batches(), schema=sorted_table.schema)

    def transfer_note(self) -> str | None:
        return (f"{self.received_bytes:,} bytes ({self.received_rows:,} customer rows) received from "
                f"{self.db.url.masked}")

    def mask(self, text: str) -> str:
        return scrub(text, self.db.url.url)

    # ------------------------------------------------------------------ writing back

    def write_segments(self, table, name: str, if_exists: str = "fail") -> str:
        """Write an Arrow table or an Ibis expression on this database as `name` (see write_table)."""
        return write_table(self.db, name, table, if_exists=if_exists, source=self.source)
