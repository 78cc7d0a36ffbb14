"""Import the modules of the later stages in the background while the engine reads the data.

scikit-learn (with SciPy), kneed and plotly take 2-3 s to import: as long as reading a
million order lines. The engine reads without holding Python's interpreter lock, so a
thread can import them meanwhile. Only modules the main thread does not import while the
data is read are listed (no two threads import the same module at the same time, so no
import can deadlock); any failure is ignored here and met again, with its real message,
where the module is imported for use.
"""

from __future__ import annotations

import importlib
import threading

MODULES = (
    "sklearn.base", "sklearn.cluster", "sklearn.metrics", "sklearn.utils.validation", "threadpoolctl", "kneed",
    "custseg.clustering.estimator", "plotly.graph_objects", "plotly.subplots", "plotly.io", "plotly.offline", "jinja2",
    "custseg.outputs.report.page",
)

_started: threading.Thread | None = None


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - the real import reports it
            return


def start() -> None:
    """Begin importing MODULES in a daemon thread (once per process)."""
    global _started
    if _started is None:
        _started = threading.Thread(target=_import_all, name="custseg-preload", daemon=True)
        _started.start()
