"""Engines: what runs the lazy part of the flow, behind one interface (engines/base.py):
DuckDB embedded (engines/duckdb.py, the default) and Spark (engines/spark.py)."""

from ..options import EngineOptions
from .base import Engine
from .duckdb import connect_duckdb, translate_read_errors

__all__ = ["Engine", "connect", "engine_of", "translate_read_errors"]


def connect(options: EngineOptions) -> Engine:
    """The engine the options name, connected."""
    if options.engine == "spark":
        from .spark import connect_spark  # PySpark is optional (custseg[spark])

        return connect_spark(options)
    return connect_duckdb(options)


def engine_of(data) -> dict:
    """Engine options for an in-memory table that belongs to an engine: a Spark DataFrame is
    segmented by Spark, in its own session ({} for pandas and Arrow tables)."""
    if type(data).__module__.startswith("pyspark.sql"):
        return {"engine": "spark", "spark_session": data.sparkSession}
    return {}
