"""Where the order lines are: paths, globs and directories (local files), and URLs (read by Spark)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import CustsegError
from .text_files import refuse_zip
from .walk import data_files_only, glob_files

READABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xlsm")


def expand_inputs(inputs: list[str | os.PathLike], warnings: list[str] | None = None) -> list[str]:
    """Files named by paths, globs and directories, in a stable order (walk.py: no endless walk
    through symbolic link loops; files that are no data in a directory or glob skipped, said in
    `warnings`)."""
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
        refuse_zip(path)  # a zip archive that is no workbook is named as such
        return "xlsx"
    return "csv"


URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:(?!\\)")  # scheme:..., not a Windows drive (C:\\)


def is_url(path: str) -> bool:
    """A path for Spark's file systems (file:, hdfs://, s3a://, abfss://, dbfs:/ ...), not a local name."""
    return bool(URL_RE.match(str(path))) and not re.match(r"^[a-zA-Z]:[\\/]", str(path))


def url_kind(path: str) -> str:
    """csv or parquet, from the suffix; a directory or a pattern without suffix is taken as Parquet (a lake)."""
    suffix = Path(str(path).rstrip("/")).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt", ".gz"):
        return "csv"
    if suffix in (".xlsx", ".xlsm", ".xls"):
        raise CustsegError(f"{path}: a workbook is read from local disk only; copy it here or export it as CSV.")
    return "parquet"


def expand_url_inputs(inputs: list[str | os.PathLike]) -> list[str]:
    """Local paths checked as for DuckDB; URLs passed to Spark as they are (Spark globs and lists them)."""
    local = [item for item in inputs if not is_url(str(item))]
    files = expand_inputs(local) if local else []
    return files + [str(item) for item in inputs if is_url(str(item))]
