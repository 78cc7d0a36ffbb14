"""Engines: what runs the lazy part of the flow, behind one interface (engines/base.py):
DuckDB embedded (engines/duckdb.py, the default), Spark (engines/spark.py) and SQL databases
(engines/sql.py: PostgreSQL, MySQL, SQLite, DuckDB files, any Ibis backend)."""

import ibis.expr.types as ir

from ..errors import CustsegError
from ..options import EngineOptions
from .base import Engine
from .duckdb import connect_duckdb, translate_read_errors
from .sql import connect_sql, is_database_url, mask_url

__all__ = ["Engine", "connect", "database_url_of", "engine_of", "translate_read_errors"]


def connect(options: EngineOptions) -> Engine:
    """The engine the options name, connected."""
    if options.database is not None:
        return connect_sql(options)
    if options.engine == "spark":
        from .spark import connect_spark  # PySpark is optional (custseg[spark])

        return connect_spark(options)
    return connect_duckdb(options)


def engine_of(data) -> dict:
    """Engine options for an input that belongs to an engine: a Spark DataFrame is segmented by
    Spark, in its own session; a database URL (or a list of just one) and an Ibis table expression
    the user built by their database ({} for files, pandas and Arrow tables)."""
    if type(data).__module__.startswith("pyspark.sql"):
        return {"engine": "spark", "spark_session": data.sparkSession}
    url = database_url_of(data)
    if url is not None:
        return {"database": url}
    if isinstance(data, ir.Table):
        try:
            backend = data._find_backend(use_default=True)
        except Exception:  # noqa: BLE001 - an expression over several backends: let Ibis say so later
            return {}
        return {"database": backend}
    return {}


def database_url_of(data) -> str | None:
    """The database URL `data` names (a URL, or a list of just that URL), else None."""
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    urls = [str(item) for item in items if is_database_url(item)]
    if not urls:
        return None
    if len(items) != 1:
        raise CustsegError(f"{mask_url(urls[0])}: a database is read on its own; give it as the only input.")
    return urls[0]
