"""``custseg run --holdout 90d``: everything fitted before the holdout, the holdout predicted and compared.

:func:`split` keeps the order lines before the cutoff (an Ibis filter on ``order_date``) for the
run — segments, names, the lifecycle model — and remembers every line for the comparison;
:func:`evaluate` then calls :func:`custseg.profiles.backtest.backtest` with the calibration
summary and holdout actuals (computed by the engine), the run's lifecycle model and each
customer's segment name, and returns summary.json's ``backtest`` (per segment and total,
predicted vs actual, the AUCs, the segment ranking and the weekly tracking data).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from typing import Any

import ibis
import numpy as np
import pandas as pd

from custseg.errors import CustsegError
from custseg.profiles import backtest as bt
from custseg.profiles.lifecycle import fetch
from custseg.profiles.lifecycle_models import LifecycleModel


@dataclass
class Holdout:
    """The backtest's clock and the full order lines (the run's lines stop at the cutoff)."""

    text: str            # as given: 90d, 12w, 3m
    days: int            # whole calendar days held out
    cutoff: _dt.date     # first day of the holdout
    lines: Any           # every kept order line (Ibis), holdout included

    def info(self) -> dict[str, Any]:
        return {"holdout": self.text, "holdout_days": self.days, "cutoff": self.cutoff.isoformat(),
                "holdout_last_day": (self.cutoff + _dt.timedelta(days=self.days - 1)).isoformat()}


def split(cleaned, date_range, text: str, provided: set[str]):
    """(cleaned with the lines before the cutoff only, Holdout); a CustsegError when it cannot be done."""
    missing = [c for c in ("order_date", "amount") if c not in provided]
    if missing:
        raise CustsegError(f"--holdout needs order dates and amounts; the data has no {' or '.join(missing)} column")
    last = date_range[1] if date_range else None
    cutoff, days = bt.holdout_cutoff(last, bt.parse_duration(text, "--holdout"))
    first = pd.Timestamp(date_range[0]).date()
    if first >= cutoff:
        raise CustsegError(f"--holdout {text}: the data starts on {first.isoformat()}, inside the holdout "
                           f"(from {cutoff.isoformat()}); give a shorter holdout")
    lines = cleaned.lines
    calibration = lines.filter(lines.order_date.cast("date") < ibis.literal(cutoff))
    return replace(cleaned, lines=calibration), Holdout(text, days, cutoff, lines)


def evaluate(holdout: Holdout, model: LifecycleModel, customer_ids, segment_names) -> dict[str, Any]:
    """summary.json's ``backtest``: :func:`custseg.profiles.backtest.backtest` on the run's customers."""
    summary = fetch(bt.lifecycle_summary(holdout.lines, holdout.cutoff, holdout.days))
    daily = bt.repeat_orders_by_day(holdout.lines, holdout.cutoff, holdout.days).to_pandas()
    name_of = pd.Series(np.asarray(segment_names, dtype=object),
                        index=pd.Index(pd.Series(np.asarray(customer_ids, dtype=object)).astype(str)))
    name_of = name_of[~name_of.index.duplicated()]
    labels = name_of.reindex(summary["customer_id"].astype(str)).fillna("(no segment)").to_numpy(dtype=object)
    result = bt.backtest(summary, model, labels, holdout_days=holdout.days, daily_repeat_orders=daily)
    return {**holdout.info(), **result}
