"""Every option of a run, its default and its check, once (read by the CLI, the API, the estimator
and the Spark path)."""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .errors import CustsegError

SEED = 42                      # the default random seed, everywhere
SCALES = ("log", "log-standard", "standard", "none")
ENGINES = ("duckdb", "spark")
# Under the Spark engine, a customer table up to this many rows is collected and clustered
# with scikit-learn; a larger one stays in Spark and is clustered with MLlib.
SPARK_LOCAL_LIMIT = 2_000_000
K_MAX = 15
N_INIT = 10
MAX_ITER = 500
SWEEP_SAMPLE = 100_000
SILHOUETTE_SAMPLE = 10_000
TOP_PRODUCTS = 10
# The lifecycle models' horizon (expected_orders_12m ...) and the backtest's holdout: durations in
# days, weeks or months (a month is 365.25 / 12 days), as profiles/backtest.parse_duration reads them.
HORIZON = "12m"
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dwm])\s*$", re.I)


def check_duration(text: Any, option: str) -> None:
    """A duration such as 90d, 12w or 3m (positive), or one CustsegError naming the option."""
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise CustsegError(f"{option} {text!r} is not a duration: write a positive number of days, weeks or "
                           "months, e.g. 90d, 12w or 3m.")
IF_EXISTS = ("fail", "replace")  # --write-table onto an existing table: refuse (the default) or replace it


# An Excel sheet holds 1,048,576 rows, one of them the header (outputs/workbook.py).
EXCEL_MAX_CUSTOMERS = 1_048_575

# ---------------------------------------------------------------------------- sizes

# DuckDB's convention: KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024.
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.I)
_SIZE_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
               "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}


def size_bytes(text: str) -> int | None:
    """A memory size ('4GB', '512MiB', '2.3 GiB', '1000') in bytes; None when it is no size."""
    match = _SIZE_RE.match(str(text))
    if not match:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "B").upper()])


def parse_memory_limit(text: str) -> str:
    """Validate a memory size such as '4GB' or '512MiB' and return it in DuckDB's form."""
    match = _SIZE_RE.match(str(text))
    if not match:
        raise CustsegError(
            f"--memory-limit {text!r} is not a size; give a number with a unit, e.g. 4GB or 512MB."
        )
    number, unit = match.groups()
    return f"{number}{(unit or 'B').upper()}"


# ---------------------------------------------------------------------------- currency

# Currencies shown as their symbol; any other three-letter code is written after the amount
# (sources/currency.py formats money with this table).
CURRENCY_SYMBOLS = {
    "EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩", "RUB": "₽",
    "TRY": "₺", "ILS": "₪", "NGN": "₦", "PHP": "₱", "VND": "₫", "UAH": "₴", "THB": "฿", "BRL": "R$",
    "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "HKD": "HK$", "SGD": "S$", "MXN": "MX$",
}
KNOWN_SYMBOLS = set(CURRENCY_SYMBOLS.values()) | {"kr", "zł", "Fr.", "R"}


def normalize_currency(value: str | None, option: str = "--currency") -> str | None:
    """--currency: an ISO 4217 code ('eur' -> 'EUR') or a symbol ('€'); '' / None -> None (not given);
    anything else is refused."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) == 3 and text.isascii() and text.isalpha():
        return text.upper()
    if text in KNOWN_SYMBOLS or (len(text) <= 3 and not any(ch.isalnum() for ch in text)):
        return text
    raise CustsegError(f"{option} {value!r} is not a currency; give an ISO code such as EUR or a symbol such as €.")


# ---------------------------------------------------------------------------- naming

# Who gave the options: "cli" (messages name --k-max) or "python" (messages name k_max=...).
_NAMING: ContextVar[str] = ContextVar("custseg_naming", default="cli")
# CLI flags whose Python keyword has another name
_KEYWORDS = {"map": "mapping", "format": "segments_format"}


@contextlib.contextmanager
def python_naming():
    """Within it, error messages name keyword arguments (k=0), not command-line flags (--k 0)."""
    token = _NAMING.set("python")
    try:
        yield
    finally:
        _NAMING.reset(token)


def flag(option: str) -> str:
    """An option as the user gave it: '--k-max' on the command line, 'k_max' from Python."""
    if _NAMING.get() == "python":
        return _KEYWORDS.get(option, option.replace("-", "_"))
    return f"--{option}"


def refused(option: str, value: Any, requirement: str) -> CustsegError:
    """'--k must be at least 2, not 0' on the command line; 'k=0: k must be at least 2' from Python."""
    if _NAMING.get() == "python":
        name = flag(option)
        return CustsegError(f"{name}={value!r}: {name} must be {requirement}.")
    return CustsegError(f"--{option} must be {requirement}, not {value}.")


# ---------------------------------------------------------------------------- checks


def check_k(k: int | None) -> None:
    """A given number of segments: at least 2 (one segment is no segmentation), on every engine."""
    if k is not None and int(k) < 2:
        raise refused("k", k, "at least 2 (one segment puts every customer together)")


def check_workbook_rows(customers: int) -> None:
    """segments.xlsx (--format xlsx) holds one customer per row of one Excel sheet."""
    if customers > EXCEL_MAX_CUSTOMERS:
        raise CustsegError(
            f"{flag('format')} xlsx: {customers:,} customers do not fit an Excel sheet (at most {EXCEL_MAX_CUSTOMERS:,} "
            "rows besides the header); use --format parquet (or csv) for this many customers.")


def seed_of(random_state: Any) -> int:
    """An integer seed from a random_state (None: the default seed; a RandomState: one draw)."""
    import numpy as np  # (numpy: not needed to read the options)

    if random_state is None:
        return SEED
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return int(random_state)


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
    # The order lines are in a database: its URL (engines/sql.py), or the Ibis backend of a table
    # expression the user built. The database then runs the lazy part of the flow.
    database: Any = None

    def __post_init__(self) -> None:
        if self.database is not None and self.engine != "duckdb":
            raise CustsegError(f"--engine {self.engine} cannot read a database URL: the database itself computes "
                               "the customer features; drop --engine.")
        if self.engine not in ENGINES:
            raise refused("engine", self.engine, f"one of {', '.join(ENGINES)}")
        if self.spark_local_limit < 0:
            raise refused("spark-local-limit", self.spark_local_limit, "0 or more")
        if self.threads is not None and self.threads < 1:
            raise refused("threads", self.threads, "at least 1")


ENGINE_KEYS = ("engine", "memory_limit", "temp_dir", "threads", "spark_master", "spark_conf", "spark_session",
               "spark_local_limit", "database")


def check_database_options(database: Any, table: str | None, query: str | None, write_table: str | None,
                           if_exists: str) -> None:
    """--table / --query / --write-table / --if-exists: only with a database, and one of --table, --query."""
    if if_exists not in IF_EXISTS:
        raise CustsegError(f"--if-exists {if_exists!r}: use fail or replace.")
    if database is None:
        for flag, value in (("--table", table), ("--query", query), ("--write-table", write_table)):
            if value is not None:
                raise CustsegError(f"{flag} needs a database input (postgresql://..., sqlite:///file.db, "
                                   "duckdb:///file.duckdb ...); for files, drop it.")
        return
    if isinstance(database, str) and (table is None) == (query is None):
        raise CustsegError("a database input needs --table [schema.]table or --query \"SELECT ...\" (one of them).")
    if not isinstance(database, str) and (table is not None or query is not None):
        raise CustsegError("an Ibis table expression is read as it is; drop --table and --query.")


@dataclass
class RunOptions:
    """Every option of a segmentation run (the CLI's `run` flags, the API's keyword arguments)."""

    schema: str = "auto"
    mapping: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    date_format: str = "auto"
    features: list[str] | str | None = None
    scale: str = "log"
    k: int | None = None
    k_max: int = K_MAX
    seed: int = SEED
    n_init: int = N_INIT
    max_iter: int = MAX_ITER
    sweep_sample: int = SWEEP_SAMPLE
    silhouette_sample: int = SILHOUETTE_SAMPLE
    top_products: int = TOP_PRODUCTS
    engine: EngineOptions = field(default_factory=EngineOptions)
    command: str = ""
    model: Any = None  # a SegmentationModel or the path of a model.json: segment with it, no refit
    currency: str | None = None  # ISO code (EUR) or symbol (€) for money; None: from the data, else none
    horizon: str = HORIZON  # lifecycle: expected orders and value over this duration
    holdout: str | None = None  # backtest: fit on the lines before the last such duration, compare
    # A database input (engine.database): what to read, and where to write the segments back.
    table: str | None = None
    query: str | None = None
    write_table: str | None = None
    if_exists: str = "fail"
    keep: list[str] | str | None = None  # user columns constant per customer, carried into the segments
    workbook: bool = False  # segments.xlsx will be written: refuse early when the customers do not fit a sheet

    def validate(self) -> None:
        self.currency = normalize_currency(self.currency)
        check_database_options(self.engine.database, self.table, self.query, self.write_table, self.if_exists)
        if self.scale not in SCALES:
            raise refused("scale", self.scale, f"one of {', '.join(SCALES)}")
        if self.model is not None and self.k is not None:
            raise CustsegError(f"{flag('k')} cannot be combined with {flag('model')}: the model fixes the segments; "
                               f"drop {flag('k')}.")
        if self.model is not None and self.features not in (None, "", []):
            raise CustsegError(f"{flag('features')} cannot be combined with {flag('model')}: the model fixes the "
                               f"features; drop {flag('features')}.")
        if self.model is not None and self.scale != "log":
            raise CustsegError(f"{flag('scale')} cannot be combined with {flag('model')}: the model fixes the scaling; "
                               f"drop {flag('scale')}.")
        check_k(self.k)
        check_duration(self.horizon, "--horizon")
        if self.holdout is not None:
            check_duration(self.holdout, "--holdout")
            if self.model is not None:
                raise CustsegError("--holdout cannot be combined with --model: the backtest fits its own segments "
                                   "before the holdout; drop --model.")
        if self.k_max < 2:
            raise refused("k-max", self.k_max, "at least 2")
        if self.n_init < 1:
            raise refused("n-init", self.n_init, "at least 1")
        if self.sweep_sample < 100:
            raise refused("sweep-sample", self.sweep_sample, "at least 100")
        if not 100 <= self.silhouette_sample <= 20_000:
            raise refused("silhouette-sample", self.silhouette_sample, "between 100 and 20000")

    @classmethod
    def from_keywords(cls, **kwargs) -> "RunOptions":
        """RunOptions from the API's keyword arguments, engine options (memory_limit, engine ...) among them."""
        engine_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in ENGINE_KEYS}
        if isinstance(engine_kwargs.get("engine"), EngineOptions):
            engine_options = engine_kwargs.pop("engine")
        else:
            engine_options = EngineOptions(**engine_kwargs)
        try:
            return cls(engine=engine_options, **kwargs)
        except TypeError as exc:
            raise CustsegError(f"unknown option: {exc}") from exc
