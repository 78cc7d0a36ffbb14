"""A file that is not the UTF-8 its first 64 KB suggested.

The encoding is sniffed from a file's first 64 KB (sources.sniff_csv): reading a whole file
first would cost ~0.25 s per million lines. A Latin-1 or cp1252 export whose first accented
byte comes later is read as UTF-8, and DuckDB records the lines with invalid bytes in its
rejects tables ("INVALID ENCODING") instead of reading them. Those lines are not malformed:
the file is read again in its single-byte encoding (found_misdecoded -> remember).
"""

from __future__ import annotations

import os

from .errors import CustsegError

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


def misdecoded_files(backend, error_type: str = "INVALID ENCODING") -> list[str]:
    """Files (as given) in which the CSV reader met bytes that are not UTF-8 (DuckDB), or another
    error_type ("LINE SIZE OVER MAXIMUM")."""
    from .sources import REJECTS_PREFIX

    con = getattr(backend, "con", None)
    if con is None:
        return []
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE ?", [REJECTS_PREFIX + "%"]).fetchall()]
    except Exception:
        return []
    originals = getattr(backend, "_custseg_originals", {})
    found: list[str] = []
    for name in names:
        scans = name.replace(REJECTS_PREFIX, "custseg_reject_scans_")
        try:
            rows = con.execute(
                f'SELECT DISTINCT s.file_path FROM "{name}" e JOIN "{scans}" s '
                "ON e.scan_id = s.scan_id AND e.file_id = s.file_id WHERE e.error_type = ?", [error_type]
            ).fetchall()
        except Exception:
            continue
        for (path,) in rows:
            path = originals.get(path, path)
            if path not in found:
                found.append(path)
    return found


def fix_misdecoded(backend, paths: list[str]) -> list[str]:
    """Remember the single-byte encoding of files read as UTF-8 by mistake; the notes to show.
    A file that was already read in a single-byte encoding is refused (it is no text)."""
    from .sources import _single_byte_encoding

    notes = []
    for path in paths:
        if known_encoding(path):
            raise CustsegError(f"{path}: bytes that are text in no encoding custseg knows; save the file as "
                               "UTF-8 and run again.")
        encoding = _single_byte_encoding(path)
        remember(path, encoding)
        notes.append(f"{path}: not UTF-8 beyond its first 64 KB; read again as {encoding}")
    return notes


def drop_all_rejects(backend) -> None:
    """Forget every rejects table (a reading abandoned as a whole)."""
    from .sources import REJECTS_PREFIX

    con = backend.con
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE ? OR table_name LIKE ?",
        [REJECTS_PREFIX + "%", "custseg_reject_scans_%"]).fetchall()]
    for name in names:
        con.execute(f'DROP TABLE IF EXISTS "{name}"')


def long_lines(backend) -> list[str]:
    """Files with a line longer than the reader's limit; the limit is raised for the next reading
    (a valid 5 MB field must not drop its line). Once raised, a longer line stays malformed."""
    if getattr(backend, "_custseg_long_lines", False):
        return []
    found = misdecoded_files(backend, "LINE SIZE OVER MAXIMUM")
    if found:
        backend._custseg_long_lines = True
    return found
