"""Finding the input files named by globs and directories, safely.

A recursive glob (`dir/**/*.csv`) follows symbolic links; a link back to an ancestor (`a -> .`)
makes Python's glob list paths without end. Here directories are walked once each, recognised
by the (device, inode) of their real path, with a bound on the directories visited; what was
skipped is said. Files that are no order data (a README.md, notes.txt) found in a directory or
by a glob are skipped with a warning rather than read as a CSV file (and blamed on another file).
"""

from __future__ import annotations

import fnmatch
import os
import re

MAX_DIRECTORIES = 100_000   # directories visited by one recursive glob
MAX_DEPTH = 64
# What a directory or a glob may contribute (a file named explicitly is read whatever its name).
DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".xlsx", ".xlsm", ".csv.gz", ".tsv.gz")


def is_data_name(name: str) -> bool:
    return name.lower().endswith(DATA_SUFFIXES) and not name.startswith((".", "_"))


def _has_magic(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _part_regex(part: str) -> re.Pattern:
    # fnmatch.translate lets '*' cross '/', harmless here: a part never holds a '/'.
    return re.compile(fnmatch.translate(part))


def glob_files(pattern: str, warnings: list[str]) -> list[str]:
    """Regular files matching a glob (`**` = any number of directories), each listed once,
    without entering a directory already visited (a symbolic link loop)."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    while parts and not _has_magic(parts[0]):
        fixed.append(parts.pop(0))
    if not parts:
        return [pattern] if os.path.isfile(pattern) else []
    root = os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else ".")
    visited: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    loops: list[str] = []
    found: list[str] = []
    bounded = [False]

    def shown(directory: str, name: str) -> str:
        return name if directory == "." and not fixed else os.path.join(directory, name)

    def listing(directory: str) -> list[os.DirEntry]:
        try:
            with os.scandir(directory) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError:
            return []

    def enter(directory: str) -> bool:
        try:
            st = os.stat(directory)
        except OSError:
            return False
        key = (st.st_dev, st.st_ino)
        if key in visited:
            loops.append(directory)
            return False
        if len(visited) >= MAX_DIRECTORIES:
            bounded[0] = True
            return False
        visited.add(key)
        return True

    def match(directory: str, rest: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            bounded[0] = True
            return
        part, tail = rest[0], rest[1:]
        if part == "**":
            if not enter(directory):
                return
            match(directory, tail or ["*"], depth)  # '**' as no directory at all
            for entry in listing(directory):
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=True):
                    match(shown(directory, entry.name), rest, depth + 1)
            return
        if _has_magic(part):
            regex = _part_regex(part)
            names = [e.name for e in listing(directory)
                     if regex.match(e.name) and (part.startswith(".") or not e.name.startswith("."))]
        else:
            names = [part] if os.path.lexists(os.path.join(directory, part)) else []
        for name in names:
            path = shown(directory, name)
            if tail:
                if os.path.isdir(path):
                    match(path, tail, depth + 1)
            elif os.path.isfile(path):
                st = os.stat(path)
                if (st.st_dev, st.st_ino) not in seen_files:
                    seen_files.add((st.st_dev, st.st_ino))
                    found.append(path)

    match(root, parts, 0)
    if loops:
        warnings.append(f"{pattern}: skipped {len(loops):,} director{'y' if len(loops) == 1 else 'ies'} reached "
                        f"again through a symbolic link (e.g. {loops[0]}); each directory is read once")
    if bounded[0]:
        warnings.append(f"{pattern}: stopped after {MAX_DIRECTORIES:,} directories or {MAX_DEPTH} levels; "
                        "name the directories to read more precisely")
    return sorted(found)


def data_files_only(files: list[str], origin: str, warnings: list[str]) -> list[str]:
    """The files that look like order data; the others (README.md, notes.txt) skipped, with a warning."""
    kept = [f for f in files if is_data_name(os.path.basename(f))]
    skipped = [f for f in files if f not in kept]
    if skipped:
        names = ", ".join(os.path.basename(f) for f in skipped[:3]) + (", …" if len(skipped) > 3 else "")
        warnings.append(f"{origin}: skipped {len(skipped)} file(s) that are not CSV, Parquet or .xlsx data "
                        f"({names}); name a file explicitly to read it")
    return kept
