"""Backtest of the lifecycle models: fit before a holdout period, predict it, compare with what happened.

Three parts, usable on their own (the pipeline wires them to ``custseg run --holdout``):

* :func:`parse_duration` reads ``--holdout`` / ``--horizon`` values (``90d``, ``12w``, ``3m``) into days.
* :func:`lifecycle_summary` and :func:`repeat_orders_by_day` build **pure Ibis** expressions (so
  DuckDB, Spark and SQL databases all run them) from the canonical order lines: each customer's
  calibration summary (x, t_x, T, mean order value) plus their holdout actuals, and the daily
  repeat orders of the calibration customers for the tracking plot.
* :func:`backtest` compares the fitted model's predictions with the holdout actuals, per segment
  and in total, and returns a JSON-ready dict (finite numbers; ``None`` where a number does not
  exist, e.g. an error in % against an actual of zero, with the reason beside it).

The clock: the **cutoff** is the first day of the holdout.  Calibration is every order dated
before the cutoff, the holdout the ``holdout_days`` days from the cutoff on.  All times are whole
days counted from the cutoff (negative in calibration): a customer whose first order was on day
``-f`` and last on day ``-l`` has ``T = f`` (the age at the end of calibration, so an order on
the calibration's last day gives T = 1) and ``t_x = f - l``.  Orders: distinct ``order_id`` per
customer, or — without an order id — one customer's lines on one calendar day; an order's date is
its earliest purchase line's and its value the sum of all its lines' amounts.  Only purchase
orders (with a line that orders units) are counted; a return-only order adds its amount to the
money (see :func:`lifecycle_summary`).  Orders after the holdout are ignored; customers whose
first order is in the holdout are not in the backtest (the model predicts existing customers).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from custseg.errors import CustsegError
from custseg.features import MONEY
from custseg.profiles.lifecycle_models import (
    DAYS_PER_MONTH,
    DEFAULT_MODEL,
    LifecycleModel,
    conditional_expected_purchases,
    expected_order_value,
    fit_purchases,
    fit_spend,
    p_alive,
    tracking_curve,
)

#: ``--horizon`` when none is given.
DEFAULT_HORIZON = "12m"
#: Days per unit of a duration: m is an average month (365.25 / 12), as in lifecycle_models.
DURATION_UNITS = {"d": 1.0, "w": 7.0, "m": DAYS_PER_MONTH}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dwm])\s*$", re.IGNORECASE)

#: Columns of :func:`lifecycle_summary`'s result, in order.
SUMMARY_COLUMNS = ("customer_id", "x", "t_x", "T", "mean_value", "value_orders", "holdout_orders", "holdout_spend")


def parse_duration(text: Any, option: str = "--holdout") -> float:
    """Days in ``"90d"``, ``"12w"`` or ``"3m"`` (a month is 30.4375 days); a CustsegError naming ``option`` otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise CustsegError(
            f"{option} {text!r} is not a duration: write a positive number of days, weeks or months, e.g. 90d, 12w or 3m"
        )
    days = float(match.group(1)) * DURATION_UNITS[match.group(2).lower()]
    if not (math.isfinite(days) and days > 0):
        raise CustsegError(f"{option} {text!r} must be longer than zero: e.g. 90d, 12w or 3m")
    return days


def holdout_cutoff(last_date: Any, holdout_days: float) -> tuple[_dt.date, int]:
    """The cutoff (first holdout day) and the holdout's whole days when the data ends on ``last_date``.

    The holdout is the last ``round(holdout_days)`` calendar days up to and including ``last_date``.
    """
    stamp = pd.Timestamp(last_date) if last_date is not None else pd.NaT
    if pd.isna(stamp):
        raise CustsegError("the data has no order dates: a backtest (--holdout) needs them")
    last = stamp.date()
    days = max(int(round(holdout_days)), 1)
    return last + _dt.timedelta(days=1 - days), days


# --------------------------------------------------------------------------------------------
# Ibis expressions


def _orders(table, cutoff, holdout_days: int):
    """One row per order up to the holdout's end: customer_id, day (from the cutoff), value, purchase,
    rank (among the customer's purchase orders) and first_day (of the customer's first purchase)."""
    import ibis

    cutoff = pd.Timestamp(cutoff).date()
    t = table.filter(table.customer_id.notnull(), table.order_date.notnull())
    day = t.order_date.cast("date").delta(ibis.literal(cutoff), unit="day")
    t = t.mutate(_day=day).filter(day < holdout_days)
    amount = t.amount.cast(MONEY)  # exact sums, as the features' (the same mean values, bit for bit)
    # a purchase line orders units (features.py); without quantities every line is one
    bought = t.quantity > 0 if "quantity" in table.columns else t.customer_id.notnull()  # (true: filtered)
    keys = [t.customer_id, t.order_id] if "order_id" in table.columns else [t.customer_id, t._day]
    orders = t.group_by(keys).aggregate(
        # an order's day: its first purchase line's (a return-only order: its first line's)
        day=t._day.min(where=bought).coalesce(t._day.min()), value=amount.sum(), purchase=bought.any())
    tie = ["order_id"] if "order_id" in table.columns else []
    orders = orders.mutate(value=orders.value.fill_null(0))
    orders = orders.select("customer_id", "day", "value", "purchase", *tie)
    return orders.mutate(
        rank=ibis.row_number().over(group_by=[orders.customer_id, orders.purchase],
                                    order_by=[orders.day, *(orders[c] for c in tie)]),
        first_day=orders.day.min(where=orders.purchase).over(group_by=orders.customer_id),
    )


def lifecycle_summary(table, cutoff, holdout_days: int, spend: bool = False):
    """Ibis expression: one row per customer with a purchase order before ``cutoff``.

    Columns (:data:`SUMMARY_COLUMNS`): ``x`` repeat orders (orders − 1), ``t_x`` days from the
    first to the last order, ``T`` days from the first order to the cutoff (the end of
    calibration) — all of the calibration period, in whole days — ``mean_value`` and
    ``value_orders`` for the Gamma-Gamma model, and ``holdout_orders`` / ``holdout_spend``: the
    customer's orders and summed amounts in the ``holdout_days`` days from the cutoff on.

    Orders are **purchase orders**, as the order_count feature counts them (an order with a line
    that orders units): a cancellation or refund booked as an order of its own is no repeat
    purchase, but its amount counts in the money (spend net of returns, as total_spending).
    ``mean_value`` is the mean net value of the **repeat** orders (``value_orders`` = x of them):
    the customer's net spend less the first order's value, over x — as the Gamma-Gamma model is
    fitted in the papers and lifetimes (the first order is often different: a welcome discount, a
    trial).  A one-time buyer (x = 0) gets their net spend with ``value_orders`` = 0: weight zero in
    the model, whose estimate is then the population mean when the value is positive and 0 when it
    is not (see lifecycle_models; a fully refunded one-time buyer is worth 0 ahead).
    ``table`` has the canonical columns customer_id, order_date, amount and optionally order_id and
    quantity (without it, every line is a purchase).  ``spend=True`` adds ``spend``: the customer's
    summed amounts before the cutoff (net of returns, the money the mean comes from).
    """
    import ibis

    holdout_days = int(holdout_days)
    o = _orders(table, cutoff, holdout_days)
    o = o.filter(o.first_day < 0)
    calib = o.day < 0
    hold = o.day >= 0
    bought = calib & o.purchase
    g = o.group_by(o.customer_id).aggregate(
        n=o.day.count(where=bought),
        first=o.day.min(where=bought),
        last=o.day.max(where=bought),
        total=o.value.sum(where=calib),
        first_value=o.value.sum(where=o.purchase & (o.rank == 0)),
        holdout_orders=o.day.count(where=hold & o.purchase),
        holdout_spend=o.value.sum(where=hold),
    )
    x = g.n - 1
    total = g.total.fill_null(0)
    mean_value = ibis.cases(
        (x > 0, (total - g.first_value).cast("float64") / x.cast("float64")),
        else_=total.cast("float64"),
    )
    return g.select(
        customer_id=g.customer_id,
        x=x.cast("int64"),
        t_x=(g.last - g.first).cast("int64"),
        T=(-g.first).cast("int64"),
        mean_value=mean_value.cast("float64"),
        value_orders=x.cast("int64"),
        holdout_orders=g.holdout_orders.cast("int64"),
        holdout_spend=g.holdout_spend.fill_null(0).cast("float64"),
        **({"spend": total.cast("float64")} if spend else {}),
    )


def repeat_orders_by_day(table, cutoff, holdout_days: int):
    """Ibis expression: ``day`` (from the cutoff, negative in calibration) and ``repeat_orders`` that day.

    Counts the purchase orders after the first of the customers whose first purchase is before the
    cutoff — the actual side of the tracking plot, over calibration and holdout.  Days without
    repeat orders have no row.
    """
    o = _orders(table, cutoff, int(holdout_days))
    o = o.filter(o.first_day < 0, o.purchase, o.rank > 0)
    return o.group_by(o.day).aggregate(repeat_orders=o.day.count()).order_by("day")


# --------------------------------------------------------------------------------------------
# model fit on a summary


def fit_lifecycle(
    summary: pd.DataFrame,
    *,
    model: str = DEFAULT_MODEL,
    horizon_months: int = 12,
    sample_size: int | None = 20_000,
    seed: int = 0,
) -> LifecycleModel:
    """Purchase model (``model``) and, when some customer has a positive repeat-order mean, Gamma-Gamma."""
    purchases = fit_purchases(summary["x"], summary["t_x"], summary["T"], model=model, sample_size=sample_size, seed=seed)
    vo = np.asarray(summary["value_orders"], dtype=np.float64)
    mv = np.asarray(summary["mean_value"], dtype=np.float64)
    spend = None
    if ((vo >= 1) & (mv > 0)).any():
        spend = fit_spend(vo, mv, sample_size=sample_size, seed=seed)
    return LifecycleModel(purchases=purchases, spend=spend, horizon_months=horizon_months)


# --------------------------------------------------------------------------------------------
# the comparison


def rank_auc(score, label) -> float | None:
    """Area under the ROC curve by the rank (Mann-Whitney) formula; ``None`` with only one class.

    AUC = (sum of the positives' ranks − n₊(n₊ + 1)/2) / (n₊ n₋), ranks averaged over ties, so a
    tie between a positive and a negative counts one half.
    """
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _spearman(a, b) -> float | None:
    ra = pd.Series(np.asarray(a, dtype=np.float64)).rank(method="average").to_numpy()
    rb = pd.Series(np.asarray(b, dtype=np.float64)).rank(method="average").to_numpy()
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _error_pct(predicted: float, actual: float) -> float | None:
    return None if actual == 0 else float(100.0 * (predicted - actual) / actual)


def _num(v: float) -> float:
    v = float(v)
    return v if math.isfinite(v) else 0.0


def _compare(pred_orders, act_orders, pred_rev, act_rev, alive, n) -> dict[str, Any]:
    out = {
        "customers": int(n),
        "predicted_orders": _num(pred_orders),
        "actual_orders": _num(act_orders),
        "orders_error_pct": _error_pct(pred_orders, act_orders),
        "mean_p_alive": _num(alive),
    }
    if pred_rev is not None:
        out["predicted_revenue"] = _num(pred_rev)
        out["revenue_error_pct"] = _error_pct(pred_rev, act_rev)
    out["actual_revenue"] = _num(act_rev)
    return out


def backtest(
    summary: pd.DataFrame,
    model: LifecycleModel,
    segments=None,
    *,
    holdout_days: float,
    daily_repeat_orders: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Predicted vs actual holdout orders and revenue, per segment and in total; JSON-ready.

    ``summary`` has the columns of :func:`lifecycle_summary` (calibration summary + holdout
    actuals, one row per customer); ``model`` is fitted on the calibration summary;
    ``segments`` one label per summary row (or ``None``: one segment ``"all"``);
    ``daily_repeat_orders`` the result of :func:`repeat_orders_by_day` (omit it to skip the
    tracking data).  Predicted orders are each customer's conditional expected orders over the
    holdout, predicted revenue those times their Gamma-Gamma expected order value (undiscounted:
    the holdout is short).  Returns::

        {"model", "holdout_days", "customers", "total": {...}, "segments": [{...}, ...],
         "auc": {"p_alive", "expected_orders", "bought_again_share"},
         "segment_ranking": {"by", "predicted_order", "actual_order", "same_order", "spearman"},
         "tracking": {"week_end_day", "predicted", "actual", "holdout_starts_at_day"}}

    ``*_error_pct`` is 100 (predicted − actual) / actual, ``None`` when the actual is zero; an
    AUC is ``None`` when everyone (or no one) bought again; Spearman is ``None`` with fewer
    than two segments or all values tied.
    """
    missing = [c for c in SUMMARY_COLUMNS[1:] if c not in summary.columns]
    if missing:
        raise CustsegError(f"the backtest summary lacks the columns {', '.join(missing)}")
    holdout_days = float(holdout_days)
    if not (math.isfinite(holdout_days) and holdout_days > 0):
        raise CustsegError("the holdout must be a positive number of days")
    n = len(summary)
    if n == 0:
        raise CustsegError("no customer bought before the holdout: nothing to backtest")
    x = summary["x"].to_numpy(np.float64)
    t_x = summary["t_x"].to_numpy(np.float64)
    T = summary["T"].to_numpy(np.float64)
    labels = np.full(n, "all", dtype=object) if segments is None else np.asarray(segments, dtype=object)
    if labels.shape != (n,):
        raise CustsegError(f"the backtest needs one segment label per customer ({n}), not {labels.shape}")
    purchases = model.purchases
    alive = p_alive(purchases, x, t_x, T)
    pred_orders = conditional_expected_purchases(purchases, holdout_days, x, t_x, T)
    act_orders = summary["holdout_orders"].to_numpy(np.float64)
    act_rev = summary["holdout_spend"].to_numpy(np.float64)
    if model.spend is not None:
        value = expected_order_value(
            model.spend, summary["value_orders"].to_numpy(np.float64), summary["mean_value"].to_numpy(np.float64)
        )
        pred_rev = pred_orders * value
    else:
        pred_rev = None
    bought = act_orders > 0

    frame = pd.DataFrame(
        {"segment": labels, "po": pred_orders, "ao": act_orders, "ar": act_rev, "alive": alive,
         "pr": pred_rev if pred_rev is not None else np.zeros(n)}
    )
    grouped = frame.groupby("segment", sort=True, dropna=False)
    per_segment = []
    for label, g in grouped:
        row = {"segment": label.item() if hasattr(label, "item") else label}
        row.update(_compare(g.po.sum(), g.ao.sum(), None if pred_rev is None else g.pr.sum(), g.ar.sum(), g.alive.mean(), len(g)))
        per_segment.append(row)
    total = _compare(pred_orders.sum(), act_orders.sum(), None if pred_rev is None else pred_rev.sum(), act_rev.sum(), alive.mean(), n)

    by = "revenue" if pred_rev is not None else "orders"
    pred_key, act_key = ("predicted_revenue", "actual_revenue") if by == "revenue" else ("predicted_orders", "actual_orders")
    pred_rank = [s["segment"] for s in sorted(per_segment, key=lambda s: -s[pred_key])]
    act_rank = [s["segment"] for s in sorted(per_segment, key=lambda s: -s[act_key])]
    ranking = {
        "by": by,
        "predicted_order": pred_rank,
        "actual_order": act_rank,
        "same_order": pred_rank == act_rank,
        "spearman": _spearman([s[pred_key] for s in per_segment], [s[act_key] for s in per_segment]),
    }
    out: dict[str, Any] = {
        "model": purchases.model,
        "holdout_days": holdout_days,
        "customers": n,
        "total": total,
        "segments": per_segment,
        "auc": {
            "p_alive": rank_auc(alive, bought),
            "expected_orders": rank_auc(pred_orders, bought),
            "bought_again_share": float(bought.mean()),
            # P(alive) nearly constant (a fit with almost no drop-out) ranks on rounding noise
            "p_alive_min": _num(alive.min()),
            "p_alive_max": _num(alive.max()),
        },
        "segment_ranking": ranking,
    }
    if daily_repeat_orders is not None:
        out["tracking"] = tracking(model, T, daily_repeat_orders, holdout_days)
    return out


def tracking(model: LifecycleModel, T, daily_repeat_orders: pd.DataFrame, holdout_days: float) -> dict[str, Any]:
    """Week-by-week cumulative repeat orders of the calibration customers, predicted vs actual.

    Weeks end at the cutoff + 7k days (the last one clipped to the holdout's end), from the
    week of the earliest first order on; ``predicted`` is the model's unconditional curve for the
    customers' first-order days (the papers' tracking plot: in calibration an in-sample check of
    the shape, in the holdout a forecast), ``actual`` the repeat orders before each week's end.
    """
    T = np.asarray(T, dtype=np.float64)
    starts = -T  # first-order day, counted from the cutoff
    horizon = int(math.ceil(holdout_days))
    first_week = int(math.floor(starts.min() / 7.0)) + 1
    ends = [7.0 * k for k in range(first_week, int(math.ceil(horizon / 7.0)) + 1)]
    ends = [min(e, float(horizon)) for e in ends]
    ends = sorted(set(ends))
    predicted = tracking_curve(model.purchases, starts, ends)
    days = daily_repeat_orders["day"].to_numpy(np.float64)
    counts = daily_repeat_orders["repeat_orders"].to_numpy(np.float64)
    actual = [float(counts[days < e].sum()) for e in ends]
    return {
        "week_end_day": [float(e) for e in ends],
        "predicted": [_num(v) for v in predicted],
        "actual": actual,
        "holdout_starts_at_day": 0.0,
    }
