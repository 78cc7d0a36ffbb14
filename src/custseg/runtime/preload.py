"""Import the modules of the later stages in the background while the engine reads the data.

pandas, SciPy, scikit-learn, kneed and jinja2 take 1-3 s to import: as long as reading a
million order lines. The flow (pipeline.py) imports only what reading, cleaning and the features
need before it starts the engine, and the later stages' modules where they are used; the engine
reads without holding Python's interpreter lock, so this thread imports them meanwhile, in the
order the flow needs them. A module the main thread asks for while this thread imports it is
waited for (Python's per-module import locks; the import graph has no circles, so the two threads
cannot wait on each other). Any failure is ignored here and met again, with its real message,
where the module is imported for use.
"""

from __future__ import annotations

import importlib
import threading

#: Not a module: the step that finds the native thread pools (runtime/parallel.thread_pools).
THREAD_POOLS = "(thread pools)"
MODULES = (
    "pandas", "custseg.profiles.lifecycle",  # the lifecycle summary and fit, right after the features
    "sklearn.base", "sklearn.cluster", "sklearn.metrics", "sklearn.utils.validation", "threadpoolctl", "kneed",
    "custseg.clustering.estimator", THREAD_POOLS, "custseg.profiles.explain", "custseg.profiles.stats",
    "custseg.profiles.best_sellers", "custseg.profiles.holdout", "custseg.model", "custseg.outputs.run",
    "plotly.offline", "jinja2", "custseg.outputs.report.page",
)

_started: threading.Thread | None = None


def _import_all() -> None:
    for name in MODULES:
        try:
            if name == THREAD_POOLS:  # scikit-learn's native libraries are loaded: find their pools once
                from .parallel import thread_pools

                thread_pools()
            else:
                importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - the real import reports it
            return


def start() -> None:
    """Begin importing MODULES in a daemon thread (once per process)."""
    global _started
    if _started is None:
        _started = threading.Thread(target=_import_all, name="custseg-preload", daemon=True)
        _started.start()
