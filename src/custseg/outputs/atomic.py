"""The one atomic writer: outputs appear complete or not at all.

Everything is written into a temporary directory (or file) beside the target and renamed into
place when complete; an error or an interrupt removes the temporary one and leaves a previous
output whole. Signals are deferred while the rename and the clean-up run (runtime/signals.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import CustsegError
from ..runtime.signals import deferred


@contextlib.contextmanager
def atomic_directory(target: Path, error: Callable[[OSError], CustsegError]) -> Iterator[Path]:
    """A temporary directory to write into, renamed to `target` (replacing it) when the block ends
    without error; an OSError becomes `error(exc)`."""
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        with deferred():  # the rename of the finished directory is never cut in half
            replace_dir(tmp, target)
    except OSError as exc:
        with deferred():
            shutil.rmtree(tmp, ignore_errors=True)
        raise error(exc) from exc
    except BaseException:
        with deferred():  # a second Ctrl-C must not leave the temporary directory half removed
            shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: Path, error: Callable[[OSError], CustsegError] | None = None) -> Iterator[Path]:
    """A temporary file path to write, renamed to `target` when the block ends without error; an
    OSError becomes `error(exc)` (raised as it is without `error`)."""
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    try:
        yield tmp
        with deferred():
            os.replace(tmp, target)
    except OSError as exc:
        with deferred():
            tmp.unlink(missing_ok=True)
        if error is None:
            raise
        raise error(exc) from exc
    except BaseException:
        with deferred():
            tmp.unlink(missing_ok=True)
        raise


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished temporary directory into place, replacing an old one."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
