"""Engine connections: DuckDB (embedded, default) and Spark (cluster).

Everything up to the customer features is an Ibis expression; an engine is the
Ibis backend that runs it. DuckDB gets an explicit memory limit and a spill
directory so that large inputs spill to disk instead of being killed.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import CustsegError

ENGINES = ("duckdb", "spark")
# Under the Spark engine, a customer table up to this many rows is collected and clustered
# with scikit-learn; a larger one stays in Spark and is clustered with MLlib.
SPARK_LOCAL_LIMIT = 2_000_000
SPARK_INSTALL_HINT = "pip install 'custseg[spark]'"


def total_memory_bytes() -> int:
    """Physical memory of this machine (or the cgroup limit, when lower)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                value = fh.read().strip()
            if value.isdigit():
                total = min(total, int(value))
        except OSError:
            pass
    return total


def default_memory_limit() -> str:
    """A tenth of the machine's memory, at least 1 GB (2.4 GB on a 24 GB machine).

    DuckDB spills to disk beyond it. What the engine hands over (the customer table)
    lives beside it in Python, with the clustering matrix: with tens of millions of
    customers those take several GB, so the engine gets a modest share by default.
    """
    return f"{max(1024, total_memory_bytes() // 10 // 2**20)}MB"


_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.I)


def parse_memory_limit(text: str) -> str:
    """Validate a memory size such as '4GB' or '512MiB' and return it in DuckDB's form."""
    match = _MEMORY_RE.match(str(text))
    if not match:
        raise CustsegError(
            f"--memory-limit {text!r} is not a size; give a number with a unit, e.g. 4GB or 512MB."
        )
    number, unit = match.groups()
    return f"{number}{(unit or 'B').upper()}"


@dataclass
class EngineOptions:
    """How to run the lazy part of the flow."""

    engine: str = "duckdb"
    memory_limit: str | None = None
    temp_dir: str | None = None
    threads: int | None = None
    spark_master: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)
    spark_session: Any = None
    spark_local_limit: int = SPARK_LOCAL_LIMIT

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise CustsegError(f"--engine {self.engine!r} is unknown; use one of: {', '.join(ENGINES)}.")
        if self.spark_local_limit < 0:
            raise CustsegError(f"spark_local_limit must be 0 or more, not {self.spark_local_limit}.")
        if self.threads is not None and self.threads < 1:
            raise CustsegError(f"--threads must be at least 1, not {self.threads}.")


def connect(options: EngineOptions):
    """An Ibis backend for the chosen engine."""
    if options.engine == "spark":
        return connect_spark(options)
    return connect_duckdb(options)


MEMORY_PER_THREAD = 48 << 20  # below this per thread, DuckDB's buffers alone exhaust the limit


def threads_for_memory(memory_limit: str) -> int | None:
    """Fewer threads than cores when the memory limit is too small to give each one its buffers
    (so a tiny --memory-limit spills instead of failing); None: no cap needed."""
    match = _MEMORY_RE.match(memory_limit)
    if not match:
        return None
    units = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
             "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
    limit = float(match.group(1)) * units[(match.group(2) or "B").upper()]
    cores = os.cpu_count() or 1
    cap = max(1, int(limit // MEMORY_PER_THREAD))
    return cap if cap < cores else None


def connect_duckdb(options: EngineOptions):
    import duckdb
    import ibis

    config: dict[str, Any] = {
        "memory_limit": parse_memory_limit(options.memory_limit) if options.memory_limit else default_memory_limit(),
        # Insertion order is not needed anywhere: every output is sorted explicitly.
        "preserve_insertion_order": False,
    }
    if options.threads:
        config["threads"] = int(options.threads)
    else:
        capped = threads_for_memory(config["memory_limit"])
        if capped is not None:
            config["threads"] = capped
    if options.temp_dir:
        os.makedirs(options.temp_dir, exist_ok=True)
        config["temp_directory"] = options.temp_dir
    else:
        # DuckDB's default spill directory is ./.tmp: keep the current directory untouched
        # (DuckDB creates this directory only when it spills, and removes it when done).
        import tempfile

        config["temp_directory"] = os.path.join(tempfile.gettempdir(), f"custseg-duckdb-{os.getpid()}")
    try:
        raw = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:  # bad memory limit, unwritable temp dir
        raise CustsegError(f"cannot start DuckDB: {str(exc).splitlines()[0]}") from exc
    from ..runtime.signals import register

    register(raw)  # Ctrl-C / SIGTERM interrupt a running query (signals.py)
    backend = ibis.duckdb.from_connection(raw)
    backend._custseg_memory_limit = config["memory_limit"]  # as given (DuckDB reports it rounded)
    return backend


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
    import shutil

    home = os.environ.get("JAVA_HOME")
    return bool((home and os.path.exists(os.path.join(home, "bin", "java"))) or shutil.which("java"))


def import_pyspark():
    """The pyspark.sql module, or a CustsegError that names the extra to install."""
    try:
        import pyspark.sql
    except ImportError as exc:
        raise CustsegError(f"the Spark engine needs PySpark, which is not installed: {SPARK_INSTALL_HINT} "
                           "(and Java 17 or 21), or use --engine duckdb.") from exc
    return pyspark.sql


def connect_spark(options: EngineOptions):
    import ibis

    session = spark_session(options)
    try:
        return ibis.pyspark.connect(session)
    except ImportError as exc:  # Ibis' PySpark backend has its own requirements
        raise CustsegError(f"the Spark engine needs Ibis' PySpark backend: {SPARK_INSTALL_HINT}") from exc


def is_spark_dataframe(data) -> bool:
    return type(data).__module__.startswith("pyspark.sql")


def spark_frame(backend, expr):
    """The Spark DataFrame that computes an Ibis expression on the PySpark backend."""
    backend._run_pre_execute_hooks(expr)  # registers memtables (e.g. .xlsx data) as Spark views
    return backend.raw_sql(backend.compile(expr))


def spark_table(backend, frame, prefix: str = "custseg"):
    """An Ibis table over a Spark DataFrame (through a temporary view)."""
    import ibis.util

    name = ibis.util.gen_name(prefix)
    frame.createOrReplaceTempView(name)
    return backend.table(name)


def spark_to_arrow(frame, schema=None):
    """Collect a Spark DataFrame as Arrow (with the Ibis schema's types when given)."""
    table = frame.toArrow() if hasattr(frame, "toArrow") else __import__("pyarrow").Table.from_pandas(
        frame.toPandas(), preserve_index=False)
    return table.cast(schema.to_pyarrow()) if schema is not None else table


_SIZE_RE = re.compile(r"^\s*([\d.]+)\s*([KMGT]?)(i?)B\s*$", re.I)


def _setting_bytes(text: str) -> int | None:
    match = _SIZE_RE.match(str(text))
    if not match:
        return None
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** "BKMGT".index(unit.upper() or "B"))


def memory_limit_bytes(backend) -> int | None:
    """DuckDB's memory limit in bytes, as set by connect (None for other engines)."""
    con = duckdb_connection(backend)
    if con is None:
        return None
    setting = getattr(backend, "_custseg_memory_limit", None) or \
        con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    return _setting_bytes(setting)


@contextlib.contextmanager
def memory_beside(backend, held_bytes: int, floor: int = 1 << 30):
    """Within the block, DuckDB's memory limit is lowered by `held_bytes` (at least `floor`).

    For steps that query DuckDB while Python holds a large table (the customer table
    during profiles and best sellers): the two together stay near the limit instead of
    adding up; DuckDB spills a little more.
    """
    con = duckdb_connection(backend)
    if con is None or held_bytes < (256 << 20):
        yield
        return
    setting = getattr(backend, "_custseg_memory_limit", None) or \
        con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    limit = _setting_bytes(setting)
    if limit is None or limit <= floor:
        yield
        return
    con.execute(f"SET memory_limit = '{max(floor, limit - held_bytes) // 2**20}MB'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{setting}'")


def duckdb_connection(backend):
    """The raw duckdb connection behind an Ibis DuckDB backend (None for other engines)."""
    return getattr(backend, "con", None) if backend.name == "duckdb" else None
