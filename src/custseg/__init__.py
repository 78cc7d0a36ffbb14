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

from .clustering import CustomerSegmenter  # noqa: E402
from .errors import CustsegError  # noqa: E402
from .model import SegmentationModel, load_model  # noqa: E402
from .pipeline import RunOptions, SegmentationResult, segment  # noqa: E402
from .scoring import predict  # noqa: E402

__all__ = [
    "CustomerSegmenter", "CustsegError", "RunOptions", "SegmentationModel", "SegmentationResult",
    "__version__", "load_model", "predict", "segment",
]
