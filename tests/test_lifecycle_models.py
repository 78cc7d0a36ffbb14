"""The lifecycle models (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma) against published numbers, simulation and a second implementation.

CDNOW: the 2,357-customer sample of Fader, Hardie & Lee (2005) as shipped inside the ``lifetimes``
wheel, downloaded at test time (never vendored, never imported); the tests skip when offline.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import betaincinv, roots_legendre

from custseg.errors import CustsegError
from custseg.profiles.lifecycle_models import (
    DAYS_PER_MONTH,
    LifecycleModel,
    PurchaseModel,
    SpendModel,
    _purchase_objective,
    _spend_objective,
    conditional_expected_purchases,
    discount_factors,
    expected_order_value,
    expected_purchases,
    fit_purchases,
    fit_spend,
    p_alive,
    purchase_log_likelihood,
    score_customers,
    spend_log_likelihood,
    tracking_curve,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "lifetimes-0.11.3"


# ---------------------------------------------------------------------------------------------
# CDNOW from the lifetimes wheel


@pytest.fixture(scope="session")
def cdnow() -> dict[str, np.ndarray]:
    """CDNOW's calibration summary (weeks) with each customer's mean repeat-order value."""
    wheels = sorted(ARTIFACTS.glob("*.whl")) if ARTIFACTS.exists() else []
    if not wheels:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                 "lifetimes==0.11.3", "-d", str(ARTIFACTS)],
                capture_output=True, text=True, timeout=180,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot download the lifetimes wheel holding the CDNOW data (offline?): {exc}")
        wheels = sorted(ARTIFACTS.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"cannot download the lifetimes wheel holding the CDNOW data (offline?): {last}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        summary = wheel.read("lifetimes/datasets/cdnow_customers_summary.csv").decode()
        spend = wheel.read("lifetimes/datasets/cdnow_customers_summary_with_transactions.csv").decode()
    s = np.genfromtxt(io.StringIO(summary), delimiter=",", names=True)
    m = np.genfromtxt(io.StringIO(spend), delimiter=",", names=True)
    # the second file's columns are ID,x,t_x,T,zbar (older copies: frequency,...,monetary_value)
    mean_col = "monetary_value" if "monetary_value" in m.dtype.names else "zbar"
    freq_col = "frequency" if "frequency" in m.dtype.names else "x"
    assert len(s) == 2357 and len(m) == 2357
    return {
        "x": s["frequency"], "t_x": s["recency"], "T": s["T"],
        "spend_x": m[freq_col], "mean_value": m[mean_col],
    }


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


def test_cdnow_bgnbd_reproduces_the_paper(cdnow):
    fit = fit_purchases(cdnow["x"], cdnow["t_x"], cdnow["T"], model="bgnbd", sample_size=None, time_unit="weeks")
    # Fader, Hardie & Lee (2005), section 5: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    assert (sig3(fit.r), sig3(fit.alpha), sig3(fit.a), sig3(fit.b)) == (0.243, 4.41, 0.793, 2.43)
    assert fit.alpha == pytest.approx(4.414, abs=0.0015) and fit.b == pytest.approx(2.426, abs=0.0015)
    assert sig3(fit.log_likelihood) == -9580.0 and fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert fit.n_customers == 2357
    # the per-customer likelihood sums to the fit's
    ll = purchase_log_likelihood([fit.r, fit.alpha, fit.a, fit.b], cdnow["x"], cdnow["t_x"], cdnow["T"], model="bgnbd")
    assert ll.sum() == pytest.approx(fit.log_likelihood, rel=1e-12)
    # FHL's worked example (customer 1: x = 2, t_x = 30.43, T = 38.86): 1.226 purchases in the next 39 weeks
    assert conditional_expected_purchases(fit, 39.0, [2.0], [30.43], [38.86])[0] == pytest.approx(1.226, abs=5e-4)
    # plain BG/NBD: every one-time buyer is "alive" with certainty — the blind spot
    one_timers = cdnow["x"] == 0
    assert one_timers.sum() > 1000
    assert np.all(p_alive(fit, cdnow["x"], cdnow["t_x"], cdnow["T"])[one_timers] == 1.0)


def test_cdnow_mbgnbd_fits_and_one_time_buyers_can_be_gone(cdnow):
    fit = fit_purchases(cdnow["x"], cdnow["t_x"], cdnow["T"], model="mbgnbd", sample_size=None, time_unit="weeks")
    bg = fit_purchases(cdnow["x"], cdnow["t_x"], cdnow["T"], model="bgnbd", sample_size=None, time_unit="weeks")
    assert all(math.isfinite(v) and v > 0 for v in (fit.r, fit.alpha, fit.a, fit.b))
    # nested-ish models on the same data: the fits are close in likelihood
    assert abs(fit.log_likelihood - bg.log_likelihood) < 20
    alive = p_alive(fit, cdnow["x"], cdnow["t_x"], cdnow["T"])
    one = cdnow["x"] == 0
    assert np.all((alive > 0) & (alive < 1))
    assert alive[one].max() < 1
    # among one-time buyers of the same age, P(alive) is the same, and it falls with age
    ages = np.array([1.0, 10.0, 30.0, 60.0])
    by_age = p_alive(fit, np.zeros(4), np.zeros(4), ages)
    assert np.all(np.diff(by_age) < 0)
    # expected purchases over 39 weeks: both models predict the calibration's total of repeat
    # purchases (the fit matches aggregates), within a few percent of each other
    t = 39.0
    mbg = conditional_expected_purchases(fit, t, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum()
    bgs = conditional_expected_purchases(bg, t, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum()
    assert mbg == pytest.approx(bgs, rel=0.05)


def test_cdnow_gamma_gamma_reproduces_the_paper(cdnow):
    keep = cdnow["spend_x"] > 0
    fit = fit_spend(cdnow["spend_x"][keep], cdnow["mean_value"][keep], sample_size=None)
    # Fader, Hardie & Lee (2005) "RFM and CLV": p = 6.25, q = 3.74, gamma = 15.44 (946 customers)
    assert (sig3(fit.p), sig3(fit.q), sig3(fit.gamma)) == (6.25, 3.74, 15.4)
    assert fit.gamma == pytest.approx(15.44, abs=0.01)
    assert fit.n_customers == 946
    # the fit leaves out customers without repeat orders by itself
    again = fit_spend(cdnow["spend_x"], cdnow["mean_value"], sample_size=None)
    assert (again.p, again.q, again.gamma) == pytest.approx((fit.p, fit.q, fit.gamma), rel=1e-6)
    ll = spend_log_likelihood([fit.p, fit.q, fit.gamma], cdnow["spend_x"][keep], cdnow["mean_value"][keep])
    assert ll.sum() == pytest.approx(fit.log_likelihood, rel=1e-12)
    # the paper's population mean order value p gamma / (q - 1) = 35.2 (in CDNOW dollars)
    assert fit.population_mean == pytest.approx(35.17, abs=0.05)


def test_cdnow_sampled_fit_is_close_to_the_full_fit(cdnow):
    full = fit_purchases(cdnow["x"], cdnow["t_x"], cdnow["T"], model="mbgnbd", sample_size=None)
    sampled = fit_purchases(cdnow["x"], cdnow["t_x"], cdnow["T"], model="mbgnbd", sample_size=1500, seed=3)
    assert sampled.n_customers == 1500
    assert sampled.r == pytest.approx(full.r, rel=0.35)
    again = fit_purchases(cdnow["x"], cdnow["t_x"], cdnow["T"], model="mbgnbd", sample_size=1500, seed=3)
    assert again == sampled  # seeded


# ---------------------------------------------------------------------------------------------
# gradients, ranges, edge cases


EDGE = {
    # x, t_x, T: one-time buyers, last purchase just now, a customer seen for a second, huge x
    "x": np.array([0, 0, 1, 1, 3, 3, 40, 1e4, 1e6, 2, 0]),
    "t_x": np.array([0, 0, 1e-9, 5, 100, 100, 700, 999, 999.5, 1e-6, 0]),
    "T": np.array([1e-9, 900, 1e-9, 5, 100, 2000, 730, 1000, 1000, 3000, 0]),
}


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_purchase_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(4)
    x, t_x, T = simulate(rng, 400, 0.6, 25.0, 0.8, 2.5, rng.uniform(10, 700, 400), model)
    w = rng.integers(1, 4, 400).astype(float)
    shift = 1 if model == "mbgnbd" else 0
    for point in ([0.6, 25.0, 0.8, 2.5], [2.0, 3.0, 5.0, 0.3], [0.1, 400.0, 0.2, 9.0]):
        theta = np.log(point)
        _, grad = _purchase_objective(theta, x, t_x, T, w, shift)
        numeric = approx_fprime(theta, lambda th: _purchase_objective(th, x, t_x, T, w, shift)[0], 1e-7)
        assert grad == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_spend_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    x = rng.integers(1, 20, 300).astype(float)
    m = rng.gamma(3.0, 10.0, 300)
    w = np.ones(300)
    for point in ([6.0, 3.7, 15.0], [1.5, 1.2, 200.0]):
        theta = np.log(point)
        _, grad = _spend_objective(theta, x, m, w)
        numeric = approx_fprime(theta, lambda th: _spend_objective(th, x, m, w)[0], 1e-7)
        assert grad == pytest.approx(numeric, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pnbd"])
@pytest.mark.parametrize("params", [(0.24, 4.4, 0.79, 2.4), (0.5, 60.0, 1.0, 2.0), (5.0, 0.5, 3.0, 0.2), (0.05, 1e4, 0.01, 50.0)])
def test_edge_cases_are_finite_and_in_range(model, params):
    fit = PurchaseModel(model, *params)
    alive = p_alive(fit, EDGE["x"], EDGE["t_x"], EDGE["T"])
    assert np.all(np.isfinite(alive)) and np.all((alive >= 0) & (alive <= 1))
    ll = purchase_log_likelihood(params, EDGE["x"], EDGE["t_x"], EDGE["T"], model=model)
    assert np.all(np.isfinite(ll))
    for t in (0.0, 1e-6, 30.0, 365.25, 3650.0):
        e = conditional_expected_purchases(fit, t, EDGE["x"], EDGE["t_x"], EDGE["T"])
        assert np.all(np.isfinite(e)) and np.all(e >= 0)
        # never more than P(alive) times a live customer's expected purchases at its mean rate
        assert np.all(e <= alive * (params[0] + EDGE["x"]) * t / (params[1] + EDGE["T"]) * (1 + 1e-9) + 1e-12)
    u = expected_purchases(fit, [0.0, 1e-6, 30.0, 365.25, 3650.0])
    assert np.all(np.isfinite(u)) and u[0] == 0 and np.all(np.diff(u) >= 0)


def test_p_alive_by_hand():
    fit = PurchaseModel("mbgnbd", 0.5, 10.0, 0.8, 2.0)
    # x = 2, t_x = 20, T = 50: 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))
    expected = 1 / (1 + 0.8 / 4.0 * (60 / 30) ** 2.5)
    assert p_alive(fit, [2], [20], [50])[0] == pytest.approx(expected, rel=1e-12)
    # x = 0: the chance of having dropped out at the first purchase, a/b ((alpha+T)/alpha)^r
    assert p_alive(fit, [0], [0], [50])[0] == pytest.approx(1 / (1 + 0.4 * 6**0.5), rel=1e-12)
    bg = PurchaseModel("bgnbd", 0.5, 10.0, 0.8, 2.0)
    assert p_alive(bg, [2], [20], [50])[0] == pytest.approx(1 / (1 + 0.8 / 3.0 * 2**2.5), rel=1e-12)
    assert p_alive(bg, [0], [0], [50])[0] == 1.0


def quadrature_conditional(fit: PurchaseModel, t, x, t_x, T):
    """A second implementation: P(alive) times the expectation over p's Beta quantiles (Gauss-Legendre)."""
    nodes, weights = roots_legendre(400)
    nodes, weights = 0.5 * (nodes + 1), 0.5 * weights
    shift = 1 if fit.model == "mbgnbd" else 0
    out = []
    for xi, ti, Ti in zip(x, t_x, T):
        p = betaincinv(fit.a, fit.b + xi + shift, nodes)
        f = (1 - ((fit.alpha + Ti) / (fit.alpha + Ti + p * t)) ** (fit.r + xi)) / p
        out.append(weights @ f)
    return p_alive(fit, x, t_x, T) * np.array(out)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_conditional_expectation_matches_a_second_implementation(model):
    fit = PurchaseModel(model, 0.7, 30.0, 1.6, 3.0)  # a > 1 keeps the quantile integrand smooth
    x = np.array([0, 1, 2, 7, 30, 300, 3000], dtype=float)
    t_x = np.array([0, 10, 200, 300, 500, 700, 729], dtype=float)
    T = np.array([100, 400, 365, 730, 730, 730, 730], dtype=float)
    for t in (30.0, 365.25):
        ours = conditional_expected_purchases(fit, t, x, t_x, T)
        assert ours == pytest.approx(quadrature_conditional(fit, t, x, t_x, T), rel=2e-3)


def test_a_equal_to_one_is_not_a_singularity():
    near = [PurchaseModel("mbgnbd", 0.5, 20.0, a, 2.0) for a in (1 - 1e-3, 1.0, 1 + 1e-3)]
    values = [conditional_expected_purchases(f, 365.0, [0, 3], [0, 100], [200, 300]) for f in near]
    assert np.all(np.isfinite(values[1]))
    assert values[1] == pytest.approx(0.5 * (values[0] + values[2]), rel=1e-4)
    u = [expected_purchases(f, 365.0)[0] for f in near]
    assert u[1] == pytest.approx(0.5 * (u[0] + u[2]), rel=1e-4)


# ---------------------------------------------------------------------------------------------
# simulation


def simulate(rng, n, r, alpha, a, b, T, model="bgnbd"):
    """(x, t_x, T) of n customers drawn from the model's story (Poisson buying, geometric drop-out).

    A customer drops out after a Geometric(p) number of repeat purchases (MBG/NBD: also, with
    probability p, right at the first purchase).  Given N purchases by T, the x = min(N, K)-th of
    N uniform arrival times is Beta(x, N - x + 1) * T.
    """
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_by_T = rng.poisson(lam * T)
    k = rng.geometric(p)  # the repeat purchase after which the customer drops out
    x = np.minimum(n_by_T, k)
    if model == "mbgnbd":
        x = np.where(rng.random(n) < p, 0, x)
    t_x = np.zeros(n)
    some = x > 0
    t_x[some] = T[some] * rng.beta(x[some], n_by_T[some] - x[some] + 1)
    return x.astype(float), t_x, T


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_simulated_parameters_are_recovered(model):
    rng = np.random.default_rng(11)
    truth = (0.6, 40.0, 0.8, 3.0)
    x, t_x, T = simulate(rng, 40_000, *truth, rng.integers(30, 1096, 40_000).astype(float), model)
    fit = fit_purchases(x, t_x, T, model=model, sample_size=None)
    assert fit.r == pytest.approx(truth[0], rel=0.1)
    assert fit.alpha == pytest.approx(truth[1], rel=0.15)
    assert fit.a == pytest.approx(truth[2], rel=0.25)
    assert fit.b == pytest.approx(truth[3], rel=0.3)
    # the true parameters are not more likely than the fitted ones
    ll_true = purchase_log_likelihood(truth, x, t_x, T, model=model).sum()
    assert fit.log_likelihood >= ll_true - 1e-6


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_unconditional_expectation_matches_monte_carlo(model):
    truth = (0.6, 40.0, 0.8, 3.0)
    fit = PurchaseModel(model, *truth)
    rng = np.random.default_rng(12)
    for t in (30.0, 365.0, 1500.0):
        x, _, _ = simulate(rng, 400_000, *truth, t, model)
        mc, se = x.mean(), x.std() / math.sqrt(len(x))
        assert abs(expected_purchases(fit, t)[0] - mc) < 4 * se


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_tracking_curve_matches_a_simulated_cohort(model):
    truth = (0.6, 40.0, 0.8, 3.0)
    fit = PurchaseModel(model, *truth)
    rng = np.random.default_rng(15)
    n = 200_000
    starts = rng.integers(0, 84, n).astype(float)  # first purchases over 12 weeks
    times = np.array([0.0, 30.0, 90.0, 365.0])
    curve = tracking_curve(fit, starts, times)
    assert curve[0] == 0 and np.all(np.diff(curve) > 0)
    for time_point, expected in zip(times[1:], curve[1:]):
        x, _, _ = simulate(rng, n, *truth, np.maximum(time_point - starts, 0.0), model)
        assert abs(x.sum() - expected) < 4 * x.std() * math.sqrt(n)
    # weights count identical customers
    uniq, counts = np.unique(starts, return_counts=True)
    assert tracking_curve(fit, uniq, times, weights=counts) == pytest.approx(curve, rel=1e-12)


def test_weights_are_counts_of_identical_rows():
    rng = np.random.default_rng(13)
    x, t_x, T = simulate(rng, 3000, 0.6, 40.0, 0.8, 3.0, rng.integers(30, 400, 3000).astype(float))
    t_x, T = np.round(t_x), T  # integer days repeat
    reps = rng.integers(1, 4, 3000)
    expanded = fit_purchases(np.repeat(x, reps), np.repeat(t_x, reps), np.repeat(T, reps), sample_size=None)
    weighted = fit_purchases(x, t_x, T, weights=reps, sample_size=None)
    assert (weighted.r, weighted.alpha, weighted.a, weighted.b) == pytest.approx(
        (expanded.r, expanded.alpha, expanded.a, expanded.b), rel=1e-4)
    assert weighted.log_likelihood == pytest.approx(expanded.log_likelihood, rel=1e-9)
    # a weighted sample draws customers, not rows
    assert fit_purchases(x, t_x, T, weights=reps, sample_size=1000).n_customers == 1000


# ---------------------------------------------------------------------------------------------
# spend and CLV


def test_expected_order_value_by_hand_and_for_non_positive_spend():
    spend = SpendModel(6.25, 3.74, 15.44)
    got = expected_order_value(spend, [0, 1, 5, 5, 5, 2], [0, 40.0, 20.0, 0.0, -12.0, np.nan])
    assert got[0] == 0.0  # no spend at all
    assert got[1] == pytest.approx(6.25 * (15.44 + 40) / (6.25 + 2.74))
    assert got[2] == pytest.approx(6.25 * (15.44 + 100) / (31.25 + 2.74))
    assert list(got[3:]) == [0.0, 0.0, 0.0]  # zero, negative or missing mean: 0 (documented)
    # x = 0 with a positive mean: the population mean p gamma / (q - 1)
    assert expected_order_value(spend, [0], [99.0])[0] == pytest.approx(spend.population_mean)


def direct_clv(model: LifecycleModel, x, t_x, T, mean_value):
    """A second, loop-by-month implementation of the discounted expected value."""
    total = np.zeros(len(x))
    before = np.zeros(len(x))
    for month in range(1, model.horizon_months + 1):
        by_then = conditional_expected_purchases(model.purchases, month * DAYS_PER_MONTH, x, t_x, T)
        total += (by_then - before) / (1 + model.monthly_discount) ** month
        before = by_then
    return total * expected_order_value(model.spend, x, mean_value), before


def test_score_customers_matches_the_definition_chunked_or_not():
    rng = np.random.default_rng(14)
    n = 5000
    x, t_x, T = simulate(rng, n, 0.6, 40.0, 0.8, 3.0, rng.integers(1, 1096, n).astype(float), "mbgnbd")
    t_x = np.floor(t_x)
    mean_value = np.where(rng.random(n) < 0.05, -rng.gamma(2, 10, n), rng.gamma(3, 12, n))
    mean_value[:10] = 0.0
    model = LifecycleModel(PurchaseModel("mbgnbd", 0.6, 40.0, 0.8, 3.0), SpendModel(6.25, 3.74, 15.44))
    value, orders = direct_clv(model, x, t_x, T, mean_value)
    for chunk in (1 << 20, 777):
        out = score_customers(model, x, t_x, T, mean_value, chunk_size=chunk)
        assert out["p_alive"] == pytest.approx(p_alive(model.purchases, x, t_x, T), rel=1e-12)
        assert out["expected_orders"] == pytest.approx(orders, rel=1e-9, abs=1e-15)
        assert out["expected_value"] == pytest.approx(value, rel=1e-9, abs=1e-12)
    # fractional days take the sorted (lexsort) deduplication path: same numbers
    jitter = T + 0.25
    out = score_customers(model, x, t_x, jitter, mean_value)
    assert out["expected_value"] == pytest.approx(direct_clv(model, x, t_x, jitter, mean_value)[0], rel=1e-9, abs=1e-12)
    assert all(np.isfinite(v).all() and (v >= 0).all() for v in out.values())
    # no spend model: no value column
    assert set(score_customers(LifecycleModel(model.purchases), x, t_x, T)) == {"p_alive", "expected_orders"}


def test_discounting():
    assert discount_factors(3, 0.01) == pytest.approx([1 / 1.01, 1 / 1.01**2, 1 / 1.01**3])
    # 1% a month is 12.7% a year
    assert 1 / discount_factors(12)[-1] - 1 == pytest.approx(0.1268, abs=1e-4)
    # a zero rate makes the value the undiscounted orders times the order value
    model = LifecycleModel(PurchaseModel("mbgnbd", 0.6, 40.0, 0.8, 3.0), SpendModel(6.25, 3.74, 15.44), 6, 0.0)
    out = score_customers(model, np.array([3.0]), np.array([200.0]), np.array([300.0]), np.array([50.0]))
    assert out["expected_value"][0] == pytest.approx(
        out["expected_orders"][0] * expected_order_value(model.spend, [3.0], [50.0])[0], rel=1e-12)
    with pytest.raises(CustsegError):
        discount_factors(0)


def test_model_round_trips_through_a_dict():
    import json

    model = LifecycleModel(PurchaseModel("mbgnbd", 0.5, 6.2, 0.9, 1.6, -9582.1, 2357, "weeks"), SpendModel(6.25, 3.74, 15.44, -4055.9, 946), 24, 0.02)
    assert LifecycleModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    bare = LifecycleModel(PurchaseModel("bgnbd", 0.5, 6.2, 0.9, 1.6))
    data = bare.to_dict()
    assert data["purchases"]["log_likelihood"] is None  # unknown: null, never NaN in model.json
    assert data["spend"] is None
    back = LifecycleModel.from_dict(json.loads(json.dumps(data)))
    assert back.purchases.r == 0.5 and back.spend is None and math.isnan(back.purchases.log_likelihood)
    # a damaged or newer model is a user-facing error
    for damaged, message in (
        ({**data, "purchases": {**data["purchases"], "a": -1}}, "parameter a"),
        ({**data, "purchases": {**data["purchases"], "r": None}}, "parameter r"),
        ({**data, "purchases": {**data["purchases"], "model": "pareto"}}, "unknown purchase model"),
        ({**data, "spend": {"p": 1.0, "q": 0.5, "gamma": 2.0}}, "q must be above 1"),
        ({**data, "format": 99}, "newer"),
        ({"spend": None}, "no purchase model"),
    ):
        with pytest.raises(CustsegError, match=message):
            LifecycleModel.from_dict(damaged)


def test_user_mistakes_are_custseg_errors():
    fit = PurchaseModel("mbgnbd", 0.5, 10.0, 0.8, 2.0)
    with pytest.raises(CustsegError, match="recency"):
        p_alive(fit, [1], [10], [5])
    with pytest.raises(CustsegError, match="negative"):
        p_alive(fit, [-1], [0], [5])
    with pytest.raises(CustsegError, match="finite"):
        p_alive(fit, [np.nan], [0], [5])
    with pytest.raises(CustsegError, match="unknown purchase model"):
        fit_purchases([1], [1], [2], model="pareto")
    with pytest.raises(CustsegError, match="bought twice"):
        fit_purchases([0, 0], [0, 0], [5, 6])
    with pytest.raises(CustsegError, match="positive spend"):
        fit_spend([0, 1], [10.0, -3.0])


# ---------------------------------------------------------------------------------------------
# Pareto/NBD


def test_cdnow_pnbd_reproduces_the_paper(cdnow):
    fit = fit_purchases(cdnow["x"], cdnow["t_x"], cdnow["T"], model="pnbd", sample_size=None, time_unit="weeks")
    # Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB":
    # r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67, LL = -9595.0
    assert (sig3(fit.r), sig3(fit.alpha), sig3(fit.s), sig3(fit.beta)) == (0.553, 10.6, 0.606, 11.7)
    assert (round(fit.r, 2), round(fit.alpha, 2), round(fit.s, 2), round(fit.beta, 2)) == (0.55, 10.58, 0.61, 11.67)
    assert sig3(fit.log_likelihood) == -9590.0 and fit.log_likelihood == pytest.approx(-9595.0, abs=0.05)
    ll = purchase_log_likelihood([fit.r, fit.alpha, fit.s, fit.beta], cdnow["x"], cdnow["t_x"], cdnow["T"], model="pnbd")
    assert ll.sum() == pytest.approx(fit.log_likelihood, rel=1e-12)
    alive = p_alive(fit, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert np.all(np.isfinite(alive)) and np.all((alive > 0) & (alive <= 1))
    # one-time buyers: P(alive) falls with the time since their purchase (no BG/NBD blind spot)
    assert np.all(np.diff(p_alive(fit, np.zeros(4), np.zeros(4), [1.0, 10.0, 30.0, 60.0])) < 0)
    # in sample, the expected repeat purchases of the cohort by the end of calibration are close
    # to the actual 2,457 (measured: 2,525, +2.8%)
    assert tracking_curve(fit, -cdnow["T"], [0.0])[0] == pytest.approx(cdnow["x"].sum(), rel=0.05)


def quad_pnbd(params, x, t_x, T):
    """A second implementation from the model's story: log L and P(alive) by numerical integration.

    L = Gamma(r+x) alpha^r / Gamma(r) * [(alpha+T)^-(r+x) (beta/(beta+T))^s
        + s beta^s int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau]
    (alive at T, or gone at some tau in (t_x, T]: mu's density times the Poisson terms, integrated).
    """
    from scipy.integrate import quad

    r, alpha, s, beta = params
    log_alive = -(r + x) * math.log(alpha + T) - s * math.log(beta + T)
    # both terms relative to the "alive" one, so that large x does not underflow
    f = lambda tau: math.exp(-(r + x) * math.log(alpha + tau) - (s + 1) * math.log(beta + tau) - log_alive)  # noqa: E731
    gone = s * quad(f, t_x, T, epsabs=0, epsrel=1e-12, limit=500)[0] if T > t_x else 0.0
    log_front = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    return log_front + log_alive + math.log1p(gone), 1.0 / (1.0 + gone)


@pytest.mark.parametrize("params", [(0.55, 10.58, 0.61, 11.67), (0.7, 50.0, 0.01, 1e-3), (2.0, 3.0, 0.3, 60.0), (0.3, 100.0, 1.5, 1.0)])
def test_pnbd_likelihood_and_p_alive_match_numerical_integration(params):
    # both branches of FHL's note (alpha >= beta and alpha < beta), frequent and one-time buyers
    x = np.array([0, 0, 1, 2, 10, 50, 300])
    t_x = np.array([0, 0, 10, 30.43, 5, 20, 700])
    T = np.array([1, 30, 10, 38.86, 50, 20.5, 730])
    ll = purchase_log_likelihood(params, x, t_x, T, model="pnbd")
    alive = p_alive(PurchaseModel("pnbd", *params), x, t_x, T)
    for i in range(len(x)):
        want_ll, want_alive = quad_pnbd(params, float(x[i]), float(t_x[i]), float(T[i]))
        assert ll[i] == pytest.approx(want_ll, rel=1e-9, abs=1e-9)
        assert alive[i] == pytest.approx(want_alive, rel=1e-8, abs=1e-12)
    assert alive[2] == 1.0  # bought at T: certainly alive


def test_pnbd_hypergeometric_fallback_matches_scipy():
    from scipy.special import hyp2f1

    from custseg.profiles.lifecycle_models import _log_hyp2f1_1_quadrature

    rng = np.random.default_rng(21)
    b = rng.uniform(0.1, 300, 300)
    z = rng.uniform(0, 0.999, 300)
    for c in (b + rng.uniform(0.05, 5, 300), rng.uniform(1.05, 5, 300)):
        with np.errstate(all="ignore"):
            want = np.log(hyp2f1(1.0, b, c, z))
        got = _log_hyp2f1_1_quadrature(b, c, z)
        ok = np.isfinite(want)
        assert got[ok] == pytest.approx(want[ok], rel=1e-10, abs=1e-10)
        # where 2F1 overflows the logarithm is still finite, near its z -> 1 asymptote (1-z)^(c-1-b)
        assert np.isfinite(got).all()


def test_pnbd_conditional_expectation_matches_integration():
    from scipy.integrate import quad
    from scipy.stats import gamma as gamma_dist

    fit = PurchaseModel("pnbd", 0.7, 30.0, 1.6, 90.0)
    x, t_x, T = np.array([0.0, 3.0, 40.0]), np.array([0.0, 100.0, 700.0]), np.array([200.0, 300.0, 730.0])
    for t in (30.0, 365.25):
        got = conditional_expected_purchases(fit, t, x, t_x, T)
        for i in range(3):
            # alive: E[lambda] * E[(1 - exp(-mu t)) / mu] over mu ~ Gamma(s, beta + T)
            dens = gamma_dist(fit.s, scale=1.0 / (fit.beta + T[i])).pdf
            life = quad(lambda mu: -math.expm1(-mu * t) / mu * dens(mu), 0, np.inf, epsrel=1e-11)[0]
            want = p_alive(fit, x[i:i + 1], t_x[i:i + 1], T[i:i + 1])[0] * (fit.r + x[i]) / (fit.alpha + T[i]) * life
            assert got[i] == pytest.approx(want, rel=1e-7)
    # s = 1 is the removable singularity of the closed form
    near = [conditional_expected_purchases(PurchaseModel("pnbd", 0.7, 30.0, s, 90.0), 365.0, x, t_x, T) for s in (1 - 1e-6, 1.0, 1 + 1e-6)]
    assert near[1] == pytest.approx(0.5 * (near[0] + near[2]), rel=1e-6)


def simulate_pnbd(rng, n, r, alpha, s, beta, T):
    """(x, t_x, T) from Pareto/NBD's story: Poisson(lambda) purchases until an Exp(mu) lifetime."""
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    active = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * active).astype(float)
    t_x = np.where(x > 0, active * rng.beta(np.maximum(x, 1), 1.0), 0.0)  # the last of x uniform times
    return x, t_x, T


def test_pnbd_simulated_parameters_are_recovered_and_expectation_matches_monte_carlo():
    rng = np.random.default_rng(22)
    truth = (0.6, 40.0, 0.8, 200.0)
    x, t_x, T = simulate_pnbd(rng, 30_000, *truth, rng.integers(30, 1096, 30_000).astype(float))
    fit = fit_purchases(x, t_x, T, model="pnbd", sample_size=None)
    assert (fit.r, fit.alpha, fit.s, fit.beta) == pytest.approx(truth, rel=0.25)
    assert fit.log_likelihood >= purchase_log_likelihood(truth, x, t_x, T, model="pnbd").sum() - 1e-6
    known = PurchaseModel("pnbd", *truth)
    for t in (30.0, 365.0, 1500.0):
        xs, _, _ = simulate_pnbd(rng, 400_000, *truth, t)
        assert abs(expected_purchases(known, t)[0] - xs.mean()) < 4 * xs.std() / math.sqrt(len(xs))


def test_pnbd_scores_and_round_trips():
    import json

    rng = np.random.default_rng(23)
    n = 3000
    x, t_x, T = simulate_pnbd(rng, n, 0.6, 40.0, 0.8, 200.0, rng.integers(1, 1096, n).astype(float))
    t_x = np.floor(t_x)
    mean_value = rng.gamma(3, 12, n)
    model = LifecycleModel(PurchaseModel("pnbd", 0.6, 40.0, 0.8, 200.0, -123.0, n), SpendModel(6.25, 3.74, 15.44))
    value, orders = direct_clv(model, x, t_x, T, mean_value)
    out = score_customers(model, x, t_x, T, mean_value, chunk_size=1000)
    assert out["p_alive"] == pytest.approx(p_alive(model.purchases, x, t_x, T), rel=1e-12)
    assert out["expected_orders"] == pytest.approx(orders, rel=1e-9, abs=1e-15)
    assert out["expected_value"] == pytest.approx(value, rel=1e-9, abs=1e-12)
    data = json.loads(json.dumps(model.to_dict()))
    # model.json names Pareto/NBD's parameters; a format-1 reader would not know the model
    assert data["format"] == 2 and {"s", "beta"} <= set(data["purchases"]) and "a" not in data["purchases"]
    back = LifecycleModel.from_dict(data)
    assert (back.purchases.s, back.purchases.beta) == (0.8, 200.0) and back.purchases.model == "pnbd"
    # format-1 models still load
    old = LifecycleModel(PurchaseModel("mbgnbd", 0.5, 6.2, 0.9, 1.6)).to_dict()
    assert old["format"] == 1 and LifecycleModel.from_dict(old).purchases.a == 0.9


def _euler_integral_mpmath(mp, b, c, z):
    """log 2F1(1, b; c; z) by mpmath: Euler's integral (c-1) int_0^1 v^(c-2) (1-z+zv)^(-b) dv in
    y = log v, split at 2^-j so tanh-sinh sees the peak at y = 0 (an independent integrator)."""
    k = mp.mpf(c) - 1
    b, z = mp.mpf(b), mp.mpf(z)
    y_lo = -(40 + b * -mp.log1p(-z)) / k - 1
    points = sorted({y_lo, mp.mpf(0), *(-mp.mpf(2) ** -j for j in range(-6, 30) if 2.0**-j < -y_lo)})
    return float(mp.log(k * mp.quad(lambda y: mp.exp(k * y - b * mp.log1p(z * mp.expm1(y))), points)))


def test_pnbd_hypergeometric_hard_regime_matches_mpmath():
    # large b with z -> 1: where scipy's 2F1 returns inf/nan although the value is finite (a fit
    # whose r and alpha run off together lands here); the fallback must hold ~1e-10 relative
    mp = pytest.importorskip("mpmath")
    from scipy.special import hyp2f1

    from custseg.profiles.lifecycle_models import _log_hyp2f1_1, _log_hyp2f1_1_quadrature

    mp.mp.dps = 25
    grid = [(b, b + s + 1.0, z) for b in (300.0, 3000.0, 1e6) for s in (1e-3, 0.3, 50.0) for z in (0.99, 1 - 1e-8)]
    b, c, z = (np.array(v) for v in zip(*grid))
    with np.errstate(all="ignore"):
        assert (~np.isfinite(np.log(hyp2f1(1.0, b, c, z)))).sum() >= len(grid) // 2  # scipy fails there
    want = np.array([_euler_integral_mpmath(mp, *row) for row in grid])
    for got in (_log_hyp2f1_1_quadrature(b, c, z), _log_hyp2f1_1(b, c, z)):
        assert got == pytest.approx(want, rel=1e-10)
    # small b, large c (alpha << beta with many purchases: b = s + 1, c = r + s + x + 1), z near 1:
    # scipy gives nan; the integrand's peak is 1/(c-1) wide (the per-row quadrature before this one
    # used 1/8-wide panels there and returned log 2F1 < 0, p_alive off by 30%); mpmath's own 2F1
    rows = [(3.0, 3015.0, 0.99625), (1.5, 800.0, 0.9999), (2.0, 5e4, 0.999)]
    b, c, z = (np.array(v) for v in zip(*rows))
    want = np.array([float(mp.log(mp.hyp2f1(1, mp.mpf(bi), mp.mpf(ci), mp.mpf(zi)))) for bi, ci, zi in rows])
    assert _log_hyp2f1_1(b, c, z) == pytest.approx(want, rel=1e-10)
    # and the closed form at z = 1: 2F1(1, b; b+s+1; 1) = (b+s)/s, approached as z -> 1
    near = _log_hyp2f1_1_quadrature(np.array([3000.0]), np.array([3002.0]), np.array([1 - 1e-12]))
    assert near[0] == pytest.approx(math.log(3001.0 / 1.0), rel=1e-6)


def test_pnbd_fit_without_rate_heterogeneity_finishes_finite():
    # every customer buys at one Poisson rate (no Gamma heterogeneity) and lives an exponential
    # lifetime with the same mean: the likelihood rises along r, alpha -> infinity, the fit must
    # stop at PNBD_MAX_R with finite numbers and recover the common rate r/alpha
    from custseg.profiles.lifecycle_models import PNBD_MAX_R

    rng = np.random.default_rng(5)
    n, rate = 1200, 0.05
    T = rng.integers(30, 400, n).astype(float)
    life = rng.exponential(2000.0, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        times = np.cumsum(rng.exponential(1 / rate, 200))
        times = times[times < min(T[i], life[i])]
        x[i], t_x[i] = len(times), np.floor(times[-1]) if len(times) else 0.0
    fit = fit_purchases(x, t_x, T, model="pnbd", sample_size=None)
    values = [fit.r, fit.alpha, fit.s, fit.beta, fit.log_likelihood]
    assert np.isfinite(values).all()
    assert fit.r > 100 and fit.r <= PNBD_MAX_R * (1 + 1e-9)  # no heterogeneity: r at or towards its bound
    assert fit.r / fit.alpha == pytest.approx(rate, rel=0.05)
    alive = p_alive(fit, x, t_x, T)
    assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()
    orders = conditional_expected_purchases(fit, 365.0, x, t_x, T)
    assert np.isfinite(orders).all() and (orders >= 0).all()


@pytest.mark.parametrize("params", [(0.55, 10.58, 0.61, 11.67), (0.98, 145.0, 4e-5, 1.3e5), (1.2, 50.0, 2.0, 30.0),
                                    (0.7, 40.0, 0.8, 40.0)])
def test_pnbd_gradient_matches_finite_differences(params):
    """The fit's gradient (analytic but for 2F1's b and c derivatives) against central differences
    of the log-likelihood itself, on both branches (alpha >= beta and alpha < beta) and at alpha = beta."""
    from custseg.profiles.lifecycle_models import _pnbd_ll_grad, _pnbd_pairs

    rng = np.random.default_rng(3)
    n = 200
    T = rng.integers(1, 800, n).astype(float)
    x = rng.integers(0, 30, n).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T), 0.0)
    t_x[:5], x[:5] = T[:5], np.maximum(x[:5], 1)  # last purchase at T: the "gone" term is 0
    theta = np.array(params)
    ll, grads = _pnbd_ll_grad(theta, x, t_x, T, _pnbd_pairs(x, t_x, T))
    assert ll == pytest.approx(purchase_log_likelihood(theta, x, t_x, T, model="pnbd"), rel=1e-13)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-5 * theta[i]
        up = purchase_log_likelihood(theta + step, x, t_x, T, model="pnbd").sum()
        down = purchase_log_likelihood(theta - step, x, t_x, T, model="pnbd").sum()
        assert grads[i].sum() == pytest.approx((up - down) / (2 * step[i]), rel=1e-5, abs=1e-6)


def test_scipy_hypergeometric_at_negative_z_is_exact_where_used():
    """alpha < beta with s <= NEGATIVE_Z_MAX_S takes scipy's 2F1(1, r+x; r+s+x+1; z) at z < 0
    (fast where the other form's z is near 1). Pinned against mpmath on random points of that box:
    where scipy's value is finite it must be right (a non-finite one is replaced)."""
    mp = pytest.importorskip("mpmath")
    from scipy.special import hyp2f1

    from custseg.profiles.lifecycle_models import NEGATIVE_Z_MAX_S

    mp.mp.dps = 25
    rng = np.random.default_rng(5)
    n = 1500
    r = np.exp(rng.uniform(math.log(0.01), math.log(50), n))
    x = np.where(rng.uniform(size=n) < 0.3, 0.0, rng.integers(0, 150, n).astype(float))
    s = np.exp(rng.uniform(math.log(1e-8), math.log(NEGATIVE_Z_MAX_S), n))
    z = -np.exp(rng.uniform(math.log(0.01), math.log(1e10), n))
    with np.errstate(all="ignore"):
        got = hyp2f1(1.0, r + x, r + s + x + 1.0, z)
    finite = np.flatnonzero(np.isfinite(got) & (got > 0))
    assert len(finite) > n // 2
    for i in finite:
        want = mp.hyp2f1(1, r[i] + x[i], r[i] + s[i] + x[i] + 1, z[i])
        assert abs(float((mp.mpf(got[i]) - want) / want)) < 1e-11, (r[i], x[i], s[i], z[i])


@pytest.mark.parametrize("s", [1e-6, 0.05, 0.7, 1.0])
def test_pnbd_both_forms_agree_where_alpha_is_below_beta(s):
    """log F(tau) by the z < 0 form (with its replacements) equals the (beta - alpha)/(beta + tau)
    form, and mpmath's value of FHL's F (the first form is the more exact: scipy's 2F1 near z = 1
    is off by up to ~2e-8 relative, e.g. r = 3, s = 0.05, x = 0, beta = 1e7)."""
    mp = pytest.importorskip("mpmath")
    from custseg.profiles.lifecycle_models import _pnbd_beta_form, _pnbd_log_F

    mp.mp.dps = 25
    rng = np.random.default_rng(8)
    x = rng.integers(0, 300, 2000).astype(float)
    tau = rng.integers(0, 1500, 2000).astype(float)
    for r, alpha, beta in ((0.98, 145.0, 1.3e5), (0.3, 5.0, 40.0), (3.0, 0.5, 1e7), (1.0, 100.0, 100.5)):
        fast, _ = _pnbd_log_F(r, alpha, s, beta, x, tau)
        slow, _ = _pnbd_beta_form(r, alpha, s, beta, x, tau, False)
        assert np.isfinite(fast).all()
        assert fast == pytest.approx(slow, rel=1e-7, abs=1e-7)
        for i in range(0, 2000, 50):
            rx = r + x[i]
            want = (-(rx + s) * mp.log(alpha + tau[i])
                    + mp.log(mp.hyp2f1(rx + s, s + 1, rx + s + 1, (alpha - beta) / (alpha + tau[i]))))
            assert fast[i] == pytest.approx(float(want), rel=1e-11, abs=1e-11)


@pytest.mark.parametrize("x_max, T_max, n", [(30, 400, 5_000), (3, 5, 50), (200, 3_000, 1_000), (0, 0, 7)])
def test_distinct_pairs_are_the_sorted_unique_pairs_and_map_back(x_max, T_max, n):
    """Each path (a table of all pairs when there are few, a packed key, a lexicographic sort for
    fractional values) gives numpy's sorted unique (x, T) rows and each customer's row among them."""
    from custseg.profiles.lifecycle_models import _distinct_pairs

    rng = np.random.default_rng(x_max + T_max + n)
    x = rng.integers(0, x_max + 1, n).astype(np.float64)
    T = rng.integers(0, T_max + 1, n).astype(np.float64)
    for xs, Ts in ((x, T), (x + 0.5, T), (x, T + 0.25)):
        want, inverse = np.unique(np.column_stack([xs, Ts]), axis=0, return_inverse=True)
        key_x, key_T, got = _distinct_pairs(xs, Ts)
        np.testing.assert_array_equal(np.column_stack([key_x, key_T]), want)
        np.testing.assert_array_equal(got, inverse.ravel())
        assert key_x.dtype == key_T.dtype == np.float64
