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

from .errors import CustsegError

ENGINES = ("duckdb", "spark")


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
    """An eighth of the machine's memory, at least 1 GB (3 GB on a 24 GB machine).

    DuckDB spills to disk beyond it. What the engine hands over (the customer table)
    lives beside it in Python, with the clustering matrix: with tens of millions of
    customers those take several GB, so the engine gets a modest share by default.
    """
    return f"{max(1024, total_memory_bytes() // 8 // 2**20)}MB"


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

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise CustsegError(f"--engine {self.engine!r} is unknown; use one of: {', '.join(ENGINES)}.")
        if self.threads is not None and self.threads < 1:
            raise CustsegError(f"--threads must be at least 1, not {self.threads}.")


def connect(options: EngineOptions):
    """An Ibis backend for the chosen engine."""
    if options.engine == "spark":
        return connect_spark(options)
    return connect_duckdb(options)


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
    if options.temp_dir:
        os.makedirs(options.temp_dir, exist_ok=True)
        config["temp_directory"] = options.temp_dir
    try:
        raw = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:  # bad memory limit, unwritable temp dir
        raise CustsegError(f"cannot start DuckDB: {str(exc).splitlines()[0]}") from exc
    backend = ibis.duckdb.from_connection(raw)
    backend._custseg_memory_limit = config["memory_limit"]  # as given (DuckDB reports it rounded)
    return backend


def spark_session(options: EngineOptions):
    """The active SparkSession, or a new one built from the options."""
    if options.spark_session is not None:
        return options.spark_session
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise CustsegError(
            "the Spark engine needs PySpark: install it with  pip install 'custseg[spark]'"
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None and not options.spark_master and not options.spark_conf:
        return active
    builder = SparkSession.builder.appName("custseg").master(options.spark_master or "local[*]")
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    for key, value in options.spark_conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def connect_spark(options: EngineOptions):
    import ibis

    session = spark_session(options)
    return ibis.pyspark.connect(session)


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
