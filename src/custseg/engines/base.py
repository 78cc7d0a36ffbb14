"""The Engine interface: what custseg asks of whatever runs its Ibis expressions.

Everything up to the customer features is an Ibis expression; an engine runs it. The rest of
custseg talks to an engine through this interface only: engines/duckdb.py and engines/spark.py
are the only modules that know an engine's name or touch Ibis' and Spark's internals. The
defaults here are what an engine without a capability does (no cache, no line numbers ...).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa


def fetch_in_one_piece(batches, schema: pa.Schema, rows: int) -> pa.Table:
    """Record batches (of `schema`'s columns, cast to its types) as one table with each column in
    one piece, copied out of the batches as they come: a batch's columns share one owner, so
    joining a fetched table's chunks column by column would free nothing until the last column
    (37M customers: a second table, 3.5 GB). Numbers and dates without nulls go into arrays of
    `rows` values; any other column is copied batch by batch and joined at the end."""
    fixed = {f.name: f.type for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
             or pa.types.is_date32(f.type)}
    arrays = {name: np.empty(rows, np.int32 if pa.types.is_date32(t) else t.to_pandas_dtype())
              for name, t in fixed.items()}
    pieces: dict[str, list[pa.Array]] = {f.name: [] for f in schema}
    at = 0
    for batch in batches:
        n = batch.num_rows
        for field in schema:
            name, column = field.name, batch.column(field.name)
            if column.type != field.type:
                column = column.cast(field.type)
            if name in arrays and column.null_count == 0 and at + n <= rows:
                values = column.view(pa.int32()) if pa.types.is_date32(column.type) else column
                arrays[name][at:at + n] = values.to_numpy(zero_copy_only=False)
            else:  # a null (or more rows than counted): this column as Arrow copies from here on
                if name in arrays:
                    pieces[name].append(_as_arrow(arrays.pop(name)[:at], fixed[name]))
                pieces[name].append(pa.concat_arrays([column]))
        at += n
        del batch
    columns = []
    for field in schema:
        if field.name in arrays:
            columns.append(_as_arrow(arrays[field.name][:at], field.type))
        else:
            columns.append(pa.concat_arrays(pieces.pop(field.name)) if pieces[field.name] else pa.array([], field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _as_arrow(values: np.ndarray, dtype: pa.DataType) -> pa.Array:
    array = pa.array(values)
    return array.view(dtype) if pa.types.is_date32(dtype) else array.cast(dtype)


def unique_names(header: tuple[str, ...]) -> list[str]:
    """Column names made unique the way the engines do (`name`, `name_1`, ...)."""
    seen: dict[str, int] = {}
    out = []
    for index, name in enumerate(header):
        name = name or f"column{index}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


class Engine:
    """One engine connection: an Ibis backend and custseg's own state about it."""

    name = "engine"               # as shown in summary.json ("duckdb", "spark")
    caches_lines = False          # keeps parsed order lines in temporary tables (cleaning.cache_lines)
    reads_typed_csv = False       # can read clean CSV columns typed, and tell when that failed
    numbers_dropped_lines = False  # can find where dropped lines are (cleaning/dropped.py)
    may_keep_customers = False    # may keep a customer table too large to collect (Spark)
    reads_urls = False            # reads URLs (hdfs://, s3a:// ...) besides local files
    reads_database = False        # the order lines are a database's table or query (engines/sql.py)
    ordered_first = False         # runs Ibis' first(order_by=...) aggregate in one grouping (no window)
    stores_customers = False      # fetch_customers stores the customer table first (pipeline.fetch_customers)

    def __init__(self, backend):
        self.ibis = backend  # the Ibis backend that runs the expressions

    # ------------------------------------------------------------------ reading

    def read_csv(self, paths: list[str], dialect, typed=None) -> ir.Table:
        raise NotImplementedError

    def read_parquet(self, files: list[str]) -> ir.Table:
        raise NotImplementedError

    def rejected_files(self, error_type: str) -> list[str]:
        """Files (as given) in which the CSV reader rejected lines for `error_type` ("INVALID
        ENCODING", "LINE SIZE OVER MAXIMUM"); engines without rejects tables find none."""
        return []

    def raise_line_limit(self) -> bool:
        """Allow longer lines in later readings; False when already raised (or not possible)."""
        return False

    def read_leniently(self) -> bool:
        """Read later CSVs whose line endings change (LF and CRLF); False when already so."""
        return False

    def drop_all_rejects(self) -> None:
        """Forget every rejects table (a reading abandoned as a whole)."""

    def integer_column_holds(self, table: str, columns: tuple[str, ...], value: int) -> bool:
        """Does one of the integer `columns` of a cached table hold `value`?"""
        return False

    def sniff_remote_csv(self, path: str):
        """(delimiter, encoding, header) of a CSV file at a URL (only engines that read URLs)."""
        raise NotImplementedError

    def table_of(self, data) -> ir.Table:
        """An Ibis table over an in-memory table (pandas, Arrow, or the engine's own DataFrame)."""
        return ibis.memtable(data)

    def execute(self, expr: ir.Expr):
        return self.ibis.execute(expr)

    # A date from its year, month and day (digit texts), quicker than try_cast of 'Y-M-D' on this
    # engine; None: the text is cast (sources/values.py as_date).
    date_from_parts: Callable[[ir.StringValue, ir.StringValue, ir.StringValue], ir.DateValue] | None = None

    def fixed_date(self, text: ir.StringValue, order: str) -> ir.DateValue | None:
        """The date of a plain text date ('dd/mm/yyyy' or 'd/m/yyyy', 'mm/dd/yyyy' for order "mdy",
        'yyyy-mm-dd' for "iso"; alone or before a time), NULL for any other text, by one call of the
        engine's own date parser; None: this engine has none (sources/values.py as_date then reads
        every value with its general expressions, which give the same date for such text, slower)."""
        return None

    def try_cast(self, value: ir.Value, to: str) -> ir.Value:
        """`value` cast to `to`, NULL where it cannot be (never an error, never 0): how this engine
        parses text (sources/values.py calls it through values.casts_of)."""
        return value.try_cast(to)

    # Whether try_cast is the engine's own safe TRY_CAST, cheap to reuse in a larger expression;
    # False where it is a guard of several patterns (sources/number_formats.py then keeps it out
    # of the slow path, whose SQL would otherwise repeat it at every use).
    cheap_try_cast = True

    def cast_number_text(self, value: ir.StringValue) -> ir.FloatingValue:
        """A float64 of text already matched as '[-+]digits[.digits][e[-+]digits]' (NULL where it
        is not one): the number parser's last step."""
        return self.try_cast(value, "float64")

    @contextlib.contextmanager
    def translating(self) -> Iterator[None]:
        """Within the block, the engine's own errors become one-line CustsegErrors (where it knows how)."""
        yield

    def mask(self, text: str) -> str:
        """`text` with any secret of the engine's connection (a database password) masked."""
        return text

    def prepare(self, data, table: str | None, query: str | None, write_table: str | None = None,
                if_exists: str = "fail") -> None:
        """Before any work: open what to read and check where results go (database engines only)."""

    def write_segments(self, table, name: str, if_exists: str = "fail") -> str:
        """Write the segments as a table of the engine's database (database engines only)."""
        raise NotImplementedError

    def transfer_note(self) -> str | None:
        """What the engine sent over a network for this run, for the progress display (None: nothing)."""
        return None

    # ------------------------------------------------------------------ temporary tables

    def keep(self, expr: ir.Table, prefix: str) -> tuple[str, ir.Table]:
        """The expression computed once into a temporary table: (its name, the table)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        return name, self.ibis.create_table(name, expr, temp=True)

    def drop(self, name: str | None) -> None:
        """Drop a temporary table made by keep (nothing when None)."""

    def close(self) -> None:
        """Release what the engine opened for the run (a connection the user gave stays open)."""

    def earliest_year(self, table: str, column: str) -> int | None:
        """The year of the least date of a column of a kept table (None: no date)."""
        return None

    # ------------------------------------------------------------------ typed CSV reading

    def csv_reads(self) -> int:
        """How many CSV readings with a rejects table were started on this engine."""
        return 0

    def rejects_of(self, first: int, last: int) -> list[str]:
        """The rejects tables of the CSV readings first..last (see csv_reads)."""
        return []

    def cast_failed(self, rejects: list[str]) -> bool:
        """Did the typed reader meet a value it could not parse (recorded in these rejects tables)?"""
        return False

    def forget_rejects(self, rejects: list[str]) -> None:
        """Drop the rejects tables of an abandoned typed reading."""

    # ------------------------------------------------------------------ dropped lines

    def malformed_lines(self, files: list[str]) -> dict[str, list[int]]:
        """file -> sorted line numbers of malformed lines the CSV reader skipped."""
        return {}

    @contextlib.contextmanager
    def file_order(self) -> Iterator[None]:
        """Within the block, rows are numbered in file order."""
        yield

    def rows_where(self, reasons: ir.Table, reason: int, bound: int, limit: int) -> list[tuple[int, int]]:
        """(row index, reason) of the first `limit` rows, in file order, among the first `bound`,
        whose `reason` column equals `reason`."""
        return []

    # ------------------------------------------------------------------ memory and results

    def memory_limit_bytes(self) -> int | None:
        """The engine's memory limit in bytes (None: not managed by custseg)."""
        return None

    @contextlib.contextmanager
    def memory_beside(self, held_bytes: int, floor: int = 1 << 30) -> Iterator[None]:
        """Within the block, the engine's memory share is lowered by what Python holds."""
        yield

    def fetch_customers(self, customers: ir.Table, finish: Callable[[ir.Table], ir.Table]) -> pa.Table:
        """The customer table as Arrow: `finish(customers)`, the caller's last step (its order, or
        the columns computed from stored totals)."""
        return finish(customers).to_pyarrow()

    def query_progress(self) -> Callable[[], float | None] | None:
        """A function giving the running query's share done in percent (None: not available)."""
        return None
