"""The DuckDB engine (embedded, the default): an explicit memory limit and a spill directory, so
that large inputs spill to disk instead of being killed.

The only module besides engines/spark.py that knows an engine's name or Ibis' internals.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import gzip
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from ..errors import CustsegError, first_line
from ..options import EngineOptions, parse_memory_limit, size_bytes
from ..runtime.signals import register
from .base import Engine, fetch_in_one_piece, unique_names

# The dates DuckDB's own parser reads (Engine.fixed_date), by their strptime format.
FIXED_DATES = {"dmy": "%d/%m/%Y", "mdy": "%m/%d/%Y", "iso": "%Y-%m-%d"}


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(text: str, format: str) -> dt.timestamp:  # DuckDB's: NULL where the text does not fit
    ...


@ibis.udf.scalar.builtin(name="split_part")
def _split_part(text: str, separator: str, index: int) -> str:  # DuckDB's: the text before the first separator
    ...


REJECTS_PREFIX = "custseg_rejects_"  # DuckDB temp tables of malformed CSV lines (see cleaning/dropped.py)
SCANS_PREFIX = "custseg_reject_scans_"
MEMORY_PER_THREAD = 48 << 20  # below this per thread, DuckDB's buffers alone exhaust the limit


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


def threads_for_memory(memory_limit: str) -> int | None:
    """Fewer threads than cores when the memory limit is too small to give each one its buffers
    (so a tiny --memory-limit spills instead of failing); None: no cap needed."""
    limit = size_bytes(memory_limit)
    if limit is None:
        return None
    cores = os.cpu_count() or 1
    cap = max(1, int(limit // MEMORY_PER_THREAD))
    return cap if cap < cores else None


def connect_duckdb(options: EngineOptions) -> "DuckDBEngine":
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
        config["temp_directory"] = os.path.join(tempfile.gettempdir(), f"custseg-duckdb-{os.getpid()}")
    try:
        raw = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:  # bad memory limit, unwritable temp dir
        raise CustsegError(f"cannot start DuckDB: {str(exc).splitlines()[0]}") from exc
    register(raw)  # Ctrl-C / SIGTERM interrupt a running query (runtime/signals.py)
    return DuckDBEngine(ibis.duckdb.from_connection(raw), config["memory_limit"])


def cp1252_or_latin1(error: UnicodeDecodeError) -> tuple[str, int]:
    # The five bytes cp1252 leaves undefined are read as Latin-1.
    return error.object[error.start:error.end].decode("latin-1"), error.end


class DuckDBEngine(Engine):
    """DuckDB through Ibis; custseg's state about the connection is kept here, not on Ibis' object."""

    name = "duckdb"
    caches_lines = True
    reads_typed_csv = True
    numbers_dropped_lines = True
    ordered_first = True  # FIRST(x ORDER BY ...): +0.3-0.8 s on 10M lines; the window query it spares: 2.1 s
    stores_customers = True  # (fetch_customers: its size is known before it comes into Python)

    def __init__(self, backend, memory_limit: str):
        super().__init__(backend)
        self.con = backend.con  # the raw duckdb connection behind Ibis' backend
        self.memory_limit = memory_limit  # as given (DuckDB reports it rounded)
        self.readings = 0  # CSV readings started (each with its own rejects tables)
        self.transcoded: str | None = None  # directory of UTF-8 copies of cp1252 files
        self.originals: dict[str, str] = {}  # UTF-8 copy -> the file it was made from
        self.lenient = False     # strict_mode off: line endings change beyond the sniffed 64 KB
        self.long_lines = False  # max_line_size raised to a buffer: a line over 2 MB was met

    # ------------------------------------------------------------------ reading

    def fixed_date(self, text: ir.StringValue, order: str) -> ir.DateValue | None:
        """Engine.fixed_date with DuckDB's strptime, on the date a text starts with: for "iso" its first
        ten characters ('2019-02-04', alone or before a time: '2019-02-04T17:55:29+01:00'); for the two
        slashed orders the text before its first space ('4/2/2019', '12/1/2010 8:26'). The general
        reading reads the same characters and ignores the rest of the text.

        strptime's %d, %m and %Y also take whitespace before the digits, fewer digits and trailing
        whitespace, which the general reading reads differently ('01/02/201 ' is no date to it): a text
        is taken only where the two agree, that is where strptime takes the whole part, the year is
        from 1000 and an ISO date has its separators in place. The slashed orders' year guard is
        written without a CASE (dates before 1000-01-01 00:00 become NULL and are left to the general
        reading), and the two readings share no expression: either costs DuckDB more than the parsing
        (20M date-times: this reading 0.7 s, the whole as_date 1.4 s; with a CASE or a shared
        split_part, 1.5 and 4.5 s). Checked once against the general reading, in all three orders:
        the 15.7M texts 'ab/cd/efgh' (and 'efgh-ab-cd') of the characters 0 1 2 3 9, space, '+', '-'
        and 'a' (no 3 or 'a' in the year), and 65M texts built from one- to three-character days and
        months (digits, signs, letters, ASCII and Unicode whitespace), years of two to five
        characters, the three separators, leading whitespace and time suffixes: no difference;
        tests/test_scaling.py checks drawn texts of both kinds against a plain Python reading."""
        if order not in FIXED_DATES:
            return None
        if order == "iso":
            part = text.substr(0, 10)
            parsed = _try_strptime(part, FIXED_DATES[order])
            fits = (part.length() == 10) & (part.substr(4, 1) == "-") & (part.substr(7, 1) == "-")
            return ibis.ifelse(fits & (parsed.year() >= 1000), parsed.cast("date"), ibis.null("date"))
        parsed = _try_strptime(_split_part(text, " ", 1), FIXED_DATES[order])
        earliest = ibis.timestamp("1000-01-01 00:00:00")
        return ibis.greatest(parsed, earliest).nullif(earliest).cast("date")

    def read_csv(self, paths: list[str], dialect, typed=None) -> ir.Table:
        types = typed.read_types() if typed else {}
        options = dict(
            delim=dialect.delimiter, header=True, all_varchar=not types, quote='"', escape='"',
            null_padding=False, encoding=dialect.encoding, auto_detect=False,
            columns={name: types.get(name, "VARCHAR") for name in unique_names(dialect.header)},
        )
        if typed and typed.dateformat:
            options["dateformat"] = typed.dateformat
        if typed and typed.timestampformat:
            options["timestampformat"] = typed.timestampformat
        if dialect.encoding == "cp1252" or dialect.encoding.startswith("utf-16"):  # DuckDB: UTF-8, Latin-1
            paths = [self.as_utf8(path, dialect.encoding) for path in paths]
            options["encoding"] = "utf-8"
        if dialect.skip:
            options["skip"] = dialect.skip
        if dialect.lenient or self.lenient:
            options["strict_mode"] = False
        options.update(self.malformed_line_options())
        try:
            table = self.ibis.read_csv(paths, **options)
        except Exception as exc:  # duckdb raises its own error types
            raise CustsegError(f"{paths[0]}: cannot be read as CSV: {first_line(exc)}") from exc
        return table

    def rejected_files(self, error_type: str) -> list[str]:
        try:
            names = [r[0] for r in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE ?", [REJECTS_PREFIX + "%"]).fetchall()]
        except Exception:
            return []
        found: list[str] = []
        for name in names:
            scans = name.replace(REJECTS_PREFIX, SCANS_PREFIX)
            try:
                rows = self.con.execute(
                    f'SELECT DISTINCT s.file_path FROM "{name}" e JOIN "{scans}" s '
                    "ON e.scan_id = s.scan_id AND e.file_id = s.file_id WHERE e.error_type = ?", [error_type]
                ).fetchall()
            except Exception:
                continue
            for (path,) in rows:
                path = self.originals.get(path, path)
                if path not in found:
                    found.append(path)
        return found

    def raise_line_limit(self) -> bool:
        if self.long_lines:
            return False
        self.long_lines = True
        return True

    def read_leniently(self) -> bool:
        if self.lenient:
            return False
        self.lenient = True
        return True

    def drop_all_rejects(self) -> None:
        names = [r[0] for r in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE ? OR table_name LIKE ?",
            [REJECTS_PREFIX + "%", SCANS_PREFIX + "%"]).fetchall()]
        for name in names:
            self.con.execute(f'DROP TABLE IF EXISTS "{name}"')

    def integer_column_holds(self, table: str, columns: tuple[str, ...], value: int) -> bool:
        types = {r[0]: r[1] for r in self.con.execute(f'DESCRIBE "{table}"').fetchall()}
        keys = [c for c in columns if types.get(c) == "BIGINT"]
        if not keys:
            return False
        return bool(self.con.execute(
            "SELECT " + " OR ".join(f'bool_or("{c}" = {int(value)})' for c in keys) + f' FROM "{table}"'
        ).fetchall()[0][0])

    def malformed_line_options(self) -> dict[str, Any]:
        """read_csv options: a malformed line (more or fewer fields than the header, an unclosed
        quote, bad UTF-8) is skipped and recorded in a rejects table instead of failing the run.
        (null_padding stays off: DuckDB's parallel reader cannot combine it with line breaks inside
        quoted fields.) Small CSV buffers under a small memory limit."""
        self.readings += 1
        number = self.readings
        options: dict[str, Any] = dict(
            store_rejects=True, rejects_table=f"{REJECTS_PREFIX}{number}", rejects_scan=f"{SCANS_PREFIX}{number}",
        )
        try:
            limit, threads = self.con.execute(
                "SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
            limit_bytes = size_bytes(str(limit))
        except Exception:
            if self.long_lines:
                options["max_line_size"] = 32 << 20
            return options
        # Each reading thread holds a buffer (32 MB by default): under a small memory limit the
        # buffers alone would not fit, so they shrink (never below the 2 MB longest line).
        buffer = 32 << 20
        if limit_bytes:
            buffer = min(32 << 20, max(2 << 20, limit_bytes // (8 * max(1, int(threads)))))
            if buffer < 32 << 20:
                options["buffer_size"] = int(buffer)
        # DuckDB's longest line is 2 MB by default (a larger limit slows every reading by ~30%);
        # after a reading met a longer line, a line may be as long as a buffer (a valid 5 MB field).
        if self.long_lines:
            options["max_line_size"] = int(buffer)
        return options

    def as_utf8(self, path: str, encoding: str = "cp1252") -> str:
        """A UTF-8 copy of a cp1252 file in a private temporary directory (removed with the engine
        or at exit); line breaks are kept, so line numbers stay those of the file."""
        if self.transcoded is None:
            self.transcoded = tempfile.mkdtemp(prefix="custseg-utf8-")
            weakref.finalize(self, shutil.rmtree, self.transcoded, True)
        name = Path(path).name[:-3] if path.lower().endswith(".gz") else Path(path).name
        target = os.path.join(self.transcoded, f"{len(os.listdir(self.transcoded))}-{name}")
        self.originals[target] = path
        codecs.register_error("custseg-latin-1", cp1252_or_latin1)  # (registering again is harmless)
        errors = "custseg-latin-1" if encoding == "cp1252" else "strict"  # else UTF-16
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"  # a .csv.gz input (sources/text_files.py checked its name)
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as raw, \
                codecs.getreader(encoding)(raw, errors=errors) as src, \
                open(target, "w", encoding="utf-8", newline="") as dst:
            try:
                shutil.copyfileobj(src, dst, 1 << 20)
            except UnicodeDecodeError as exc:
                raise CustsegError(f"{path}: not valid {encoding} text ({exc.reason}); save the file as UTF-8 and "
                                   "run again.") from exc
        return target

    def read_parquet(self, files: list[str]) -> ir.Table:
        try:
            return self.ibis.read_parquet(files)
        except Exception as exc:
            raise CustsegError(f"{files[0]}: cannot be read as Parquet: {first_line(exc)}") from exc

    # ------------------------------------------------------------------ temporary tables

    def drop(self, name: str | None) -> None:
        if name:
            self.con.execute(f'DROP TABLE IF EXISTS "{name}"')

    def close(self) -> None:
        """Close the run's own in-memory database: its tables are freed and its spill directory
        removed now (connect_duckdb opened it; nothing of the result refers to it)."""
        with contextlib.suppress(duckdb.Error):
            self.con.close()

    def earliest_year(self, table: str, column: str) -> int | None:
        first = self.con.execute(f'SELECT min("{column}") FROM "{table}"').fetchall()[0][0]
        return None if first is None else first.year

    # ------------------------------------------------------------------ typed CSV reading

    def csv_reads(self) -> int:
        return self.readings

    def rejects_of(self, first: int, last: int) -> list[str]:
        return [f"{REJECTS_PREFIX}{n}" for n in range(first, last + 1)]

    def cast_failed(self, rejects: list[str]) -> bool:
        for name in rejects:
            try:
                found = self.con.execute(f'SELECT 1 FROM "{name}" WHERE error_type = \'CAST\' LIMIT 1').fetchall()
            except Exception:  # no table: the reader rejected nothing
                continue
            if found:
                return True
        return False

    def forget_rejects(self, rejects: list[str]) -> None:
        for name in rejects:
            scans = name.replace(REJECTS_PREFIX, SCANS_PREFIX)
            for table in (name, scans):
                self.con.execute(f'DROP TABLE IF EXISTS "{table}"')

    # ------------------------------------------------------------------ dropped lines

    def malformed_lines(self, files: list[str]) -> dict[str, list[int]]:
        given = {os.path.realpath(f): f for f in files}
        originals = {os.path.realpath(copy): f for copy, f in self.originals.items()}
        try:
            names = [r[0] for r in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE ?", [REJECTS_PREFIX + "%"]).fetchall()]
        except Exception:
            return {}
        found: dict[str, set[int]] = {}
        for name in names:
            scans = name.replace(REJECTS_PREFIX, SCANS_PREFIX)
            rows = self.con.execute(
                f'SELECT DISTINCT s.file_path, e.line FROM "{name}" e JOIN "{scans}" s '
                "ON e.scan_id = s.scan_id AND e.file_id = s.file_id "
                # a line of spaces and tabs is a blank line, not a malformed one
                "WHERE coalesce(trim(e.csv_line, ' \t\r\n\f\v'), 'x') <> ''").fetchall()
            for path, line in rows:
                real = os.path.realpath(path)
                found.setdefault(originals.get(real) or given.get(real, path), set()).add(int(line))
        return {path: sorted(lines) for path, lines in found.items()}

    @contextlib.contextmanager
    def file_order(self) -> Iterator[None]:
        """Within the block, rows are numbered in file order (insertion order preserved)."""
        previous = self.con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
        self.con.execute("SET preserve_insertion_order = true")
        try:
            yield
        finally:
            self.con.execute(
                f"SET preserve_insertion_order = {'true' if str(previous).lower() == 'true' else 'false'}")

    def rows_where(self, reasons: ir.Table, reason: int, bound: int, limit: int) -> list[tuple[int, int]]:
        # The backend's own compiler, not ibis.to_sql: that one imports every dialect's compiler (Athena,
        # Trino, ...: 0.1-0.2 s) and pretty-prints the SQL.
        sql = self.ibis.compile(reasons)
        # A streaming ROW_NUMBER() OVER () and a LIMIT: the scan stops at the last example.
        return [(int(r[0]), int(r[1])) for r in self.con.execute(
            f"SELECT row_index, reason FROM (SELECT ROW_NUMBER() OVER () - 1 AS row_index, reason "
            f"FROM ({sql})) WHERE reason = {int(reason)} AND row_index < {bound} "
            f"LIMIT {limit}").fetchall()]

    # ------------------------------------------------------------------ memory and results

    def memory_limit_bytes(self) -> int | None:
        setting = self.memory_limit or self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        return size_bytes(setting)

    @contextlib.contextmanager
    def memory_beside(self, held_bytes: int, floor: int = 1 << 30) -> Iterator[None]:
        """Within the block, DuckDB's memory limit is lowered by `held_bytes` (at least `floor`).

        For steps that query DuckDB while Python holds a large table (the customer table
        during profiles and best sellers): the two together stay near the limit instead of
        adding up; DuckDB spills a little more.
        """
        if held_bytes < (256 << 20):
            yield
            return
        setting = self.memory_limit or self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        limit = size_bytes(setting)
        if limit is None or limit <= floor:
            yield
            return
        self.con.execute(f"SET memory_limit = '{max(floor, limit - held_bytes) // 2**20}MB'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = '{setting}'")

    def fetch_customers(self, customers: ir.Table, finish: Callable[[ir.Table], ir.Table]) -> pa.Table:
        """DuckDB computes the customer table into a temporary table first, so that its size is known
        before it comes into Python: while it is fetched, DuckDB's share is lowered by that much
        (memory_beside) and the two together stay near the limit (at 37M customers they would add
        up to 2.4 + 2.6 GB). `finish` makes what is fetched from the stored table (the run passes
        the features of the stored totals, unordered: it orders them in memory, stores_customers)."""
        name, stored = self.keep(customers, "custseg_customers")
        try:
            rows = self.con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
            fetched = finish(stored)
            row_bytes = 8 * (len(fetched.columns) - 1) + 24  # float64 features, and an id as text
            with self.memory_beside(rows * row_bytes):
                # (DuckDB's own reader: Ibis' to_pyarrow_batches calls the connection's fetch_record_batch,
                # which DuckDB 2's connection no longer has)
                reader = self.con.sql(self.ibis.compile(fetched)).to_arrow_reader(1 << 20)
                return fetch_in_one_piece(reader, fetched.schema().to_pyarrow(), rows)
        finally:
            self.drop(name)

    def query_progress(self) -> Callable[[], float | None] | None:
        try:
            self.con.execute("SET enable_progress_bar = true")
            self.con.execute("SET enable_progress_bar_print = false")
        except Exception:  # a DuckDB without the setting: no percentages
            return None
        return self.con.query_progress


def is_duckdb_error(exc: BaseException) -> bool:
    """An error raised by DuckDB itself (while the inputs are scanned)."""
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb")


def read_error(exc: BaseException, files: list[str]) -> CustsegError:
    """A DuckDB error met while scanning the inputs, as one line naming the file and line."""
    text = str(exc)
    kind = type(exc).__name__
    if "Interrupt" in kind:
        raise KeyboardInterrupt from exc
    file_match = re.search(r"^\s*file\s*=\s*(.+?)\s*$", text, re.M)
    line_match = re.search(r"CSV Error on Line:\s*(\d+)", text)
    where = file_match.group(1) if file_match else (files[0] if len(files) == 1 else "the input")
    if line_match:
        where += f", line {line_match.group(1)}"
    first = first_line(exc)
    if "OutOfMemory" in kind or first.startswith("Out of Memory"):
        return CustsegError(f"DuckDB ran out of memory ({first}); raise --memory-limit, lower --threads or "
                            "point --temp-dir at a disk with free space.")
    if "encoded" in first or "unicode" in first.lower():
        return CustsegError(f"{where}: the text is not in the detected encoding ({first}); save the file as "
                            "UTF-8 and run again.")
    if "state machine reached an invalid state" in text:
        return CustsegError(f"{where}: its lines end in different ways (LF and CRLF) beyond the first 64 KB; "
                            "save the file with one kind of line ending (any text editor can) and run again.")
    if "No space left" in text or "disk" in first.lower() and "space" in first.lower():
        return CustsegError(f"DuckDB cannot spill to disk: {first}; free space or point --temp-dir elsewhere.")
    return CustsegError(f"{where}: cannot be read: {first}")


def translate_read_errors(function):
    """Decorator: a DuckDB error raised while the inputs are scanned becomes a CustsegError
    naming the file and line (see read_error); an interrupted query becomes KeyboardInterrupt."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except CustsegError:
            raise
        except Exception as exc:
            if not is_duckdb_error(exc):
                raise
            raise read_error(exc, []) from exc

    return wrapper
