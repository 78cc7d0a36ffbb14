"""Progress of a run on stderr: what each stage is doing, for how long, and what it counted.

On a terminal the running stage is a spinner line with its elapsed time and, while DuckDB
runs a query, the share of that query done; it is replaced by a line saying how long the
stage took. Notes (lines read, customers, k) are printed as they come. Elsewhere (a log
file, CI) the same start, note and end lines are printed without animation.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner


class StageDisplay:
    """A progress callback for pipeline.Stages: call it with (kind, message).

    kind is "start" (a stage begins: "name: what it does"), "end" ("name: done in N s")
    or "note" (a count or a decision). Nothing is shown when `quiet` is true.
    """

    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self._live: Live | None = None
        self._spinner = Spinner("dots", text="")
        self._message = ""
        self._started = 0.0
        self._engine = None

    def watch_engine(self, query_progress) -> None:
        """Show the share done of the engine's running query: `query_progress()` gives it in percent
        (pipeline.run's `watch`; Engine.query_progress)."""
        self._engine = query_progress

    def __call__(self, kind: str, message: str) -> None:
        if self.quiet:
            return
        if kind == "start":
            self._stop()
            self._message, self._started = message, time.perf_counter()
            if self.console.is_terminal:
                self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
                self._live.start()
            else:
                self.console.print(f"… {message}", markup=False, highlight=False)
        elif kind == "end":
            self._stop()
            self.console.print(f"[green]✓[/green] {message}", highlight=False)
        else:
            self.console.print(f"  {message}", markup=False, highlight=False)

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _percent(self) -> float | None:
        if self._engine is None:
            return None
        try:
            value = float(self._engine())
        except Exception:
            return None
        return value if 0 <= value <= 100 else None

    def __rich__(self) -> Spinner:
        elapsed = time.perf_counter() - self._started
        percent = self._percent()
        done = f", query {percent:.0f}% done" if percent is not None else ""
        self._spinner.update(text=f"{self._message} [dim]({elapsed:,.0f} s{done})[/dim]")
        return self._spinner
