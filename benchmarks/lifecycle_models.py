"""Timings of the lifecycle models: fitting on a sample, scoring everyone.

    PYTHONPATH=src .venv/bin/python benchmarks/lifecycle_models.py fit 20000 200000
    PYTHONPATH=src .venv/bin/python benchmarks/lifecycle_models.py score 1000000 10000000
    PYTHONPATH=src .venv/bin/python benchmarks/lifecycle_models.py score-pnbd 1000000 37000000
    PYTHONPATH=src .venv/bin/python benchmarks/lifecycle_models.py fit-pnbd 5000 10000 20000
    PYTHONPATH=src .venv/bin/python benchmarks/lifecycle_models.py fit-pnbd-flat 4000

``fit-pnbd-flat N``: Pareto/NBD on N customers who all buy at one Poisson rate (no Gamma
heterogeneity, the case of log-uniform noise): the fit runs r and alpha up to r's bound.

``fit N``: simulates N customers from known MBG/NBD parameters (integer days, ages 1..1095)
and a Gamma-Gamma spend, fits MBG/NBD, BG/NBD and Gamma-Gamma on all N (``sample_size=None``),
prints the seconds and the recovered parameters.  ``score N``: scores N such customers
(P(alive), 12-month expected orders and discounted value) with ``score_customers`` and prints
seconds, the RSS with the four input arrays and the peak RSS while scoring (the three output
float64 arrays are 3 x 8 x N bytes of the difference).  Each size runs in a fresh process so peak RSS is its own.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import numpy as np

from custseg.profiles.lifecycle_models import LifecycleModel, fit_purchases, fit_spend, score_customers

TRUTH = (0.6, 40.0, 0.8, 3.0)  # r, alpha (days), a, b


def simulate(n: int, seed: int):
    """(x, t_x, T, mean order value) of n customers from the MBG/NBD story, in whole days."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = TRUTH
    T = rng.integers(1, 1096, n).astype(np.float64)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_by_T = rng.poisson(lam * T)
    x = np.minimum(n_by_T, rng.geometric(p))
    x = np.where(rng.random(n) < p, 0, x)
    del lam
    t_x = np.zeros(n)
    some = x > 0
    t_x[some] = np.floor(T[some] * rng.beta(x[some], n_by_T[some] - x[some] + 1))
    del n_by_T, p, some
    nu = rng.gamma(3.74, 1 / 15.44, n)
    orders = np.maximum(x, 1)
    mean_value = np.round(rng.gamma(6.25 * orders, 1.0 / (nu * orders)), 2)
    return x.astype(np.float64), t_x, T, mean_value


def peak_mb() -> float:
    """Peak RSS of this process since the last reset_peak() (VmHWM on Linux), in MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Forget the simulation's peak, so the scoring's own peak is measured (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def bench_fit(n: int) -> None:
    x, t_x, T, m = simulate(n, 1)
    t0 = time.perf_counter()
    mbg = fit_purchases(x, t_x, T, model="mbgnbd", sample_size=None)
    t1 = time.perf_counter()
    bg = fit_purchases(x, t_x, T, model="bgnbd", sample_size=None)
    t2 = time.perf_counter()
    gg = fit_spend(x, m, sample_size=None)
    t3 = time.perf_counter()
    print(
        f"fit {n:>11,}: MBG/NBD {t1 - t0:5.2f} s (r={mbg.r:.3f} alpha={mbg.alpha:.1f} a={mbg.a:.3f} b={mbg.b:.3f}; truth {TRUTH}),"
        f" BG/NBD {t2 - t1:5.2f} s, Gamma-Gamma {t3 - t2:5.2f} s (p={gg.p:.2f} q={gg.q:.2f} gamma={gg.gamma:.2f})"
    )


#: Pareto/NBD (r, alpha, s, beta) as fitted on Online Retail (the run's default model, custseg run)
PNBD = (0.775, 54.0, 0.0049, 0.0344)


def bench_fit_pnbd(n: int) -> None:
    """Pareto/NBD fitted on a seeded sample of n of 200,000 simulated customers (what custseg run does)."""
    x, t_x, T, _ = simulate(200_000, 1)
    t0 = time.perf_counter()
    fit = fit_purchases(x, t_x, T, model="pnbd", sample_size=n, seed=42)
    print(f"fit-pnbd sample {n:>9,}: {time.perf_counter() - t0:5.2f} s (r={fit.r:.3f} alpha={fit.alpha:.1f} "
          f"s={fit.s:.4f} beta={fit.beta:.2f})")


def bench_fit_pnbd_flat(n: int) -> None:
    """Pareto/NBD on n customers with one common purchase rate (0.05 a day) and exponential lifetimes."""
    rng = np.random.default_rng(5)
    T = rng.integers(30, 400, n).astype(np.float64)
    span = np.minimum(T, rng.exponential(2000.0, n))  # alive until T or their lifetime's end
    bought = rng.poisson(0.05 * span)
    x = bought.astype(np.float64)
    # the last of k uniform purchase times in the active span, floored to whole days
    t_x = np.where(bought > 0, np.floor(span * rng.beta(np.maximum(bought, 1), 1)), 0.0)
    t0 = time.perf_counter()
    fit = fit_purchases(x, t_x, T, model="pnbd", sample_size=None)
    print(f"fit-pnbd-flat {n:>9,}: {time.perf_counter() - t0:5.2f} s (r={fit.r:.0f} alpha={fit.alpha:.0f} "
          f"r/alpha={fit.r / fit.alpha:.4f} s={fit.s:.3f} beta={fit.beta:.1f} LL={fit.log_likelihood:.1f})")


def bench_score(n: int, model_name: str = "mbgnbd") -> None:
    from custseg.profiles.lifecycle_models import PurchaseModel, SpendModel

    x, t_x, T, m = simulate(n, 2)
    reset_peak()
    before = peak_mb()
    params = PNBD if model_name == "pnbd" else TRUTH
    model = LifecycleModel(PurchaseModel(model_name, *params), SpendModel(6.25, 3.74, 15.44))
    t0 = time.perf_counter()
    out = score_customers(model, x, t_x, T, m)
    seconds = time.perf_counter() - t0
    finite = all(np.isfinite(v).all() for v in out.values())
    arrays = 8 * n / 2**20
    print(
        f"score {model_name} {n:>11,}: {seconds:6.2f} s, RSS {before:,.0f} MB with the inputs, peak {peak_mb():,.0f} MB while scoring"
        f" (each float64 array {arrays:,.0f} MB; 3 outputs = {3 * arrays:,.0f} MB); all finite: {finite}"
    )


def main(argv: list[str]) -> None:
    what, sizes = argv[0], [int(s) for s in argv[1:]]
    if len(sizes) > 1:
        for n in sizes:
            subprocess.run([sys.executable, __file__, what, str(n)], check=True)
        return
    if what == "fit":
        bench_fit(sizes[0])
    elif what == "fit-pnbd":
        bench_fit_pnbd(sizes[0])
    elif what == "fit-pnbd-flat":
        bench_fit_pnbd_flat(sizes[0])
    else:
        bench_score(sizes[0], "pnbd" if what == "score-pnbd" else "mbgnbd")


if __name__ == "__main__":
    main(sys.argv[1:])
