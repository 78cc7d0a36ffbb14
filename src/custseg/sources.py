"""Readers and schema adapters: input files -> canonical order lines (a lazy Ibis table).

Canonical columns (DESIGN.md): customer_id, order_id, order_date, product, quantity,
returned_quantity, amount, unit_price; plus product_name (what a product is called in
reports). CSV files are read as text and parsed here with `try_cast`-style
expressions, so that a stray word in a number column becomes a counted, dropped line
instead of a failed run, and so that the same expressions run on DuckDB and Spark.
"""

from __future__ import annotations

import codecs
import functools
import csv
import glob
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from .errors import CustsegError

CANONICAL = (
    "customer_id", "order_id", "order_date", "product", "quantity", "returned_quantity", "amount", "unit_price",
)
SCHEMAS = ("auto", "shopify", "online-retail", "generic")
DATE_FORMATS = ("auto", "iso", "dmy", "mdy", "excel")

SHOPIFY_COLUMNS = {"customer_id", "order_id", "day", "product_type", "total_sales",
                   "ordered_item_quantity", "returned_item_quantity"}
# Online Retail (UCI) and Online Retail II name the same things differently.
ONLINE_RETAIL_ALIASES = {
    "invoice": ("InvoiceNo", "Invoice"),
    "stock_code": ("StockCode",),
    "description": ("Description",),
    "quantity": ("Quantity",),
    "invoice_date": ("InvoiceDate",),
    "unit_price": ("UnitPrice", "Price"),
    "customer": ("CustomerID", "Customer ID"),
}
# Names the generic adapter recognises without --map (compared lower-case, letters and digits only).
GENERIC_GUESSES = {
    "customer_id": ("customerid", "customer", "customerno", "clientid", "client", "userid", "buyerid", "memberid"),
    "order_id": ("orderid", "order", "orderno", "ordernumber", "invoiceno", "invoice", "invoiceid",
                 "transactionid", "receiptid"),
    "order_date": ("orderdate", "date", "invoicedate", "day", "purchasedate", "transactiondate", "createdat",
                   "timestamp", "datetime"),
    "product": ("product", "productid", "sku", "stockcode", "item", "itemid", "producttype"),
    "quantity": ("quantity", "qty", "units", "orderedquantity"),
    "returned_quantity": ("returnedquantity", "returnedqty", "returnedunits"),
    "amount": ("amount", "totalprice", "total", "totalamount", "sales", "totalsales", "revenue", "value",
               "ordervalue", "netsales", "spend"),
    "unit_price": ("unitprice", "price", "itemprice"),
}
READABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xlsm")


@dataclass
class SourceSpec:
    """What the user asked to read and how to interpret it."""

    inputs: list[Any]
    schema: str = "auto"
    mapping: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    date_format: str = "auto"


@dataclass
class Source:
    """Canonical order lines and what is known about where they came from."""

    lines: ir.Table
    schema: str
    files: list[str]
    columns: list[str]          # the source's own column names
    provided: set[str]          # canonical columns that come from the data (not defaults)
    return_rate_level: str      # "order" (returns on the order line) or "customer" (separate lines)
    date_format: str
    notes: list[str] = field(default_factory=list)
    # The rejects tables of a typed CSV reading (typed_csv.py); empty when everything was read as text.
    typed_rejects: list[str] = field(default_factory=list)
    typed_dates: bool = False  # the order dates were parsed by the typed reading
    warnings: list[str] = field(default_factory=list)  # said on stderr (skipped files, ...)
    parsed_from: dict[str, str] = field(default_factory=dict)  # canonical -> the source column parsed
    number_formats: dict = field(default_factory=dict)  # column -> number_formats.NumberFormat


# ---------------------------------------------------------------------------- files


def expand_inputs(inputs: list[str | os.PathLike], warnings: list[str] | None = None) -> list[str]:
    """Files named by paths, globs and directories, in a stable order (walk.py: no endless walk
    through symbolic link loops; files that are no data in a directory or glob skipped, said in
    `warnings`)."""
    from .walk import data_files_only, glob_files

    warnings = [] if warnings is None else warnings
    files: list[str] = []
    for item in inputs:
        text = str(item)
        if any(ch in text for ch in "*?["):
            matches = glob_files(text, warnings)
            if not matches:
                raise CustsegError(f"{text}: no file matches this pattern; check the path and the quotes.")
            asked = Path(text).suffix.lower()  # '*.txt' asks for text files
            named = [m for m in matches if asked and not any(c in asked for c in "*?[")
                     and m.lower().endswith(asked)]
            matches = sorted(set(named) | set(data_files_only([m for m in matches if m not in named], text,
                                                               warnings)))
            if not matches:
                raise CustsegError(f"{text}: no CSV, Parquet or .xlsx file matches this pattern; check the "
                                   "pattern or name the files.")
            files.extend(matches)
        elif os.path.isdir(text):
            entries = sorted(str(p) for p in Path(text).iterdir() if p.is_file() and not p.name.startswith((".", "_")))
            matches = data_files_only(entries, text, warnings)
            if not matches:
                raise CustsegError(f"{text}: the directory has no .csv, .parquet or .xlsx file to read.")
            files.extend(matches)
        elif os.path.isfile(text):
            files.append(text)
        elif os.path.exists(text):
            raise CustsegError(f"{text}: not a regular file; give a CSV, Parquet or .xlsx file.")
        else:
            raise CustsegError(f"{text}: no such file; check the path.")
    for path in files:
        if not os.access(path, os.R_OK):
            raise CustsegError(f"{path}: permission denied; make the file readable.")
    return files


def file_kind(path: str) -> str:
    if is_url(path):
        return url_kind(path)
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix == ".xls":
        raise CustsegError(f"{path}: old .xls workbooks are not read; save it as .xlsx or CSV.")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        from .text_files import refuse_zip

        refuse_zip(path)  # a zip archive that is no workbook is named as such
        return "xlsx"
    return "csv"


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    encoding: str
    header: tuple[str, ...]
    skip: int = 0           # blank lines before the header (text_files.py)
    lenient: bool = False   # lines end in different ways (LF and CRLF): DuckDB's non-strict mode


def sniff_csv(path: str) -> CsvDialect:
    """Delimiter, encoding and header of a CSV file, from its first 64 KB (decompressed: text_files.py)."""
    from .text_files import head, leading_blank_lines, mixed_line_endings, utf16_encoding

    raw = head(path)
    utf16 = utf16_encoding(raw)
    if utf16:  # transcoded to UTF-8 for DuckDB (_read_csv)
        text = raw.decode(utf16, errors="ignore").lstrip("\ufeff")
        return _dialect_of(path, text, utf16, mixed_line_endings(text.encode("utf-8")))
    if not raw.strip():
        raise CustsegError(f"{path}: the file is empty; export the order lines again.")
    if b"\x00" in raw:
        raise CustsegError(f"{path}: this is not a text (CSV) file; give a CSV, Parquet or .xlsx export.")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    from .encodings import known_encoding

    try:
        if known_encoding(path):  # a reading found bytes that are not UTF-8 further down (encodings.py)
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "not UTF-8 further down")
        text = raw.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3 and not known_encoding(path):  # a character cut by the 64 KB window
            text, encoding = raw[: exc.start].decode("utf-8"), "utf-8"
        else:
            text, encoding = raw.decode("latin-1"), known_encoding(path) or _single_byte_encoding(path)
    return _dialect_of(path, text, encoding, mixed_line_endings(raw))


def _dialect_of(path: str, text: str, encoding: str, lenient: bool) -> CsvDialect:
    from .text_files import leading_blank_lines

    skip = leading_blank_lines(text)
    lines = text.splitlines()[skip:]
    if not lines:
        raise CustsegError(f"{path}: the file is empty; export the order lines again.")
    sample = "\n".join(lines[:50])
    first = lines[0] if lines else ""
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: first.count(d) for d in ",;\t|"}
        delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    header = [h.strip() for h in header]
    if not any(header):
        raise CustsegError(f"{path}: the first line is empty; it must hold the column names.")
    return CsvDialect(delimiter, encoding, tuple(header), skip, lenient)


def read_raw(backend, files: list[str], sheet: str | None, roles: dict[str, str] | None = None,
             date_format: str = "iso") -> tuple[ir.Table, list[str]]:
    """One Ibis table over all files (they must share their columns).

    `roles` (typed_csv.column_roles): CSV columns DuckDB may parse as typed columns where the
    files' first 64 KB allow it (typed_csv.py; dates in `date_format`); without, every CSV
    column is read as text."""
    kinds = {file_kind(f) for f in files}
    if len(kinds) > 1:
        raise CustsegError(f"the inputs mix file types ({', '.join(sorted(kinds))}); give files of one type.")
    kind = kinds.pop()
    if kind == "csv":
        dialects = [sniff_csv(f) for f in files] if not any(map(is_url, files)) \
            else [sniff_csv_url(backend, files[0])] * len(files)
        first = dialects[0]
        for path, dialect in zip(files[1:], dialects[1:]):
            if set(dialect.header) != set(first.header):
                raise CustsegError(
                    f"{path}: its columns ({', '.join(dialect.header)}) differ from those of {files[0]}; "
                    "give files with the same columns."
                )
        groups: dict[CsvDialect, list[str]] = {}
        for path, dialect in zip(files, dialects):
            groups.setdefault(dialect, []).append(path)
        columns = _unique_names(first.header)  # a repeated name is read as name_1, name_2, ...
        typed = None
        if roles and backend.name == "duckdb" and not any(map(is_url, files)):
            from .typed_csv import typed_for_files

            typed = typed_for_files(files, dialects, columns, roles, date_format)
        tables = [_read_csv(backend, paths, dialect, typed) for dialect, paths in groups.items()]
    elif kind == "parquet":
        tables = [_read_parquet(backend, files)]
        columns = list(tables[0].columns)
    else:
        tables = [_read_xlsx(backend, f, sheet) for f in files]
        columns = list(tables[0].columns)
        for path, table in zip(files[1:], tables[1:]):
            if set(table.columns) != set(columns):
                raise CustsegError(f"{path}: its columns differ from those of {files[0]}; give files with the same columns.")
    tables = [t.select(*columns) for t in tables]
    raw = tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=False)
    from .headers import normalised_headers

    renamed = normalised_headers(columns)  # Customer_ID -> customer_id (headers.py)
    if renamed != columns:
        raw = raw.rename({new: old for new, old in zip(renamed, columns) if new != old})
        columns = renamed
    return raw, columns


def _read_csv(backend, paths: list[str], dialect: CsvDialect, typed=None) -> ir.Table:
    if backend.name == "duckdb":
        types = typed.read_types() if typed else {}
        options = dict(
            delim=dialect.delimiter, header=True, all_varchar=not types, quote='"', escape='"',
            null_padding=False, encoding=dialect.encoding, auto_detect=False,
            columns={name: types.get(name, "VARCHAR") for name in _unique_names(dialect.header)},
        )
        if typed and typed.dateformat:
            options["dateformat"] = typed.dateformat
        if dialect.encoding == "cp1252" or dialect.encoding.startswith("utf-16"):  # DuckDB reads UTF-8, Latin-1
            paths = [_as_utf8(backend, path, dialect.encoding) for path in paths]
            options["encoding"] = "utf-8"
        if dialect.skip:
            options["skip"] = dialect.skip
        if dialect.lenient or getattr(backend, "_custseg_lenient", False):
            options["strict_mode"] = False
        options.update(_malformed_line_options(backend))
        try:
            table = backend.read_csv(paths, **options)
        except Exception as exc:  # duckdb raises its own error types
            raise CustsegError(f"{paths[0]}: cannot be read as CSV: {_first_line(exc)}") from exc
        if typed and typed.keys:
            from .typed_csv import checked_keys

            table = checked_keys(table, typed.keys)  # ids: integers only where every value round-trips
        return table
    return _spark_read(backend, "csv", paths, sep=dialect.delimiter, header=True, inferSchema=False,
                       encoding=dialect.encoding, quote='"', escape='"', multiLine=False)


def _unique_names(header: tuple[str, ...]) -> list[str]:
    """Column names made unique the way DuckDB does (`name`, `name_1`, ...)."""
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


# DuckDB's longest line by default (2 MB; a larger limit slows every reading by ~30%); a reading
# that meets a longer line is done again with the limit raised to a buffer (encodings.long_lines).
MAX_LINE_SIZE = 2 << 20
REJECTS_PREFIX = "custseg_rejects_"  # DuckDB temp tables of malformed CSV lines (see dropped.py)


def _malformed_line_options(backend) -> dict[str, Any]:
    """read_csv options: a malformed line (more or fewer fields than the header, an unclosed
    quote, bad UTF-8) is skipped and recorded in a rejects table instead of failing the run.
    (null_padding stays off: DuckDB's parallel reader cannot combine it with line breaks inside
    quoted fields.) Small CSV buffers under a small memory limit."""
    number = getattr(backend, "_custseg_csv_reads", 0) + 1
    backend._custseg_csv_reads = number
    options: dict[str, Any] = dict(
        store_rejects=True, rejects_table=f"{REJECTS_PREFIX}{number}", rejects_scan=f"custseg_reject_scans_{number}",
    )
    try:
        limit, threads = backend.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
        limit_bytes = _size_bytes(str(limit))
    except Exception:
        if getattr(backend, "_custseg_long_lines", False):
            options["max_line_size"] = 32 << 20
        return options
    # Each reading thread holds a buffer (32 MB by default): under a small memory limit the
    # buffers alone would not fit, so they shrink (never below the 2 MB longest line).
    buffer = 32 << 20
    if limit_bytes:
        buffer = min(32 << 20, max(2 << 20, limit_bytes // (8 * max(1, int(threads)))))
        if buffer < 32 << 20:
            options["buffer_size"] = int(buffer)
    # A line may be as long as a buffer (DuckDB's default, 2 MB, dropped a valid 5 MB field's line).
    if getattr(backend, "_custseg_long_lines", False):
        options["max_line_size"] = int(buffer)
    return options


def _size_bytes(text: str) -> int | None:
    match = re.match(r"^\s*([\d.]+)\s*([KMGT]?i?B)\s*$", text, re.I)
    if not match:
        return None
    unit = match.group(2).upper().replace("I", "")
    return int(float(match.group(1)) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit])


def _single_byte_encoding(path: str) -> str:
    """latin-1, or cp1252 (Windows) when the file has bytes 0x80-0x9F (€, curly quotes, dashes),
    which Latin-1 leaves to control characters and DuckDB refuses."""
    from .text_files import open_bytes

    pattern = re.compile(rb"[\x80-\x9f]")
    with open_bytes(path) as fh:
        while chunk := fh.read(1 << 22):
            if pattern.search(chunk):
                return "cp1252"
    return "latin-1"


def _cp1252_or_latin1(error: UnicodeDecodeError) -> tuple[str, int]:
    # The five bytes cp1252 leaves undefined are read as Latin-1.
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error("custseg-latin-1", _cp1252_or_latin1)


def _as_utf8(backend, path: str, encoding: str = "cp1252") -> str:
    """A UTF-8 copy of a cp1252 file in a private temporary directory (removed with the engine
    connection or at exit); line breaks are kept, so line numbers stay those of the file."""
    import shutil
    import tempfile
    import weakref

    directory = getattr(backend, "_custseg_transcoded", None)
    if directory is None:
        directory = tempfile.mkdtemp(prefix="custseg-utf8-")
        backend._custseg_transcoded = directory
        weakref.finalize(backend, shutil.rmtree, directory, True)
    name = Path(path).name[:-3] if path.lower().endswith(".gz") else Path(path).name
    target = os.path.join(directory, f"{len(os.listdir(directory))}-{name}")
    backend._custseg_originals = {**getattr(backend, "_custseg_originals", {}), target: path}
    from .text_files import open_bytes, transcoded_utf8

    if encoding != "cp1252":
        transcoded_utf8(path, encoding, target)
        return target
    with open_bytes(path) as raw, codecs.getreader("cp1252")(raw, errors="custseg-latin-1") as src, \
            open(target, "w", encoding="utf-8", newline="") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target


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
    first = _first_line(exc)
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
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except CustsegError:
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
                raise
            raise read_error(exc, []) from exc

    return wrapper


def _read_parquet(backend, files: list[str]) -> ir.Table:
    if backend.name == "pyspark":
        return _spark_read(backend, "parquet", files)
    try:
        return backend.read_parquet(files)
    except Exception as exc:
        raise CustsegError(f"{files[0]}: cannot be read as Parquet: {_first_line(exc)}") from exc


def _read_xlsx(backend, path: str, sheet: str | None) -> ir.Table:
    import fastexcel

    try:
        reader = fastexcel.read_excel(path)
    except Exception as exc:
        raise CustsegError(f"{path}: not a readable .xlsx workbook ({_first_line(exc)}); export it again.") from exc
    names = reader.sheet_names
    if sheet is None:
        chosen: str | int = 0
    elif sheet in names:
        chosen = sheet
    elif sheet.isdigit() and int(sheet) < len(names):
        chosen = int(sheet)
    else:
        raise CustsegError(f"{path}: no sheet {sheet!r}; the workbook has: {', '.join(names)}.")
    try:
        table = reader.load_sheet(chosen).to_arrow()
    except Exception as exc:
        raise CustsegError(f"{path}: sheet {chosen!r} cannot be read: {_first_line(exc)}") from exc
    if table.num_rows == 0:
        hint = f" The workbook has the sheets {', '.join(names)}: pick one with --sheet." if len(names) > 1 else ""
        raise CustsegError(f"{path}: sheet {names[chosen] if isinstance(chosen, int) else chosen!r} has no rows.{hint}")
    return ibis.memtable(table)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------- Spark paths

_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:(?!\\)")  # scheme:..., not a Windows drive (C:\\)


def is_url(path: str) -> bool:
    """A path for Spark's file systems (file:, hdfs://, s3a://, abfss://, dbfs:/ ...), not a local name."""
    return bool(_URL_RE.match(str(path))) and not re.match(r"^[a-zA-Z]:[\\/]", str(path))


def url_kind(path: str) -> str:
    """csv or parquet, from the suffix; a directory or a pattern without suffix is taken as Parquet (a lake)."""
    suffix = Path(str(path).rstrip("/")).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt", ".gz"):
        return "csv"
    if suffix in (".xlsx", ".xlsm", ".xls"):
        raise CustsegError(f"{path}: a workbook is read from local disk only; copy it here or export it as CSV.")
    return "parquet"


def expand_spark_inputs(inputs: list[str | os.PathLike]) -> list[str]:
    """Local paths checked as for DuckDB; URLs passed to Spark as they are (Spark globs and lists them)."""
    local = [item for item in inputs if not is_url(str(item))]
    files = expand_inputs(local) if local else []
    return files + [str(item) for item in inputs if is_url(str(item))]


def sniff_csv_url(backend, path: str) -> CsvDialect:
    """Delimiter and header of a CSV file Spark reads, from its first 50 lines (UTF-8)."""
    try:
        rows = _spark_session_of(backend).read.text(path).limit(50).collect()
    except Exception as exc:
        raise CustsegError(f"{path}: Spark cannot read it: {_first_line(exc)}") from exc
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
    return CsvDialect(delimiter, "utf-8", header)


def _spark_session_of(backend):
    return backend._session  # the SparkSession behind Ibis' PySpark backend


def _spark_read(backend, kind: str, paths: list[str], **options) -> ir.Table:
    """Read with the SparkSession itself: it takes a list of paths and URLs as they are."""
    import ibis.util

    reader = _spark_session_of(backend).read
    try:
        frame = reader.csv(list(paths), **options) if kind == "csv" else reader.parquet(*paths, **options)
    except Exception as exc:
        raise CustsegError(f"{paths[0]}: cannot be read as {kind.upper() if kind == 'csv' else 'Parquet'}: "
                           f"{_first_line(exc)}") from exc
    name = ibis.util.gen_name(f"custseg_{kind}")
    frame.createOrReplaceTempView(name)
    return backend.table(name)


# ---------------------------------------------------------------------------- parsing


def as_text(value: ir.Value) -> ir.StringValue:
    """Trimmed text, empty -> NULL; whole floats lose their '.0' (Excel's 17850.0 -> '17850')."""
    dtype = value.type()
    if dtype.is_string():
        text = _strip(value)
        # Only a text with a dot can be a whole float; the test spares most lines the regex.
        # re_extract, not re_replace with a back-reference: Spark's regexp_replace reads "\1"
        # as a literal "1" (it wants "$1"), DuckDB reads "$1" literally.
        whole = text.re_extract(r"^(-?\d+)\.0+$", 1)
        text = ibis.ifelse(text.contains("."), ibis.coalesce(whole.nullif(""), text), text)
    elif dtype.is_floating():
        # The bound keeps NaN and infinity (equal to their floor on Spark) and overflowing
        # values away from the int64 cast, which fails under Spark's ANSI mode.
        whole = (value == value.floor()) & (value.abs() < 1e15)
        text = ibis.ifelse(whole, value.cast("int64").cast("string"), value.cast("string"))
    else:
        text = value.cast("string")
    return ibis.ifelse(text == "", ibis.null("string"), text)


def as_key(value: ir.Value) -> ir.Value:
    """An identifier (customer, order): whole numbers stay numbers, anything else is as_text.

    Grouping tens of millions of lines by integers is about twice as fast as by their
    text, and uses less memory; features.customer_features turns customer ids into
    text at the end, so outputs do not change.
    """
    return value if value.type().is_integer() else as_text(value)


_SPACE = " \t\n\r\v\f"


def _strip(value: ir.StringValue) -> ir.StringValue:
    """value.strip(), skipped (it is costly) when neither end is whitespace."""
    return ibis.ifelse(value.re_search(f"^[{_SPACE}]|[{_SPACE}]$"), value.strip(), value)


def as_number(value: ir.Value, decimal_comma: bool = False) -> ir.FloatingValue:
    """A float64, NULL where the text is not a number (number_formats.parse: currency signs and
    codes, spaces, accounting parentheses and thousands separators are read; `decimal_comma`:
    ',' is the decimal mark and '.' groups thousands ('1.234,50' -> 1234.5))."""
    from .number_formats import NumberFormat, parse

    return parse(value, NumberFormat("," if decimal_comma else "."))


def number_parser(formats: dict | None):
    """value -> float64, in the format decided for its column (number_formats.formats_for)."""
    from .number_formats import parse

    formats = formats or {}

    def num(value: ir.Value) -> ir.FloatingValue:
        try:
            name = value.get_name()
        except Exception:
            name = None
        return parse(value, formats.get(name))

    return num


_DMY = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})"
_ISO = r"^\s*(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})"
_DMY_FIXED = r"^\d\d[/.\-]\d\d[/.\-]\d\d\d\d"  # what _DMY reads, with 2-digit day and month, 4-digit year
_ISO_FIXED = r"^\d\d\d\d[/.\-]\d\d[/.\-]\d\d"


def as_date(value: ir.Value, date_format: str) -> ir.DateValue:
    """A date; NULL where the value is not a date. Slashed dates are read in `date_format`
    (dmy or mdy); ISO dates and dates with month names always (date_formats.py); Excel day
    numbers with date_format "excel"."""
    from .date_formats import named_date, serial_date

    dtype = value.type()
    if dtype.is_timestamp() or dtype.is_date():
        return value.cast("date")
    text = value.cast("string")
    if date_format == "excel":
        return ibis.coalesce(serial_date(text), _as_date(text, "iso"), named_date(text))
    parsed = _as_date(text, date_format)
    if date_format in ("dmy", "mdy"):  # ISO dates in a day/month column are read as ISO
        parsed = ibis.coalesce(parsed, _as_date(text, "iso"))
    # Month names only where the text has a letter (a cheap test that spares the regexes).
    named = ibis.ifelse(text.re_search("[A-Za-z]"), text, ibis.null("string"))
    return ibis.coalesce(parsed, named_date(named))


def _as_date(text: ir.StringValue, date_format: str) -> ir.DateValue:
    if date_format == "iso":
        y, m, d = (text.re_extract(_ISO, i) for i in (1, 2, 3))
    else:
        a, b, y = (text.re_extract(_DMY, i) for i in (1, 2, 3))
        d, m = (a, b) if date_format == "dmy" else (b, a)
        y = ibis.ifelse(y.length() == 2, "20" + y, y)
    iso = y + "-" + m.lpad(2, "0") + "-" + d.lpad(2, "0")
    parsed = ibis.ifelse(y.length() == 4, iso, ibis.null("string")).try_cast("date")
    # Fast path, same result: a value that starts with fixed-width digits (31/12/2024,
    # 2024-12-31 ...) is cut by position instead of by three regex extractions.
    if date_format == "iso":
        fixed, (y, m, d) = _ISO_FIXED, (text.substr(0, 4), text.substr(5, 2), text.substr(8, 2))
    else:
        fixed, (a, b, y) = _DMY_FIXED, (text.substr(0, 2), text.substr(3, 2), text.substr(6, 4))
        d, m = (a, b) if date_format == "dmy" else (b, a)
    return ibis.ifelse(text.re_search(fixed), (y + "-" + m + "-" + d).try_cast("date"), parsed)


def detect_date_format(backend, raw: ir.Table, column: str, default: str, path: str) -> str:
    """iso, dmy, mdy or excel, judged from up to 10,000 values of the column (date_formats.detect)."""
    from .date_formats import detect

    if raw[column].type().is_temporal():
        return "native"
    sample = backend.execute(raw.select(v=raw[column].cast("string")).filter(ibis._.v.notnull()).limit(10_000))
    values = [str(v).strip() for v in sample["v"] if str(v).strip()]
    if not values:
        return default if default != "auto" else "iso"
    return detect(values, column, default, path)


# ---------------------------------------------------------------------------- adapters


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def detect_schema(columns: list[str]) -> str:
    names = set(columns)
    if SHOPIFY_COLUMNS <= names:
        return "shopify"
    if all(any(alias in names for alias in aliases) for aliases in ONLINE_RETAIL_ALIASES.values()):
        return "online-retail"
    return "generic"


def _pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    for alias in aliases:
        if alias in columns:
            return alias
    return None


def _canonical(
    customer_id, order_id, order_date, product, quantity, returned_quantity, amount, unit_price, product_name,
) -> dict[str, ir.Value]:
    return {
        "customer_id": customer_id, "order_id": order_id, "order_date": order_date, "product": product,
        "quantity": quantity, "returned_quantity": returned_quantity, "amount": amount,
        "unit_price": unit_price, "product_name": product_name,
    }


def adapt_shopify(raw: ir.Table, date_format: str, formats: dict | None = None) -> dict[str, ir.Value]:
    num = number_parser(formats)
    ordered = num(raw.ordered_item_quantity)
    product = as_text(raw.product_type)
    return _canonical(
        customer_id=as_key(raw.customer_id),
        order_id=as_key(raw.order_id),
        order_date=as_date(raw.day, date_format),
        product=product,
        quantity=ordered,
        returned_quantity=num(raw.returned_item_quantity).abs(),
        amount=num(raw.total_sales),
        unit_price=ibis.ifelse(ordered > 0, num(raw.gross_sales) / ordered, ibis.null("float64"))
        if "gross_sales" in raw.columns else ibis.null("float64"),
        product_name=product,
    )


def adapt_online_retail(raw: ir.Table, date_format: str, formats: dict | None = None) -> dict[str, ir.Value]:
    num = number_parser(formats)
    col = {key: raw[_pick(raw.columns, aliases)] for key, aliases in ONLINE_RETAIL_ALIASES.items()}
    invoice = as_text(col["invoice"])
    quantity = num(col["quantity"])
    price = num(col["unit_price"])
    # A cancellation ('C' invoice, negative quantity) returns units; it is no purchase.
    cancelled = invoice.upper().startswith("C") | (quantity < 0)
    stock = as_text(col["stock_code"])
    return _canonical(
        customer_id=as_text(col["customer"]),
        order_id=invoice,
        order_date=as_date(col["invoice_date"], date_format),
        product=stock,
        quantity=ibis.ifelse(cancelled, 0.0, quantity),
        returned_quantity=ibis.ifelse(cancelled, quantity.abs(), 0.0),
        amount=ibis.ifelse(cancelled, 0.0, quantity * price),
        unit_price=price,
        product_name=ibis.coalesce(as_text(col["description"]), stock),
    )


def generic_mapping(columns: list[str], mapping: dict[str, str], path: str) -> dict[str, str]:
    """canonical -> source column, from --map and, where not given, recognised names."""
    from .headers import find_column

    mapping = {k: find_column(columns, v) or v for k, v in mapping.items()}  # ' Price ' for price
    for canonical, source in mapping.items():
        if canonical not in CANONICAL:
            raise CustsegError(f"--map {canonical}={source}: {canonical!r} is not a canonical column; "
                               f"use one of: {', '.join(CANONICAL)}.")
        if source not in columns:
            raise CustsegError(f"--map {canonical}={source}: {path} has no column {source!r}; "
                               f"its columns are: {', '.join(columns)}.")
    resolved = dict(mapping)
    by_norm = {}
    for column in columns:
        by_norm.setdefault(_norm(column), column)
    taken = set(resolved.values())
    for canonical, guesses in GENERIC_GUESSES.items():
        if canonical in resolved:
            continue
        for guess in guesses:
            column = by_norm.get(guess)
            if column is not None and column not in taken:
                resolved[canonical] = column
                taken.add(column)
                break
    return resolved


SHARED_WARNING = "one column feeds two roles"
# Canonical columns one source column may sensibly feed together.
_RELATED = ({"customer_id", "order_id"}, {"quantity", "returned_quantity"}, {"amount", "unit_price"})


def shared_column_warnings(resolved: dict[str, str]) -> list[str]:
    """A source column mapped to two unrelated canonical columns (customer_id and amount): a
    likely --map mistake, said rather than refused (it can be meant)."""
    by_source: dict[str, list[str]] = {}
    for canonical, source in resolved.items():
        by_source.setdefault(source, []).append(canonical)
    out = []
    for source, roles in by_source.items():
        if len(roles) > 1 and not any(set(roles) <= pair for pair in _RELATED):
            out.append(f"{SHARED_WARNING}: column {source!r} is used as {' and '.join(sorted(roles))}; "
                       "check the --map options")
    return out


def adapt_generic(raw: ir.Table, resolved: dict[str, str], date_format: str, formats: dict | None = None) -> dict[str, ir.Value]:
    num = number_parser(formats)
    get = {name: raw[column] for name, column in resolved.items()}
    quantity = num(get["quantity"]) if "quantity" in get else None
    unit_price = num(get["unit_price"]) if "unit_price" in get else ibis.null("float64")
    amount = num(get["amount"]) if "amount" in get else quantity * unit_price
    if quantity is None:
        # Without quantities every line with a non-negative amount is a purchase of one
        # unit; a negative amount (a refund) is no purchase but still counts in spending.
        quantity = ibis.ifelse(amount < 0, 0.0, 1.0)
    order_date = as_date(get["order_date"], date_format)
    customer = as_key(get["customer_id"])
    product = as_text(get["product"]) if "product" in get else ibis.null("string")
    return _canonical(
        customer_id=customer,
        # Without an order id an order is one customer's lines on one calendar day.
        order_id=as_key(get["order_id"]) if "order_id" in get else order_date.cast("string"),
        order_date=order_date,
        product=product,
        quantity=quantity,
        returned_quantity=num(get["returned_quantity"]).abs() if "returned_quantity" in get
        else ibis.literal(0.0),
        amount=amount,
        unit_price=unit_price,
        product_name=product,
    )


def _missing_error(path: str, schema: str, columns: list[str], needed: list[str]) -> CustsegError:
    return CustsegError(
        f"{path}: missing column(s) {', '.join(needed)} for the {schema} schema; found: {', '.join(columns)}. "
        "Map them with --map canonical=COLUMN (e.g. --map customer_id=Client)."
    )


def is_table_like(data) -> bool:
    """A DataFrame (pandas, Arrow, Spark) rather than paths."""
    return hasattr(data, "columns") and not isinstance(data, (str, bytes, os.PathLike))


def read_source(backend, spec: SourceSpec, typed: bool = False) -> Source:
    """Read the input files and return their canonical order lines (_read_source); files whose line
    endings change beyond the sniffed 64 KB are read again in DuckDB's lenient mode (text_files.py)."""
    try:
        return _read_source(backend, spec, typed)
    except Exception as exc:
        if "state machine reached an invalid state" not in str(exc) or getattr(backend, "_custseg_lenient", False):
            raise
        backend._custseg_lenient = True
        return _read_source(backend, spec, typed)


def _read_source(backend, spec: SourceSpec, typed: bool = False) -> Source:
    """Read the input files and return their canonical order lines.

    `typed`: read a CSV's clean id and number columns as typed columns (typed_csv.py): faster,
    but the caller must then check typed_csv.cast_failed and read again without when it did."""
    _check_spec(spec)
    warnings: list[str] = []
    files = expand_inputs(spec.inputs, warnings) if backend.name != "pyspark" else expand_spark_inputs(spec.inputs)
    if not files:
        raise CustsegError("no input file given; name one or more CSV, Parquet or .xlsx files.")
    raw, columns = read_raw(backend, files, spec.sheet)
    typed = typed and file_kind(files[0]) == "csv"
    try:
        source = adapt(backend, raw, columns, spec, files, scan=not typed)
    except CustsegError as exc:
        sheets = _other_sheets(files[0]) if spec.sheet is None and "missing column" in str(exc) else []
        if sheets:  # the columns may be on another sheet of the workbook
            raise CustsegError(f"{exc} The workbook has the sheets {', '.join(sheets)}: pick one with --sheet.") \
                from exc
        raise
    if typed:
        source = _read_typed(backend, source, spec, files) or adapt(backend, raw, columns, spec, files)
    source.warnings = warnings + source.warnings
    return source


def _read_typed(backend, source: Source, spec: SourceSpec, files: list[str]) -> Source | None:
    """The same source with the columns the files' samples allow read as typed columns (None: no
    column qualifies). The caller must check `typed_csv.cast_failed` once the lines are read."""
    from .typed_csv import column_roles

    roles = column_roles(source.schema, source.columns, spec.mapping)
    before = getattr(backend, "_custseg_csv_reads", 0)
    raw, columns = read_raw(backend, files, spec.sheet, roles, source.date_format)
    after = getattr(backend, "_custseg_csv_reads", 0)
    if all(raw[c].type().is_string() for c in roles if c in raw.columns):
        return None
    fixed = SourceSpec(inputs=spec.inputs, schema=source.schema, mapping=spec.mapping, sheet=spec.sheet,
                       date_format=source.date_format)
    typed = adapt(backend, raw, columns, fixed, files)
    typed.notes = source.notes
    typed.warnings = source.warnings
    typed.typed_rejects = [f"{REJECTS_PREFIX}{n}" for n in range(before + 1, after + 1)]
    typed.typed_dates = any(raw[c].type().is_date() for c, role in roles.items() if role == "date" and c in raw.columns)
    return typed


def _other_sheets(path: str) -> list[str]:
    """The sheet names of a workbook with more than one sheet (else [])."""
    if file_kind(path) != "xlsx":
        return []
    try:
        import fastexcel

        names = list(fastexcel.read_excel(path).sheet_names)
    except Exception:
        return []
    return names if len(names) > 1 else []


def read_source_table(backend, data, spec: SourceSpec) -> Source:
    """Canonical order lines from an in-memory table (pandas, Arrow or a Spark DataFrame)."""
    _check_spec(spec)
    if backend.name == "pyspark" and type(data).__module__.startswith("pyspark"):
        name = f"custseg_input_{id(data)}"
        data.createOrReplaceTempView(name)
        raw = backend.table(name)
    else:
        raw = ibis.memtable(data)
    columns = [str(c) for c in raw.columns]
    return adapt(backend, raw, columns, spec, [])


def _check_spec(spec: SourceSpec) -> None:
    if spec.schema not in SCHEMAS:
        raise CustsegError(f"--schema {spec.schema!r} is unknown; use one of: {', '.join(SCHEMAS)}.")
    if spec.date_format not in DATE_FORMATS:
        raise CustsegError(f"--date-format {spec.date_format!r} is unknown; use one of: {', '.join(DATE_FORMATS)}.")


def adapt(backend, raw: ir.Table, columns: list[str], spec: SourceSpec, files: list[str],
          scan: bool = True, formats: dict | None = None) -> Source:
    """Apply the schema adapter (detected from the columns unless given)."""
    path = files[0] if files else "the data"
    schema = spec.schema
    if schema == "auto":
        schema = "generic" if spec.mapping else detect_schema(columns)
    elif spec.mapping and schema != "generic":
        raise CustsegError(f"--map works with the generic schema, not with --schema {schema}; drop one of them.")

    notes: list[str] = []
    if schema == "shopify":
        missing = sorted(SHOPIFY_COLUMNS - set(columns))
        if missing:
            raise _missing_error(path, schema, columns, missing)
        date_column, default_format, level = "day", "dmy", "order"
        provided = set(CANONICAL) - {"unit_price"}
    elif schema == "online-retail":
        missing = [aliases[0] for aliases in ONLINE_RETAIL_ALIASES.values() if not _pick(columns, aliases)]
        if missing:
            raise _missing_error(path, schema, columns, missing)
        date_column, default_format, level = _pick(columns, ONLINE_RETAIL_ALIASES["invoice_date"]), "mdy", "customer"
        provided = set(CANONICAL)
    else:
        resolved = generic_mapping(columns, spec.mapping, path)
        needed = [c for c in ("customer_id", "order_date") if c not in resolved]
        if "amount" not in resolved and not {"quantity", "unit_price"} <= set(resolved):
            needed.append("amount (or quantity and unit_price)")
        if needed:
            raise _missing_error(path, schema, columns, needed)
        notes += shared_column_warnings(resolved)
        date_column, default_format, level = resolved["order_date"], "auto", "order"
        provided = set(resolved) | ({"amount"} if "amount" not in resolved else set())
        notes.append("columns: " + ", ".join(f"{k}={v}" for k, v in sorted(resolved.items())))

    from .number_formats import formats_for
    from .typed_csv import column_roles

    delimiter = sniff_csv(files[0]).delimiter if files and file_kind(files[0]) == "csv" else None
    number_columns = [c for c, role in column_roles(schema, columns, spec.mapping).items() if role == "number"]
    # number_formats.py; `scan` False: from the sample alone (a typed reading that follows scans its text columns)
    if formats is None:  # given: those of an earlier reading of the same files (dropped.py)
        formats = formats_for(backend, raw, number_columns, delimiter, path, notes, scan)
    date_format = spec.date_format
    if date_format == "auto":
        date_format = detect_date_format(backend, raw, date_column, default_format, path)
    if schema == "shopify":
        values = adapt_shopify(raw, date_format, formats)
    elif schema == "online-retail":
        values = adapt_online_retail(raw, date_format, formats)
    else:
        values = adapt_generic(raw, resolved, date_format, formats)
    lines = raw.select(**values)
    parsed_from = _parsed_from(schema, columns, resolved if schema == "generic" else {}, date_column)
    warnings = [n for n in notes if n.startswith(SHARED_WARNING) or n.startswith(path + ": column")]
    return Source(
        lines=lines, schema=schema, files=files, columns=columns, provided=provided,
        return_rate_level=level, date_format=date_format, notes=[n for n in notes if n not in warnings],
        warnings=warnings, parsed_from=parsed_from, number_formats=formats,
    )


def _parsed_from(schema: str, columns: list[str], resolved: dict[str, str], date_column: str) -> dict[str, str]:
    """canonical -> the source column it is parsed from (for parse_failures.py)."""
    if schema == "shopify":
        return {"order_date": date_column, "amount": "total_sales", "quantity": "ordered_item_quantity",
                "returned_quantity": "returned_item_quantity"}
    if schema == "online-retail":
        return {"order_date": date_column, "quantity": _pick(columns, ONLINE_RETAIL_ALIASES["quantity"]),
                "unit_price": _pick(columns, ONLINE_RETAIL_ALIASES["unit_price"])}
    return {k: v for k, v in resolved.items()
            if k in ("order_date", "amount", "quantity", "returned_quantity", "unit_price")}
