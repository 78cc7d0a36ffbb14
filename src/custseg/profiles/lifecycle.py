"""What each customer and segment is worth ahead, wired into a run: P(alive), expected orders and value.

The models are :mod:`custseg.profiles.lifecycle_models`; the per-customer summary (x, t_x, T,
mean order value) is :func:`custseg.profiles.backtest.lifecycle_summary`, a pure Ibis expression
computed by the engine like every feature — or, on DuckDB, columns of the customer table's own
query (features.LIFECYCLE_COLUMNS, read by :func:`from_features`).  This module:

* :func:`summary_expression` — the summary of every customer at the end of the data (the
  "cutoff" is the day after the last order, so an order on the last day gives T = 1), with each
  customer's total spend beside it (for the revenue at stake);
* :func:`fit` — the purchase model (:data:`DEFAULT_MODEL`) and Gamma-Gamma on a seeded sample of
  at most :data:`FIT_SAMPLE` customers (the parameters describe the population);
* :func:`score` — p_alive, expected_orders_<h> and expected_value_<h> for every customer, finite
  (zero- and negative-spend customers get an expected value of 0, see lifecycle_models);
* :func:`segment_table` — per segment: expected revenue ahead and its share, mean P(alive),
  customers likely lost (P(alive) < 0.5), their share and the revenue at stake (what the likely
  lost customers spent over the data).

Customers without a dated order (no summary row) get x = t_x = T = 0: P(alive) 1 and no
expected orders (nothing is known of them); their count is in summary.json.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custseg.errors import CustsegError
from custseg.features import lifecycle_missing as missing_columns
from custseg.profiles.backtest import fit_lifecycle, lifecycle_summary, parse_duration
from custseg.runtime.parallel import in_background
from custseg.profiles.lifecycle_models import (
    DAYS_PER_MONTH,
    LifecycleModel,
    PNBD_MAX_R,
    score_customers,
)

#: The purchase model custseg fits: Pareto/NBD.  Measured on the Online Retail log's last-90-days
#: backtest (docs/lifecycle.md): its P(alive) ranks who buys again at AUC 0.716, MBG/NBD's at 0.673
#: and BG/NBD's at 0.403, with the same expected-orders AUC and totals; its fit is slower
#: (seconds on a 10,000-customer sample), which the sample bounds.
DEFAULT_MODEL = "pnbd"
#: Customers the fit uses at most (seeded sample; identical rows collapse).  Measured: on Online
#: Retail and on a 1M-line synthetic run the parameters and the backtest's AUCs move in the
#: third digit between 10,000 and all customers (docs/lifecycle.md).
FIT_SAMPLE = 10_000
#: P(alive) below which a customer counts as likely lost.
LOST_BELOW = 0.5
#: Money columns of the summary, rounded to MONEY_DECIMALS places (see :func:`fetch`).
MONEY = ("mean_value", "spend", "holdout_spend")
MONEY_DECIMALS = 6


@dataclass
class Lifecycle:
    """The lifecycle outcome of a run: the model, each customer's scores and the JSON summary."""

    model: LifecycleModel | None
    horizon: str
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # column name -> one value per customer
    spend: np.ndarray | None = None  # each customer's total spend (for the revenue at stake)
    info: dict[str, Any] = field(default_factory=dict)  # summary.json's "lifecycle"
    segment_sums: pd.DataFrame | None = None  # the per-segment table when scored in Spark


def horizon_label(text: str) -> str:
    """The horizon as written in column names: '12m', '90d', '6w' (number and unit, lower case)."""
    parse_duration(text, "--horizon")
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([dwm])\s*$", text, re.IGNORECASE)
    number = match.group(1).rstrip("0").rstrip(".") if "." in match.group(1) else str(int(match.group(1)))
    return f"{number}{match.group(2).lower()}"


_COLUMN = re.compile(r"^(p_alive|expected_(orders|value)_\d+(\.\d+)?[dwm])$")


def is_lifecycle_column(name: str) -> bool:
    """A per-customer lifecycle column (p_alive, expected_orders_12m, expected_value_90d ...): a number."""
    return bool(_COLUMN.match(name))


def column_names(horizon: str) -> tuple[str, str, str]:
    """p_alive, expected_orders_<h>, expected_value_<h>."""
    label = horizon_label(horizon)
    return "p_alive", f"expected_orders_{label}", f"expected_value_{label}"


def model_horizon(horizon: str) -> dict[str, Any]:
    """LifecycleModel's horizon fields for a ``--horizon`` text: whole months, or days otherwise."""
    days = parse_duration(horizon, "--horizon")
    label = horizon_label(horizon)
    if label.endswith("m") and float(label[:-1]).is_integer():
        return {"horizon_months": int(float(label[:-1])), "horizon_days": None}
    return {"horizon_months": max(int(round(days / DAYS_PER_MONTH)), 1), "horizon_days": days}


def end_of(last_date) -> _dt.date:
    """The summary's cutoff for data whose last order is on ``last_date``: the day after."""
    return pd.Timestamp(last_date).date() + _dt.timedelta(days=1)


def summary_expression(lines, cutoff, with_spend: bool = True):
    """Ibis: customer_id, x, t_x, T, mean_value, value_orders, spend — of the orders before ``cutoff``
    (``with_spend=False``: without spend, which is each customer's total_spending feature)."""
    summary = lifecycle_summary(lines, cutoff, 1, spend=with_spend)
    return summary.select("customer_id", "x", "t_x", "T", "mean_value", "value_orders", *(["spend"] * with_spend))


def fetch_table(expression, text_ids: bool = True) -> pa.Table:
    """The summary as Arrow, in the engine's row order, with text customer ids (ids as the customer
    table has them; ``text_ids=False``: as the engine gives them)."""
    table = expression.to_pyarrow()
    ids = table.column("customer_id")
    if text_ids and not pa.types.is_string(ids.type):
        table = table.set_column(table.schema.get_field_index("customer_id"), "customer_id", ids.cast(pa.string()))
    # money sums in floating point differ in their last bits with the engine's thread count; rounded
    # to a millionth, the same data gives the same fit and the same bytes whatever the threads
    for column in MONEY:
        if column in table.column_names:
            i = table.schema.get_field_index(column)
            table = table.set_column(i, column, pc.round(table.column(column), MONEY_DECIMALS))
    return table


def fetch(expression) -> pd.DataFrame:
    """:func:`fetch_table` as pandas, in a fixed row order (sorted by id): the engine's group-by
    order varies, a seeded sample drawn from the rows must not."""
    return fetch_table(expression).to_pandas().sort_values("customer_id", kind="stable").reset_index(drop=True)


def positions(summary: pa.Table, customer_ids) -> np.ndarray:
    """For each of ``customer_ids`` (made text unless both sides are integers), its row in the
    summary, or -1 (no dated order)."""
    ids = customer_ids if isinstance(customer_ids, (pa.Array, pa.ChunkedArray)) else pa.array(
        np.asarray(customer_ids, dtype=object).astype(str))
    known = summary.column("customer_id")
    if ids.type != known.type or not (pa.types.is_integer(ids.type) or pa.types.is_string(ids.type)):
        ids, known = ids.cast(pa.string()), known.cast(pa.string())  # integer ids match as integers (quicker)
    return pc.index_in(ids, value_set=known).fill_null(-1).to_numpy(zero_copy_only=False)


SUMMARY = ("x", "t_x", "T", "mean_value", "value_orders", "spend")


def take(summary: pa.Table, index: np.ndarray, columns: tuple[str, ...] = SUMMARY) -> pd.DataFrame:
    """The summary's rows ``index`` (-1: a customer without a row, all zeros: T = 0, where a summary
    row has T >= 1) as float64 ``columns``; one temporary per column at most (300 MB at 37M customers)."""
    found = index >= 0
    missing = not found.all()
    if missing:
        rows, index = np.flatnonzero(found), index[found]
    out = {}
    for column in columns:
        if column not in summary.column_names:
            out[column] = np.zeros(len(found))
            continue
        values = summary.column(column).to_numpy(zero_copy_only=False)
        if missing:
            taken = np.zeros(len(found))
            taken[rows] = values[index]
        else:
            taken = values[index].astype(np.float64, copy=False)
        out[column] = np.nan_to_num(taken, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return pd.DataFrame(out, copy=False)


def fit(summary: pd.DataFrame, horizon: str, *, seed: int, model: str = DEFAULT_MODEL,
        sample_size: int | None = FIT_SAMPLE) -> LifecycleModel:
    """Purchase model and (when some customer has a positive repeat-order mean) Gamma-Gamma
    (backtest.fit_lifecycle), over ``horizon``."""
    return with_horizon(fit_lifecycle(summary, model=model, sample_size=sample_size, seed=seed), horizon)


def with_horizon(model: LifecycleModel, horizon: str) -> LifecycleModel:
    """The same fitted model over another horizon."""
    return replace(model, **model_horizon(horizon))


def score(model: LifecycleModel, summary: pd.DataFrame, horizon: str) -> dict[str, np.ndarray]:
    """p_alive, expected_orders_<h>, expected_value_<h> per row of ``summary`` (finite numbers)."""
    p_name, orders_name, value_name = column_names(horizon)
    scored = score_customers(model, summary["x"].to_numpy(np.float64), summary["t_x"].to_numpy(np.float64),
                             summary["T"].to_numpy(np.float64), summary["mean_value"].to_numpy(np.float64),
                             summary["value_orders"].to_numpy(np.float64))
    n = len(summary)
    value = scored.get("expected_value", np.zeros(n))
    out = {p_name: scored["p_alive"], orders_name: scored["expected_orders"], value_name: value}
    for name, values in out.items():  # a guard: every number in every output is finite
        out[name] = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return out


def model_info(model: LifecycleModel, horizon: str) -> dict[str, Any]:
    info = {"model": model.purchases.model, "horizon": horizon_label(horizon),
            "monthly_discount": model.monthly_discount, "parameters": model.to_dict()}
    if model.purchases.model == "pnbd" and model.purchases.r >= 0.99 * PNBD_MAX_R:
        # the fit stopped at the r bound: the data show no spread in purchase rates
        info["note"] = (f"no heterogeneity in purchase rates: r reached its bound ({PNBD_MAX_R:g}, a rate spread "
                        f"of {1 / math.sqrt(model.purchases.r):.0%}), so every customer buys at about one rate, "
                        f"r/alpha = {model.purchases.r / model.purchases.alpha:.4g} orders a day")
    return info


@dataclass
class Begun:
    """A lifecycle run under way (:func:`begin`): the engine's summary in hand and each customer's
    row in it, the fit running in a background thread while the flow clusters; :func:`finish`
    scores once the fit is done."""

    horizon: str
    summary: pa.Table | None = None  # customer_id, x, t_x, T, mean_value, value_orders (narrow types)
    index: np.ndarray | None = None  # each customer's row in summary, -1: no dated order
    spend: np.ndarray | None = None  # each customer's total spend (None: the summary's column)
    fit: Future | None = None
    fitted: LifecycleModel | None = None  # a saved model (--model): nothing to fit
    absent: dict[str, Any] | None = None  # summary.json's reason when nothing can be scored
    seconds: dict[str, float] = field(default_factory=dict)


def _timed_fit(summary: pa.Table, index: np.ndarray, horizon: str, seed: int, model: str
               ) -> tuple[LifecycleModel, float]:
    """The fit on the customers with a summary row, in the customer table's order (fixed, so the
    seeded sample is too); their columns are built here and freed when the fit is done."""
    started = time.perf_counter()
    fitted = fit(take(summary, index[index >= 0], SUMMARY[:-1]), horizon, seed=seed, model=model)
    return fitted, time.perf_counter() - started


#: Customers scored at a time (their columns taken from the summary, then scored).
SCORE_CHUNK = 1 << 21
#: The summary's integer columns as the in-memory path holds them (days and order counts fit in
#: 32 bits): at 37M customers the summary is 1.0 GB instead of 1.8 GB while K-means runs.
NARROW = {"x": "int32", "t_x": "int32", "T": "int32", "value_orders": "int32"}


def from_features(columns: pa.Table, cutoff) -> tuple[pa.Table, np.ndarray]:
    """The summary (:data:`NARROW` types) and each customer's row in it (-1: no dated order) from the
    customer table's lifecycle columns (features.LIFECYCLE_COLUMNS, row for row with the customers):
    the same x, t_x, T, mean_value and value_orders as :func:`summary_expression` gives."""
    orders = columns.column("lifecycle_orders").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    end = np.int32((pd.Timestamp(cutoff).date() - _dt.date(1970, 1, 1)).days)

    def days(name):  # days since 1970 (date32's integer); no order: 0 (the row is not used)
        return columns.column(name).cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)

    first = days("lifecycle_first_day")
    x = np.maximum(orders - 1, 0).astype(np.int32)
    mean_value = pc.round(columns.column("lifecycle_mean_value").fill_null(0.0), MONEY_DECIMALS)
    summary = pa.table({"x": x, "t_x": (days("lifecycle_last_day") - first).astype(np.int32),
                        "T": (end - first).astype(np.int32), "mean_value": mean_value, "value_orders": x})
    index = np.arange(len(orders), dtype=np.int64)
    index[orders == 0] = -1
    return summary, index


def begin(lines, provided: set[str], cutoff, customer_ids, horizon: str, seed: int, model: str = DEFAULT_MODEL,
          fitted: LifecycleModel | None = None, background: bool = True, spend=None,
          computed: pa.Table | None = None) -> Begun:
    """The summary by the engine (orders before ``cutoff``, see :func:`end_of`), in this thread — the
    engine's connection is not shared between threads — and each of ``customer_ids``' row in it;
    the fit (unless ``fitted`` is given) started in a background thread: it needs nothing of the
    segments, and its scipy work releases the GIL, so it runs beside K-means instead of after it.
    ``background=False`` fits here.  ``spend``: each customer's total spend in the order of
    ``customer_ids`` (the total_spending feature: the same sum of the lines' amounts), which spares
    the engine a second pass over the lines (at 100M lines, a 37M-group aggregation).  The
    per-customer columns are built in :func:`finish`, after the clustering's memory peak.
    ``computed``: the customer table's lifecycle columns (features.LIFECYCLE_COLUMNS), which spare
    the engine its own summary query (a second grouping of every line)."""
    missing = missing_columns(provided)
    if missing:
        return Begun(horizon, absent={"status": "absent", "reason":
                     f"the data has no {' or '.join(missing)} column: the lifecycle models need order dates and amounts"})
    if cutoff is None:
        return Begun(horizon, absent={"status": "absent", "reason": "no order line has a date"})
    started = time.perf_counter()
    if computed is not None and spend is not None:
        summary, index = from_features(computed, cutoff)
    else:
        expression = summary_expression(lines, cutoff, with_spend=spend is None)
        expression = expression.mutate(**{c: expression[c].cast(t) for c, t in NARROW.items()})
        summary = fetch_table(expression, text_ids=False)
        index = positions(summary, customer_ids)
    if spend is not None:
        spend = np.asarray(spend.to_numpy(zero_copy_only=False) if hasattr(spend, "to_numpy") else spend, dtype=np.float64)
        spend = np.nan_to_num(np.round(spend, MONEY_DECIMALS), copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    begun = Begun(horizon, summary, index, spend, fitted=fitted,
                  seconds={"summary": round(time.perf_counter() - started, 3)})
    if fitted is None:
        if background:
            begun.fit = in_background(_timed_fit, summary, index, horizon, seed, model)
        else:
            begun.fit = Future()
            try:
                begun.fit.set_result(_timed_fit(summary, index, horizon, seed, model))
            except CustsegError as exc:
                begun.fit.set_exception(exc)
    return begun


def finish(begun: Begun) -> Lifecycle:
    """The scores of the customers once the fit is done (waiting for it if need be).

    Never raises for a data reason: without dates or amounts, or when the model cannot be fitted,
    the outcome has no scores and ``info["reason"]`` says why.
    """
    horizon = begun.horizon
    if begun.absent is not None:
        return Lifecycle(None, horizon, info=begun.absent)
    seconds = dict(begun.seconds)
    if begun.fit is not None:
        waiting = time.perf_counter()
        try:
            fitted, fit_seconds = begun.fit.result()
        except CustsegError as exc:
            return Lifecycle(None, horizon, info={"status": "absent", "reason": f"the lifecycle model was not fitted: {exc}"})
        seconds["fit"] = round(fit_seconds, 3)
        seconds["fit_waited"] = round(time.perf_counter() - waiting, 3)
    else:
        fitted = with_horizon(begun.fitted, horizon)
    scoring = time.perf_counter()
    n = len(begun.index)
    scores = {name: np.empty(n) for name in column_names(horizon)}
    for start in range(0, n, SCORE_CHUNK):  # the summary's columns a chunk at a time: no 37M-row copies
        part = take(begun.summary, begun.index[start:start + SCORE_CHUNK], SUMMARY[:-1])
        for name, values in score(fitted, part, horizon).items():
            scores[name][start:start + len(part)] = values
    spend = begun.spend if begun.spend is not None else take(begun.summary, begun.index, ("spend",))["spend"].to_numpy()
    seconds["score"] = round(time.perf_counter() - scoring, 3)
    info = {"status": "scored", **model_info(fitted, horizon), "customers_without_dates": int((begun.index < 0).sum()),
            "fit_sample": FIT_SAMPLE, "seconds": seconds}
    return Lifecycle(fitted, horizon, scores, np.asarray(spend, dtype=np.float64), info)


def run_lifecycle(lines, provided: set[str], cutoff, customer_ids, horizon: str, seed: int,
                  model: str = DEFAULT_MODEL, fitted: LifecycleModel | None = None) -> Lifecycle:
    """:func:`begin` and :func:`finish` in one call (the fit in this thread)."""
    return finish(begin(lines, provided, cutoff, customer_ids, horizon, seed, model, fitted, background=False))


def segment_table(lifecycle: Lifecycle, labels: np.ndarray, k: int) -> pd.DataFrame:
    """Per segment: expected orders and value ahead, its share, mean P(alive), likely lost and revenue at stake."""
    p_name, orders_name, value_name = column_names(lifecycle.horizon)
    labels = np.asarray(labels, dtype=np.int64)
    alive = lifecycle.scores[p_name]
    lost = alive < LOST_BELOW
    spend = lifecycle.spend if lifecycle.spend is not None else np.zeros(len(labels))
    sums = {
        "customers": np.bincount(labels, minlength=k).astype(np.float64),
        "orders": np.bincount(labels, weights=lifecycle.scores[orders_name], minlength=k),
        "value": np.bincount(labels, weights=lifecycle.scores[value_name], minlength=k),
        "alive": np.bincount(labels, weights=alive, minlength=k),
        "lost": np.bincount(labels, weights=lost.astype(np.float64), minlength=k),
        "stake": np.bincount(labels, weights=np.where(lost, spend, 0.0), minlength=k),
    }
    return table_from_sums(sums, k, lifecycle.horizon)


def table_from_sums(sums: dict[str, np.ndarray], k: int, horizon: str) -> pd.DataFrame:
    """The per-segment table from per-segment sums (customers, orders, value, alive, lost, stake)."""
    _, orders_name, value_name = column_names(horizon)
    counts, value_sum, lost_count = sums["customers"], sums["value"], sums["lost"]
    total = float(value_sum.sum())
    return pd.DataFrame({
        "segment": np.arange(k, dtype=np.int64),
        orders_name: sums["orders"],
        value_name: value_sum,
        f"{value_name}_share": value_sum / total if total > 0 else np.zeros(k),
        "mean_p_alive": np.divide(sums["alive"], counts, out=np.zeros(k), where=counts > 0),
        "likely_lost": lost_count.astype(np.int64),
        "likely_lost_share": np.divide(lost_count, counts, out=np.zeros(k), where=counts > 0),
        "revenue_at_stake": sums["stake"],
    })


def add_to_profiles(profiles: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The profiles with the per-segment lifecycle columns appended (matched on segment)."""
    extra = table.set_index("segment").reindex(profiles["segment"].to_numpy())
    out = profiles.copy()
    for column in extra.columns:
        out[column] = np.nan_to_num(extra[column].to_numpy(np.float64), nan=0.0)
        if column == "likely_lost":
            out[column] = out[column].astype("int64")
    return out


def add_to_table(table: pa.Table, lifecycle: Lifecycle) -> pa.Table:
    """A segments/predictions table with the per-customer lifecycle columns appended."""
    for name, values in lifecycle.scores.items():
        table = table.append_column(name, pa.array(values, pa.float64()))
    return table


# ---------------------------------------------------------------------------- Spark: customers kept in Spark

SPEND = "custseg_lifecycle_spend"


def score_batch(batch: pa.RecordBatch, model: LifecycleModel, horizon: str) -> pa.RecordBatch:
    """mapInArrow's function: one Arrow batch of the summary -> customer_id, the scores and the spend."""
    frame = batch.to_pandas()
    for column in MONEY:
        if column in frame:
            frame[column] = frame[column].astype(np.float64).round(MONEY_DECIMALS)
    aligned = frame.fillna(0.0)
    scores = score(model, aligned, horizon)
    return pa.RecordBatch.from_pydict({
        "customer_id": pa.array(frame["customer_id"].astype(str).to_numpy(dtype=object), pa.string()),
        **{name: pa.array(values, pa.float64()) for name, values in scores.items()},
        SPEND: pa.array(aligned["spend"].to_numpy(np.float64), pa.float64()),
    })


def run_lifecycle_spark(engine, lines, provided: set[str], cutoff, customers_frame, k: int, horizon: str, seed: int,
                        fitted: LifecycleModel | None = None):
    """(Lifecycle, the customers frame with the score columns): the summary computed by Spark, the
    fit on a collected seeded sample of about FIT_SAMPLE customers, scoring in Spark (mapInArrow
    over :func:`score_customers`), the per-segment sums by Spark. Nothing per customer is collected."""
    missing = missing_columns(provided)
    if missing or cutoff is None:
        reason = (f"the data has no {' or '.join(missing)} column: the lifecycle models need order dates and amounts"
                  if missing else "no order line has a date")
        return Lifecycle(None, horizon, info={"status": "absent", "reason": reason}), customers_frame
    started = time.perf_counter()
    summary = summary_expression(lines, cutoff)
    summary = summary.mutate(customer_id=summary.customer_id.cast("string"))
    if fitted is None:
        n = int(summary.count().execute())
        fraction = min(1.0, 1.2 * FIT_SAMPLE / max(n, 1))
        sample = fetch(summary.sample(fraction, seed=seed) if fraction < 1 else summary)
        try:
            fitted = fit(sample, horizon, seed=seed)
        except CustsegError as exc:
            return (Lifecycle(None, horizon, info={"status": "absent", "reason": f"the lifecycle model was not fitted: {exc}"}),
                    customers_frame)
    else:
        fitted = with_horizon(fitted, horizon)
    fitted_at = time.perf_counter()
    names = list(column_names(horizon))
    scores = engine.score_batches(summary, functools.partial(score_batch, model=fitted, horizon=horizon),
                                  [*names, SPEND])
    joined = engine.with_columns_of(customers_frame, scores)
    table = engine.table(joined, "custseg_lifecycle")
    p_name, orders_name, value_name = names
    alive = table[p_name].fill_null(1.0)
    lost = alive < LOST_BELOW
    per_segment = table.group_by("segment").aggregate(
        customers=table.count(), orders=table[orders_name].fill_null(0.0).sum(),
        value=table[value_name].fill_null(0.0).sum(), alive=alive.sum(),
        lost=lost.cast("float64").sum(), stake=(lost.ifelse(table[SPEND].fill_null(0.0), 0.0)).sum(),
    ).to_pandas()
    sums = {key: np.zeros(k) for key in ("customers", "orders", "value", "alive", "lost", "stake")}
    for row in per_segment.itertuples(index=False):
        for key in sums:
            sums[key][int(row.segment)] = float(getattr(row, key) or 0.0)
    filled = joined.fillna({p_name: 1.0, orders_name: 0.0, value_name: 0.0}).drop(SPEND)
    info = {"status": "scored", **model_info(fitted, horizon), "fit_sample": FIT_SAMPLE, "scored_in": "spark",
            "seconds": {"fit": round(fitted_at - started, 3), "score": round(time.perf_counter() - fitted_at, 3)}}
    outcome = Lifecycle(fitted, horizon, info=info)
    outcome.segment_sums = table_from_sums(sums, k, horizon)
    return outcome, filled


def attach(result, lifecycle: Lifecycle, labels: np.ndarray, k: int, backtest: dict[str, Any] | None = None) -> None:
    """Put a run's lifecycle outcome into its result: segments columns, profiles columns, model, summary."""
    info = dict(lifecycle.info)
    if lifecycle.model is not None and lifecycle.segment_sums is not None:  # scored in Spark
        result.profiles = add_to_profiles(result.profiles, lifecycle.segment_sums)
        info["columns"] = list(column_names(lifecycle.horizon))
        info["likely_lost_below"] = LOST_BELOW
    elif lifecycle.model is not None and lifecycle.scores:
        result.segments_table = add_to_table(result.segments_table, lifecycle)
        result.profiles = add_to_profiles(result.profiles, segment_table(lifecycle, labels, k))
        info["columns"] = list(lifecycle.scores)
        info["likely_lost_below"] = LOST_BELOW
    result.model.lifecycle = lifecycle.model
    if lifecycle.model is not None:
        result.model.training["horizon"] = horizon_label(lifecycle.horizon)
    result.summary["lifecycle"] = info
    if backtest is not None:
        result.summary["backtest"] = backtest


def saved_horizon(model: LifecycleModel, training: dict[str, Any]) -> str:
    """The horizon a saved model was run with (its column names), from model.json."""
    text = training.get("horizon")
    if isinstance(text, str):
        try:
            return horizon_label(text)
        except CustsegError:
            pass
    if model.horizon_days is None:
        return f"{model.horizon_months}m"
    return f"{model.horizon_days:g}d"


def for_new_customers(saved, lines, provided: set[str], date_range, customer_ids, seed: int) -> Lifecycle:
    """Scores of new customers with a saved model's lifecycle model (predict); absent with a reason otherwise."""
    if saved.lifecycle is None:
        why = ("the model is format version 1 (written before lifecycle models)" if saved.version < 2 else
               "the model has no lifecycle model (its training data had no order dates or amounts)")
        return Lifecycle(None, "12m", info={"status": "absent", "reason": f"{why}: p_alive and the expected orders "
                                            "and value are not scored; run 'custseg run' again to add them"})
    cutoff = end_of(date_range[1]) if date_range else None
    return run_lifecycle(lines, provided, cutoff, customer_ids, saved_horizon(saved.lifecycle, saved.training),
                         seed, fitted=saved.lifecycle)
