"""Stages of a run: each timed, each announced to a progress callback (kind, message)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

ProgressCallback = Callable[[str, str], None]


class Stages:
    """Times each stage and tells a progress callback when one starts and ends."""

    def __init__(self, progress: ProgressCallback | None = None):
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextlib.contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        if self.progress:
            self.progress("start", f"{name}: {message}")
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 3)
        if self.progress:
            self.progress("end", f"{name}: done in {self.seconds[name]:.1f} s")

    def note(self, message: str) -> None:
        if self.progress:
            self.progress("note", message)

    def warn(self, message: str) -> None:
        """Something the user should know even with --quiet (e.g. dropped lines)."""
        if self.progress:
            self.progress("warn", message)
