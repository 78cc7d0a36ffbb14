"""What a run produced (pipeline.run returns it; the outputs write it; `custseg rename` rebuilds
one from a run's files to draw the report again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

    from ..model import SegmentationModel


@dataclass
class SegmentationResult:
    """What a run produced: tables (Arrow and pandas), the model and a summary."""

    segments_table: pa.Table
    profiles: pd.DataFrame
    k_selection: pd.DataFrame
    best_sellers: pd.DataFrame
    data_quality: dict[str, Any]
    summary: dict[str, Any]
    model: SegmentationModel
    features: list[str]
    all_features: pa.Table  # customer_id and every computed feature, for profiles and the report
    # When the customer table stayed in Spark (too large to collect): every customer's segment as a
    # Spark DataFrame; segments_table and all_features then hold a uniform sample for the report.
    segments_frame: Any = None
    warnings: list[str] = field(default_factory=list)  # what the run warned about (dropped lines ...)

    @property
    def segments(self) -> pd.DataFrame:
        """customer_id, the clustering features, segment and segment_name (one row per customer)."""
        if self.segments_frame is not None:
            return self.segments_frame.toPandas()
        return self.segments_table.to_pandas()

    @property
    def k(self) -> int:
        return self.model.k

    def to_dir(self, path, force: bool = False, report: bool = True, segments_format: str | None = "auto",
               figures: str | None = None, audiences: bool = False) -> Any:
        """Write every output into `path` (atomically: complete or not at all); figures="png" also
        writes each report figure as figures/*.png (needs kaleido and a Chrome/Chromium).
        segments_format "auto": CSV up to 5M customers, Parquet above or when Spark keeps the segments;
        "xlsx": CSV and the workbook segments.xlsx (segments, profiles, best sellers, k selection).
        audiences: audiences/<n>-<name>.csv per segment (customer_id and the kept columns)."""
        from .run import write_run  # pandas: heavy (preloaded)

        return write_run(self, path, force=force, report=report, segments_format=segments_format, figures=figures,
                         audiences=audiences)

    def _repr_html_(self) -> str:
        from html import escape

        from .report.page import summary_html  # plotly and jinja2: heavy, only in notebooks

        said = "".join(f'<p style="color:#8a5a00">Warning: {escape(m)}</p>' for m in self.warnings)
        return said + summary_html(self)

    def __repr__(self) -> str:
        names = ", ".join(f"{n} ({c})" for n, c in zip(self.profiles.segment_name, self.profiles.customers))
        return f"SegmentationResult(k={self.k}, customers={self.summary['customers']}, segments=[{names}])"
