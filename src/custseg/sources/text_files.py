"""What a CSV file's bytes look like before DuckDB reads it: compressed (gzip), UTF-16, a zip
archive, blank lines before the header, line endings that change within the file.

DuckDB reads gzip itself (by the .gz suffix); UTF-16 is transcoded to a UTF-8 copy (as cp1252
is, the engine's as_utf8, engines/duckdb.py); a zip archive is named as such; leading blank lines are skipped; a file
whose lines end in different ways (LF and CRLF) is read with DuckDB's lenient mode, which
accepts both (its strict mode stops with "state machine reached an invalid state").
"""

from __future__ import annotations

import codecs
import gzip
import os
import zipfile

from ..errors import CustsegError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_bytes(path: str):
    """The file's bytes, decompressed when it is gzip."""
    if is_gzip(path):
        if not path.lower().endswith(".gz"):
            raise CustsegError(f"{path}: a gzip-compressed file without the .gz suffix; name it .csv.gz or "
                               "decompress it (gunzip).")
        return gzip.open(path, "rb")
    return open(path, "rb")


def head(path: str, size: int = 1 << 16) -> bytes:
    try:
        with open_bytes(path) as fh:
            return fh.read(size)
    except (OSError, EOFError) as exc:
        raise CustsegError(f"{path}: cannot be decompressed ({exc}); export it again.") from exc


def utf16_encoding(raw: bytes) -> str | None:
    """'utf-16' when the bytes are UTF-16 text (a BOM, or every other byte zero), else None."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = raw[:4096]
    if len(sample) >= 8:
        odd_zeros = sample[1::2].count(0) / (len(sample) // 2)
        even_zeros = sample[0::2].count(0) / ((len(sample) + 1) // 2)
        if odd_zeros > 0.9 and even_zeros < 0.1:
            return "utf-16-le"
        if even_zeros > 0.9 and odd_zeros < 0.1:
            return "utf-16-be"
    return None


def refuse_zip(path: str) -> None:
    """A zip archive that is not an .xlsx workbook: say what it holds."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise CustsegError(f"{path}: a damaged zip archive or workbook ({exc}); export it again.") from exc
    if any(n.startswith("xl/") for n in names):
        return  # a workbook: read as .xlsx
    inside = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    raise CustsegError(f"{path}: a zip archive ({inside or 'empty'}), not a CSV, Parquet or .xlsx file; "
                       "unzip it and give the files inside.")


def leading_blank_lines(text: str) -> int:
    """Blank (or whitespace-only) lines before the header."""
    count = 0
    for line in text.splitlines():
        if line.strip():
            break
        count += 1
    return count


def mixed_line_endings(raw: bytes) -> bool:
    """Lines that end in different ways (LF, CRLF, CR) within the bytes."""
    crlf = raw.count(b"\r\n")
    lf = raw.count(b"\n") - crlf
    cr = raw.count(b"\r") - crlf
    return sum(1 for n in (crlf, lf, cr) if n) > 1


def file_size(path: str) -> int:
    return os.path.getsize(path)
