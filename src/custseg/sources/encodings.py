"""A file that is not the UTF-8 its first 64 KB suggested.

The encoding is sniffed from a file's first 64 KB (sources/csv_dialect.sniff_csv): reading a whole file
first would cost ~0.25 s per million lines. A Latin-1 or cp1252 export whose first accented
byte comes later is read as UTF-8, and DuckDB records the lines with invalid bytes in its
rejects tables ("INVALID ENCODING") instead of reading them. Those lines are not malformed:
the file is read again in its single-byte encoding (the engine finds the files, fix_misdecoded remembers their encoding).
"""

from __future__ import annotations

import os

import re

from ..errors import CustsegError
from .text_files import open_bytes

# (real path, size, mtime) -> the encoding found by a reading (it overrides the sniffed one).
_KNOWN: dict[tuple[str, int, int], str] = {}


def _key(path: str) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.realpath(path), st.st_size, st.st_mtime_ns


def known_encoding(path: str) -> str | None:
    key = _key(path)
    return _KNOWN.get(key) if key else None


def remember(path: str, encoding: str) -> None:
    key = _key(path)
    if key:
        _KNOWN[key] = encoding


def fix_misdecoded(paths: list[str]) -> list[str]:
    """Remember the single-byte encoding of files read as UTF-8 by mistake; the notes to show.
    A file that was already read in a single-byte encoding is refused (it is no text)."""
    notes = []
    for path in paths:
        if known_encoding(path):
            raise CustsegError(f"{path}: bytes that are text in no encoding custseg knows; save the file as "
                               "UTF-8 and run again.")
        encoding = single_byte_encoding(path)
        remember(path, encoding)
        notes.append(f"{path}: not UTF-8 beyond its first 64 KB; read again as {encoding}")
    return notes


def single_byte_encoding(path: str) -> str:
    """latin-1, or cp1252 (Windows) when the file has bytes 0x80-0x9F (€, curly quotes, dashes),
    which Latin-1 leaves to control characters and DuckDB refuses."""
    pattern = re.compile(rb"[\x80-\x9f]")
    with open_bytes(path) as fh:
        while chunk := fh.read(1 << 22):
            if pattern.search(chunk):
                return "cp1252"
    return "latin-1"
