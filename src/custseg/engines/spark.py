"""The Spark engine (a cluster, or local[*]): Ibis' PySpark backend and the SparkSession behind it.

The only module besides engines/duckdb.py that knows an engine's name or Ibis' and Spark's
internals. PySpark is optional (custseg[spark]): it is imported inside functions.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
from typing import Any, Callable

import ibis
import ibis.expr.types as ir
import ibis.util
import pyarrow as pa

from ..errors import CustsegError, first_line
from ..options import EngineOptions
from .base import Engine

SPARK_INSTALL_HINT = "pip install 'custseg[spark]'"


def spark_session(options: EngineOptions):
    """The active SparkSession, or a new one built from the options."""
    if options.spark_session is not None:
        return options.spark_session
    SparkSession = import_pyspark().SparkSession
    active = SparkSession.getActiveSession()
    if active is not None and not options.spark_master and not options.spark_conf:
        return active
    builder = SparkSession.builder.appName("custseg").master(options.spark_master or "local[*]")
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    # custseg shows its own progress; Arrow makes collecting the customer table fast.
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    if (options.spark_master or "local").startswith("local"):
        # local Python workers (the lifecycle scoring's mapInArrow) run this Python, which has custseg's
        # packages (on a cluster the workers need custseg installed: docs/lifecycle.md)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in options.spark_conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
        if active is None and "spark.log.level" not in options.spark_conf:
            session.sparkContext.setLogLevel("ERROR")  # our own session: custseg reports progress itself
        return session
    except Exception as exc:  # no Java, a wrong master URL, a bad setting
        text = str(exc).strip().splitlines()
        first = text[0] if text else type(exc).__name__
        if not java_available():
            raise CustsegError("Spark cannot start: it needs Java 17 or 21, and none was found; install a JDK "
                               "and set JAVA_HOME, or use --engine duckdb.") from exc
        if "JAVA_GATEWAY_EXITED" in first:
            first = "the Spark JVM exited (its message is above)"
        raise CustsegError(f"Spark cannot start with master {options.spark_master or 'local[*]'!r}: {first}; "
                           "check --spark-master and --spark-conf.") from exc


def java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool((home and os.path.exists(os.path.join(home, "bin", "java"))) or shutil.which("java"))


def import_pyspark():
    """The pyspark.sql module, or a CustsegError that names the extra to install."""
    try:
        import pyspark.sql  # optional dependency (custseg[spark])
    except ImportError as exc:
        raise CustsegError(f"the Spark engine needs PySpark, which is not installed: {SPARK_INSTALL_HINT} "
                           "(and Java 17 or 21), or use --engine duckdb.") from exc
    return pyspark.sql


def connect_spark(options: EngineOptions) -> "SparkEngine":
    session = spark_session(options)
    try:
        return SparkEngine(ibis.pyspark.connect(session), session)
    except ImportError as exc:  # Ibis' PySpark backend has its own requirements
        raise CustsegError(f"the Spark engine needs Ibis' PySpark backend: {SPARK_INSTALL_HINT}") from exc


def is_spark_dataframe(data) -> bool:
    return type(data).__module__.startswith("pyspark.sql")


def spark_to_arrow(frame, schema=None):
    """Collect a Spark DataFrame as Arrow (with the Ibis schema's types when given)."""
    table = frame.toArrow() if hasattr(frame, "toArrow") else pa.Table.from_pandas(
        frame.toPandas(), preserve_index=False)
    return table.cast(schema.to_pyarrow()) if schema is not None else table


class SparkEngine(Engine):
    """Spark through Ibis' PySpark backend."""

    name = "spark"
    may_keep_customers = True
    reads_urls = True

    def __init__(self, backend, session):
        super().__init__(backend)
        self.session = session

    def frame(self, expr: ir.Table):
        """The Spark DataFrame that computes an Ibis expression."""
        self.ibis._run_pre_execute_hooks(expr)  # registers memtables (e.g. .xlsx data) as Spark views
        return self.ibis.raw_sql(self.ibis.compile(expr))

    def table(self, frame, prefix: str = "custseg") -> ir.Table:
        """An Ibis table over a Spark DataFrame (through a temporary view)."""
        name = ibis.util.gen_name(prefix)
        frame.createOrReplaceTempView(name)
        return self.ibis.table(name)

    def table_of(self, data) -> ir.Table:
        if is_spark_dataframe(data):
            name = f"custseg_input_{id(data)}"
            data.createOrReplaceTempView(name)
            return self.ibis.table(name)
        return ibis.memtable(data)

    def read_csv(self, paths: list[str], dialect, typed=None) -> ir.Table:
        return self.read("csv", paths, sep=dialect.delimiter, header=True, inferSchema=False,
                         encoding=dialect.encoding, quote='"', escape='"', multiLine=False)

    def read_parquet(self, files: list[str]) -> ir.Table:
        return self.read("parquet", files)

    def read(self, kind: str, paths: list[str], **options) -> ir.Table:
        """Read with the SparkSession itself: it takes a list of paths and URLs as they are."""
        reader = self.session.read
        try:
            frame = reader.csv(list(paths), **options) if kind == "csv" else reader.parquet(*paths, **options)
        except Exception as exc:
            raise CustsegError(f"{paths[0]}: cannot be read as {kind.upper() if kind == 'csv' else 'Parquet'}: "
                               f"{first_line(exc)}") from exc
        return self.table(frame, f"custseg_{kind}")

    def sniff_remote_csv(self, path: str) -> tuple[str, str, tuple[str, ...]]:
        """(delimiter, encoding, header) of a CSV file Spark reads, from its first 50 lines (UTF-8)."""
        try:
            rows = self.session.read.text(path).limit(50).collect()
        except Exception as exc:
            raise CustsegError(f"{path}: Spark cannot read it: {first_line(exc)}") from exc
        text = "\n".join(row[0] for row in rows).lstrip("\ufeff")
        if not text.strip():
            raise CustsegError(f"{path}: the file is empty; export the order lines again.")
        lines = text.splitlines()
        try:
            delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
        except csv.Error:
            counts = {d: lines[0].count(d) for d in ",;\t|"}
            delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
        header = tuple(h.strip() for h in next(csv.reader(io.StringIO(lines[0]), delimiter=delimiter)))
        return delimiter, "utf-8", header

    def segments_frame(self, table: ir.Table, columns: list[str], names: list[str]) -> Any:
        """The table's columns and a segment_name column (from `names` by segment), as a Spark
        DataFrame (never collected)."""
        from pyspark.sql import functions as F  # optional dependency (custseg[spark])

        frame = self.frame(table.select(*columns, "segment"))
        label = F.element_at(F.array(*[F.lit(n) for n in names]), (F.col("segment") + 1).cast("int"))
        return frame.withColumn("segment_name", label)

    def score_batches(self, table: ir.Table, score: Callable[[pa.RecordBatch], pa.RecordBatch],
                      columns: list[str]) -> Any:
        """A Spark DataFrame: customer_id (text) and ``columns`` (doubles), computed by ``score`` on the
        table's Arrow record batches in the executors (mapInArrow; the table is never collected)."""
        frame = self.frame(table)
        schema = ", ".join(["customer_id string", *(f"`{c}` double" for c in columns)])
        return frame.mapInArrow(lambda batches: (score(batch) for batch in batches), schema)

    def with_columns_of(self, frame, scores) -> Any:
        """``frame`` (a customer DataFrame) with the columns of ``scores`` joined on customer_id."""
        return frame.join(scores, on="customer_id", how="left")
