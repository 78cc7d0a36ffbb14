"""BG/NBD vs MBG/NBD vs Pareto/NBD on the UCI Online Retail invoices: 90-day backtests in three windows.

Prints a Markdown table (model x window x variant: AUC of P(alive), AUC of expected orders,
predicted vs actual repeat orders in the holdout and the error in %), with the fitted
parameters.  The windows are those of tests/test_backtest.py: the data cut at its end
(2011-12-09), at 2011-09-10 and at 2011-06-30, the last 90 days of each held out.

Variants of the calibration summary (scoring always covers every calibration customer):

* ``orders``     — the backtest's own summary (distinct invoices, whole days): the baseline;
* ``mid-day``    — T - 0.5 day: orders are dated, not timed, so an order on day d is on average at
                   its middle, half a day earlier than the whole-day clock's end of calibration says
                   (t_x, a difference of two such days, is unchanged);
* ``days``       — a customer's invoices on one calendar day counted as one purchase occasion
                   (the summary without order ids);
* ``no-Dec-2010``— the fit leaves out the customers first seen in the data's first month (Dec 2010:
                   left-censored, already customers before the data starts, so their "first"
                   order is not their first); they are still scored.

Run from the project root:  PYTHONPATH=src .venv/bin/python benchmarks/lifecycle_retail.py
(data: ../shared/data/online_retail_invoices.csv, or the path given as the first argument).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

from custseg.profiles import backtest as bt
from custseg.profiles.lifecycle_models import conditional_expected_purchases, fit_purchases, p_alive
from retail_invoices import load_invoices  # benchmarks/, beside this script

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "online_retail_invoices.csv"
WINDOWS = (None, "2011-09-10", "2011-06-30")
MODELS = ("bgnbd", "mbgnbd", "pnbd")
VARIANTS = ("orders", "mid-day", "days", "no-Dec-2010")


def summaries(lines: pd.DataFrame, last: str | None):
    con = ibis.duckdb.connect()
    if last is not None:
        lines = lines[lines["order_date"] <= last]
    t = con.create_table("lines", lines)
    cutoff, days = bt.holdout_cutoff(t.order_date.max().execute(), bt.parse_duration("90d"))
    by_order = bt.lifecycle_summary(t, cutoff, days).execute().sort_values("customer_id", ignore_index=True)
    by_day = bt.lifecycle_summary(t.drop("order_id"), cutoff, days).execute().sort_values("customer_id", ignore_index=True)
    data_start = lines["order_date"].min()
    first_seen = lines.groupby("customer_id")["order_date"].min()
    censored = (first_seen.loc[by_order["customer_id"]] < data_start + pd.offsets.MonthBegin(1)).to_numpy()
    return cutoff, days, by_order, by_day, censored


def evaluate(s: pd.DataFrame, model: str, days: int, *, T_shift: float = 0.0, fit_rows=None) -> dict:
    x = s["x"].to_numpy(np.float64)
    t_x = s["t_x"].to_numpy(np.float64)
    T = s["T"].to_numpy(np.float64) + T_shift
    t_x = np.minimum(t_x, T)
    rows = slice(None) if fit_rows is None else fit_rows
    started = time.perf_counter()
    fit = fit_purchases(x[rows], t_x[rows], T[rows], model=model, sample_size=None)
    seconds = time.perf_counter() - started
    alive = p_alive(fit, x, t_x, T)
    pred = conditional_expected_purchases(fit, float(days), x, t_x, T)
    actual = s["holdout_orders"].to_numpy(np.float64)
    bought = actual > 0
    assert np.isfinite(alive).all() and np.isfinite(pred).all()
    return {
        "auc_alive": bt.rank_auc(alive, bought),
        "auc_orders": bt.rank_auc(pred, bought),
        "predicted": pred.sum(),
        "actual": actual.sum(),
        "error": 100.0 * (pred.sum() - actual.sum()) / actual.sum(),
        "alive_one_timers": (alive[x == 0].min(), alive[x == 0].max()) if (x == 0).any() else (np.nan, np.nan),
        "params": (fit.r, fit.alpha, fit.a, fit.b),
        "ll": fit.log_likelihood,
        "seconds": seconds,
        "customers": len(s),
        "bought_share": bought.mean(),
        "auc_recency": bt.rank_auc(-(T - t_x), bought),
    }


def main(argv: list[str]) -> None:
    lines = load_invoices(Path(argv[0]) if argv else DEFAULT)
    print("| window (holdout) | variant | model | AUC P(alive) | AUC exp. orders | repeat orders pred / actual | error | P(alive) of one-time buyers | params (r, alpha, a|s, b|beta) | LL | fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for last in WINDOWS:
        cutoff, days, by_order, by_day, censored = summaries(lines, last)
        window = f"{cutoff} + {days}d ({len(by_order)} customers, {100 * (by_order.holdout_orders > 0).mean():.0f}% bought again; recency alone AUC {bt.rank_auc(-(by_order['T'] - by_order['t_x']).to_numpy(), by_order.holdout_orders.to_numpy() > 0):.3f})"
        for variant in VARIANTS:
            for model in MODELS:
                if variant == "orders":
                    r = evaluate(by_order, model, days)
                elif variant == "mid-day":
                    r = evaluate(by_order, model, days, T_shift=-0.5)
                elif variant == "days":
                    r = evaluate(by_day, model, days)
                else:
                    r = evaluate(by_order, model, days, fit_rows=~censored)
                p = ", ".join(f"{v:.4g}" for v in r["params"])
                lo, hi = r["alive_one_timers"]
                print(
                    f"| {window} | {variant} | {model} | {r['auc_alive']:.3f} | {r['auc_orders']:.3f} | "
                    f"{r['predicted']:.0f} / {r['actual']:.0f} | {r['error']:+.1f}% | {lo:.3f}–{hi:.3f} | {p} | {r['ll']:.1f} | {r['seconds']:.2f} |",
                    flush=True,
                )
                window = "″"


if __name__ == "__main__":
    main(sys.argv[1:])
