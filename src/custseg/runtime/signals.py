"""Ctrl-C and SIGTERM: stop promptly, even inside a long DuckDB query.

Python runs a signal handler only between bytecodes of the main thread, so a query
that runs for minutes inside DuckDB would not notice the signal until it ends. The
console script therefore installs handlers that raise KeyboardInterrupt and a wake-up
file descriptor: the C-level handler writes the signal number to it, and a watcher
thread reading it interrupts every open DuckDB connection at once. The query then
fails in the main thread, the Python handler raises KeyboardInterrupt, and the output
writer removes its temporary directory.

Exit codes: 130 for SIGINT and 143 for SIGTERM (128 + the signal number, as shells do).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import weakref
from collections.abc import Iterator

_connections: "weakref.WeakSet" = weakref.WeakSet()
_fallback: list = []          # connections that cannot be weakly referenced (held until closed)
_received: list[int] = []     # signals received, in order
_installed = False
_deferring = [0]              # > 0 while `deferred` holds interrupts back
_pending: list[int] = []      # signals held back by `deferred`


def register(connection) -> None:
    """Interrupt this DuckDB connection when SIGINT or SIGTERM arrives."""
    try:
        _connections.add(connection)
    except TypeError:
        _fallback.append(connection)


def received() -> int | None:
    """The first signal received since `install`, or None."""
    return _received[0] if _received else None


def exit_code() -> int:
    """The conventional exit code for the received signal (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + (received() or signal.SIGINT)


def _interrupt_all() -> None:
    for connection in list(_connections) + _fallback:
        with contextlib.suppress(Exception):
            connection.interrupt()


def _handler(signum, frame):
    _received.append(signum)
    if _deferring[0]:
        _pending.append(signum)
        return
    raise KeyboardInterrupt


def _watch(fd: int) -> None:
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        if any(byte in (signal.SIGINT, signal.SIGTERM) for byte in data):
            _interrupt_all()


def install() -> None:
    """Handle SIGINT and SIGTERM in this (main) thread; call once, from the console script."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read_fd,), name="custseg-signals", daemon=True).start()
    _installed = True


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold the KeyboardInterrupt of SIGINT/SIGTERM back until a few file operations that must
    not be cut in half (a rename, a clean-up) are done; it is raised right after."""
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
        if not _deferring[0] and _pending:
            _pending.clear()
            raise KeyboardInterrupt
