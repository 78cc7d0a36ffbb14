"""Where an output may be written: never over an input, never over a directory that is not ours.

Rules (every command that writes: run, demo, predict, compare):
- an output that is, contains or lies inside an input (a file, a directory, a glob's base
  directory, a model or an earlier run) is refused before any work;
- an existing, non-empty directory is replaced (with --force) only when it recognisably holds a
  custseg output: a run's summary.json, or a comparison's migration.csv and compare.html;
- the home directory, a file-system root, the current directory and any directory that holds
  one of them are never replaced.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from ..errors import CustsegError

RUN_MARK = "summary.json"
COMPARE_MARKS = ("migration.csv", "compare.html")


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def input_paths(inputs: Iterable[object]) -> list[Path]:
    """The real paths an output must keep clear of: each file or directory, and a glob's fixed
    leading directory (everything before its first wildcard). URLs, tables and data frames are
    not paths and are skipped."""
    paths: list[Path] = []
    for item in inputs:
        if item is None or not isinstance(item, (str, os.PathLike)):
            continue
        text = os.fspath(item)
        if "://" in text:
            continue
        if glob.has_magic(text):
            parts = Path(text).parts
            fixed = [p for p in _until_magic(parts)]
            text = str(Path(*fixed)) if fixed else "."
        paths.append(_real(text))
    return paths


def _until_magic(parts: tuple[str, ...]):
    for part in parts:
        if glob.has_magic(part):
            return
        yield part


def _overlap(out: Path, inp: Path) -> str | None:
    if out == inp:
        return "is"
    if inp.is_relative_to(out):
        return "contains"
    if out.is_relative_to(inp):
        return "lies inside"
    return None


def check_clear_of_inputs(out: str | os.PathLike, inputs: Iterable[object], option: str = "--out") -> None:
    """Refuse an output path that is, contains or lies inside one of the inputs."""
    real = _real(out)
    for inp in input_paths(inputs):
        how = _overlap(real, inp)
        if how is not None:
            raise CustsegError(f"{out}: the output {how} the input {inp}; custseg never writes over its input: "
                               f"choose another {option}.")


def is_custseg_output(directory: Path) -> bool:
    """A directory written by custseg: a run (summary.json with a customer count) or a comparison."""
    summary = directory / RUN_MARK
    if summary.is_file():
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and "customers" in data
    return all((directory / mark).is_file() for mark in COMPARE_MARKS)


def _protected(real: Path) -> str | None:
    """Why a directory may never be replaced, or None."""
    home = _real(Path.home())
    if real == Path(real.anchor):
        return "is a file-system root"
    if real == home or home.is_relative_to(real):
        return "is or holds your home directory"
    cwd = _real(os.getcwd())
    if cwd.is_relative_to(real):
        return "is or holds the current directory"
    return None


def check_replaceable_dir(path: str | os.PathLike, force: bool, option: str = "--out") -> None:
    """An existing output directory may be written only if empty, or replaced with --force only if it
    holds a custseg output and is not a protected place."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise CustsegError(f"{path}: exists and is not a directory; choose another {option}.")
    why = _protected(_real(path))
    if why is not None:
        raise CustsegError(f"{path}: {why}; custseg writes its outputs into a directory of their own: choose "
                           f"another {option}, e.g. a new sub-directory.")
    if not any(path.iterdir()):
        return
    if not is_custseg_output(path):
        raise CustsegError(f"{path}: the directory holds files that are not a custseg output; custseg replaces only "
                           f"its own output directories: choose another {option} (a new or empty directory).")
    if not force:
        raise CustsegError(f"{path}: the output directory is not empty; use --force to replace it or choose "
                           f"another {option}.")


def check_target(path: str | os.PathLike, force: bool, inputs: Iterable[object] = ()) -> Path:
    """Refuse an output directory over an input, or one that is not ours to replace;
    check the parent is writable (a probe directory written and removed)."""
    path = Path(path)
    check_clear_of_inputs(path, inputs)
    check_replaceable_dir(path, force)
    parent = path.resolve().parent
    if not parent.exists():
        raise CustsegError(f"{parent}: no such directory for --out; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CustsegError(f"{parent}: not writable; choose another --out.")
    probe_writable(parent)
    return path


def probe_writable(directory: Path) -> None:
    """Create and remove a scratch directory: finds a read-only or full disk before a long run
    (os.access alone says yes to root on a read-only mount)."""
    try:
        scratch = tempfile.mkdtemp(prefix=".custseg-probe-", dir=directory)
        try:
            with open(os.path.join(scratch, "probe"), "wb") as fh:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except OSError as exc:
        raise write_error(directory, exc) from exc


def write_error(target: Path, exc: OSError) -> CustsegError:
    """One line for an OSError met while writing the outputs."""
    if exc.errno == errno.ENOSPC:
        return CustsegError(f"{target}: the disk is full ({exc.strerror}); free space or choose another --out.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CustsegError(f"{target}: not writable ({exc.strerror}); choose another --out.")
    return CustsegError(f"{target}: cannot write the outputs ({exc.strerror or exc}); free space or choose "
                        "another --out.")
