"""custseg: customer segmentation with K-means, from a shop's raw order lines.

    import custseg
    result = custseg.segment("orders.csv")          # or a pandas / Arrow / Spark DataFrame
    print(result.profiles[["segment_name", "customers", "strategy"]])
    result.to_dir("custseg-out")                    # segments.csv, profiles.csv, model.json, report.html ...
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("custseg")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from .errors import CustsegError, CustsegWarning  # noqa: E402

# The rest is imported on first use (PEP 562): `custseg` starts fast, so the console script can
# install its Ctrl-C handling before the heavy imports (scikit-learn, Ibis, DuckDB) begin.
_LAZY = {
    "CustomerSegmenter": ".clustering.estimator",
    "SegmentationModel": ".model", "load_model": ".model",
    "RunOptions": ".options", "SegmentationResult": ".outputs.result", "segment": ".api",
    "predict": ".api",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "CustomerSegmenter", "CustsegError", "CustsegWarning", "RunOptions", "SegmentationModel", "SegmentationResult",
    "__version__", "load_model", "predict", "segment",
]
