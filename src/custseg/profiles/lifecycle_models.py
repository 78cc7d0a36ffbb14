"""Customer-lifecycle models: who is still buying, how much they will buy, and what it is worth.

Three published models, fitted by maximum likelihood on each customer's summary:

* **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a
  customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; after each *repeat*
  purchase they drop out with probability ``p ~ Beta(a, b)``.
* **MBG/NBD** (Batislam, Denizel & Filiztekin 2007): the same, but a customer may also drop out
  right after their *first* purchase (time 0).  This is the default (``DEFAULT_MODEL``) of this
  module's functions (a run fits Pareto/NBD, below: profiles/lifecycle.DEFAULT_MODEL, chosen on a
  measured backtest): under plain BG/NBD a customer with no repeat purchase has had no chance to drop out,
  so P(alive | x = 0) = 1 whatever their age — every one-time buyer, however long ago, is "alive",
  and on real logs (most customers buy once) that ranks who buys again worse than chance.  MBG/NBD
  lets the one-time buyer's P(alive) fall with the time since their purchase.  Both are exposed
  (``model="bgnbd"`` / ``"mbgnbd"``) and share all the code.
* **Pareto/NBD** (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader, Hardie & Lee
  2005, "A note on implementing the Pareto/NBD model in MATLAB"): the same Poisson purchasing,
  but a customer's lifetime is exponential in *calendar time* with rate ``mu ~ Gamma(s, beta)``
  rather than a coin flip after each purchase, so a one-time buyer's P(alive) also falls with
  the time since their purchase.  ``model="pnbd"``; its (s, beta) are kept in the (a, b) slots
  of :class:`PurchaseModel` (properties ``s`` and ``beta``; model.json names them s and beta).
* **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves"): the spend per
  order of a customer is Gamma(p, nu) around their own mean, with ``nu ~ Gamma(q, gamma)`` across
  customers; it gives each customer's expected order value shrunk towards the population mean.

The summary per customer is ``x`` (frequency: the number of *repeat* purchases, i.e. orders after
the first), ``t_x`` (recency: time of the last purchase, measured from the first) and ``T`` (age:
time from the first purchase to the end of the observation window), all in one time unit — days
in custseg (the CDNOW tests use weeks; the models do not care).  Assumptions: non-contractual
(nobody tells us they left), continuous purchasing (an order can happen any day), purchases and
spend independent.  See docs/lifecycle.md.

Everything here is vectorised over customers with numpy and scipy only; the BG-family and
Gamma-Gamma log-likelihoods come with analytic gradients (Pareto/NBD's, whose 2F1 has no
closed-form parameter derivatives, with scipy's finite differences of the vectorised
likelihood) and are fitted with L-BFGS-B on log-parameters, on a seeded sample
(``fit_*`` ``sample_size``) since the parameters describe the population.  Scoring
(:func:`score_customers`) works chunk by chunk, so 37M customers need only the output arrays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaincinv, digamma, expit, gammaln, hyp2f1, roots_legendre

from custseg.errors import CustsegError

#: Model used when none is named: MBG/NBD, because plain BG/NBD says P(alive) = 1 for every
#: customer without a repeat purchase (see the module docstring).
DEFAULT_MODEL = "mbgnbd"
MODELS = ("bgnbd", "mbgnbd", "pnbd")
PNBD = "pnbd"
#: Days in an average month (365.25 / 12): horizons are in months, the summary in days.
DAYS_PER_MONTH = 30.4375
#: Monthly discount rate of the CLV: 1% a month, (1.01 ** 12 - 1) = 12.7% a year, a common
#: cost-of-capital figure for retail; pass another rate to :func:`score_customers`.
DEFAULT_MONTHLY_DISCOUNT = 0.01
DEFAULT_HORIZON_MONTHS = 12
#: Customers a fit uses at most (a seeded sample): population parameters settle long before that.
DEFAULT_SAMPLE_SIZE = 20_000
#: Customers scored per chunk: bounds the temporaries whatever the customer count.
DEFAULT_CHUNK_SIZE = 1 << 20

#: Largest Pareto/NBD r the fit tries.  The purchase rate's Gamma(r, alpha) has a coefficient of
#: variation 1/sqrt(r): at r = 1e4 it is 1%, i.e. customers buy at one common rate.  When the data
#: show no heterogeneity in the rate (e.g. log-uniform noise) the likelihood keeps rising along
#: r, alpha -> infinity with r/alpha fixed; the fit stops at this bound (the model is then a
#: Poisson rate r/alpha with Gamma-distributed lifetimes) instead of chasing it through 2F1
#: arguments where every evaluation needs the slow quadrature.  See docs/lifecycle.md.
PNBD_MAX_R = 1e4
# log-parameter bounds of the optimiser: 1e-6 .. 1e6 in the data's own scale
_LOG_BOUND = math.log(1e6)
_FORMAT = 1
#: Format written for a Pareto/NBD lifecycle model (format 1 readers know only BG/NBD and MBG/NBD).
_FORMAT_PNBD = 2
_READABLE_FORMAT = 2


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class PurchaseModel:
    """Fitted BG/NBD, MBG/NBD or Pareto/NBD parameters (``alpha`` is in the summary's time unit).

    For Pareto/NBD (``model="pnbd"``) ``a`` holds s and ``b`` holds beta (in the time unit);
    read them as :attr:`s` and :attr:`beta`.
    """

    model: str
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    time_unit: str = "days"

    @property
    def s(self) -> float:
        """Pareto/NBD's shape of the drop-out rate's Gamma distribution (the ``a`` slot)."""
        return self.a

    @property
    def beta(self) -> float:
        """Pareto/NBD's scale of the drop-out rate's Gamma distribution (the ``b`` slot)."""
        return self.b

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.model == PNBD:
            data = {("s" if k == "a" else "beta" if k == "b" else k): v for k, v in data.items()}
        return _finite_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PurchaseModel:
        _check_model(str(data.get("model")))
        names = ("r", "alpha", "s", "beta") if data["model"] == PNBD else ("r", "alpha", "a", "b")
        values = _positive(data, names, "purchase model")
        return cls(
            model=str(data["model"]),
            r=values["r"],
            alpha=values["alpha"],
            a=values[names[2]],
            b=values[names[3]],
            **_extras(data),
            time_unit=str(data.get("time_unit", "days")),
        )


@dataclass(frozen=True)
class SpendModel:
    """Fitted Gamma-Gamma parameters (``gamma`` is in the currency's unit)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")
    n_customers: int = 0

    @property
    def population_mean(self) -> float:
        """Expected order value of a customer we know nothing about: p * gamma / (q - 1)."""
        return self.p * self.gamma / (self.q - 1.0)

    def to_dict(self) -> dict[str, Any]:
        return _finite_dict(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpendModel:
        values = _positive(data, ("p", "q", "gamma"), "spend model")
        if values["q"] <= 1:
            raise CustsegError("the spend model's q must be above 1 (the mean order value is infinite otherwise)")
        return cls(**values, **_extras(data))


@dataclass(frozen=True)
class LifecycleModel:
    """Both fitted models plus the CLV settings: what model.json will keep to score new customers."""

    purchases: PurchaseModel
    spend: SpendModel | None = None
    horizon_months: int = DEFAULT_HORIZON_MONTHS
    monthly_discount: float = DEFAULT_MONTHLY_DISCOUNT
    days_per_month: float = DAYS_PER_MONTH
    format: int = field(default=_FORMAT)
    #: A horizon that is not whole months (``--horizon 90d``), in days; ``None``: ``horizon_months``.
    horizon_days: float | None = None

    def horizon_boundaries(self) -> tuple[np.ndarray, np.ndarray]:
        """Ends of the horizon's months in days and their discount factors.

        Whole months: month m ends at m * days_per_month, discounted by 1 / (1 + d)^m.  A
        horizon in days (``horizon_days``) ends its last, partial month at the horizon, discounted
        by 1 / (1 + d)^(days / days_per_month).
        """
        if self.horizon_days is None:
            discounts = discount_factors(self.horizon_months, self.monthly_discount)
            return self.days_per_month * np.arange(1, self.horizon_months + 1, dtype=np.float64), discounts
        days = float(self.horizon_days)
        if not (math.isfinite(days) and days > 0):
            raise CustsegError(f"the horizon must be a positive number of days, not {days}")
        discount_factors(1, self.monthly_discount)  # the rate's check
        months = max(int(math.ceil(days / self.days_per_month - 1e-9)), 1)
        ends = np.minimum(self.days_per_month * np.arange(1, months + 1, dtype=np.float64), days)
        return ends, (1.0 + self.monthly_discount) ** -(ends / self.days_per_month)

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.horizon_days is None else {"horizon_days": float(self.horizon_days)}
        return {
            "format": max(self.format, _FORMAT_PNBD) if self.purchases.model == PNBD else self.format,
            "purchases": self.purchases.to_dict(),
            "spend": None if self.spend is None else self.spend.to_dict(),
            "horizon_months": self.horizon_months,
            "monthly_discount": self.monthly_discount,
            "days_per_month": self.days_per_month,
            **extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LifecycleModel:
        """The model written by :meth:`to_dict`; a malformed one is a CustsegError, not a traceback."""
        if not isinstance(data, dict) or not isinstance(data.get("purchases"), dict):
            raise CustsegError("the lifecycle model has no purchase model: refit it")
        version = data.get("format", _FORMAT)
        if not isinstance(version, int) or version > _READABLE_FORMAT:
            raise CustsegError(
                f"the lifecycle model's format {version!r} is newer than this custseg reads ({_READABLE_FORMAT}): upgrade custseg"
            )
        spend = data.get("spend")
        if spend is not None and not isinstance(spend, dict):
            raise CustsegError("the lifecycle model's spend model is malformed: refit it")
        return cls(
            purchases=PurchaseModel.from_dict(data["purchases"]),
            spend=None if spend is None else SpendModel.from_dict(spend),
            horizon_months=int(data.get("horizon_months", DEFAULT_HORIZON_MONTHS)),
            monthly_discount=float(data.get("monthly_discount", DEFAULT_MONTHLY_DISCOUNT)),
            days_per_month=float(data.get("days_per_month", DAYS_PER_MONTH)),
            format=int(data.get("format", _FORMAT)),
            horizon_days=_horizon_days(data.get("horizon_days")),
        )


def _horizon_days(value: Any) -> float | None:
    if value is None:
        return None
    return _positive_number(value, "the lifecycle model's horizon_days")


def _positive(data: dict[str, Any], names: tuple[str, ...], what: str) -> dict[str, float]:
    return {name: _positive_number(data.get(name), f"the {what}'s parameter {name}") for name in names}


def _positive_number(value: Any, what: str) -> float:
    """``value`` as a finite positive float; anything else (a bool, text, NaN, <= 0) is a CustsegError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise CustsegError(f"{what} must be a positive number, not {value!r}: refit the model")
    return number


def _extras(data: dict[str, Any]) -> dict[str, Any]:
    ll = data.get("log_likelihood")
    return {
        "log_likelihood": float("nan") if ll is None else float(ll),
        "n_customers": int(data.get("n_customers") or 0),
    }


def _finite_dict(data: dict[str, Any]) -> dict[str, Any]:
    # model.json keeps finite numbers only: an unknown log-likelihood is written as null
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}


# --------------------------------------------------------------------------------------------
# input checks


def _check_model(model: str) -> int:
    if model not in MODELS:
        raise CustsegError(f"unknown purchase model {model!r}: use one of {', '.join(MODELS)}")
    # 0: BG/NBD, 1: MBG/NBD (the Beta terms shifted by one purchase); Pareto/NBD is dispatched
    # to its own functions before any code that uses this shift
    return 1 if model == "mbgnbd" else 0


def _summary(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise CustsegError("frequency, recency and age must be 1-D arrays of the same length")
    if x.size:
        if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
            raise CustsegError("frequency, recency and age must be finite numbers")
        if x.min() < 0 or t_x.min() < 0 or T.min() < 0:
            raise CustsegError("frequency, recency and age cannot be negative")
        if (t_x > T * (1 + 1e-9) + 1e-9).any():
            raise CustsegError("recency (time of the last purchase) cannot exceed the customer's age")
    # a customer without repeat purchases has no last repeat purchase: recency 0
    t_x = np.where(x > 0, np.minimum(t_x, T), 0.0)
    return x, t_x, T


def _weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise CustsegError("customer weights must be finite, non-negative, one per customer")
    return w


# --------------------------------------------------------------------------------------------
# BG/NBD and MBG/NBD


def purchase_log_likelihood(params, x, t_x, T, model: str = DEFAULT_MODEL) -> np.ndarray:
    """Per-customer log-likelihood of (r, alpha, a, b) under BG/NBD or MBG/NBD, or (r, alpha, s, beta) under Pareto/NBD.

    BG/NBD:  L = B(a, b+x)/B(a, b) * G * [(alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x)]
    MBG/NBD: L = B(a, b+x+1)/B(a, b) * G * [(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)]
    with G = Gamma(r+x) alpha^r / Gamma(r); the sum is taken in logs (logaddexp).
    """
    shift = _check_model(model)
    if model == PNBD:
        return _pnbd_parts(np.asarray(params, dtype=np.float64), *_summary(x, t_x, T))[0]
    ll, _ = _purchase_ll_grad(np.asarray(params, dtype=np.float64), *_summary(x, t_x, T), shift, False)
    return ll


def _purchase_ll_grad(theta, x, t_x, T, shift: int, want_grad: bool):
    """Log-likelihood per customer and (optionally) its gradient in (r, alpha, a, b), per customer.

    ``shift`` is 0 for BG/NBD and 1 for MBG/NBD: the latter's Beta terms are the former's with
    x replaced by x + 1, and its drop-out-at-last-purchase term exists for every customer.
    """
    r, alpha, a, b = (float(v) for v in theta)
    xs = x + shift
    log_aT = np.log(alpha + T)
    log_at = np.log(alpha + t_x)
    rx = r + x
    l1 = -rx * log_aT
    has2 = x > 0 if shift == 0 else np.ones(x.shape, dtype=bool)
    # b + xs - 1 > 0 wherever the second term exists (xs >= 1 there)
    denom2 = np.where(has2, b + xs - 1.0, 1.0)
    l2 = np.where(has2, math.log(a) - np.log(denom2) - rx * log_at, -np.inf)
    lse = np.logaddexp(l1, l2)
    ll = (
        gammaln(rx) - math.lgamma(r) + r * math.log(alpha)
        + math.lgamma(a + b) + gammaln(b + xs) - math.lgamma(b) - gammaln(a + b + xs)
        + lse
    )
    if not want_grad:
        return ll, None
    w2 = np.exp(l2 - lse)  # share of the drop-out term in the sum, 0 where it is absent
    w1 = 1.0 - w2
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xs)
    g_r = digamma(rx) - digamma(r) + math.log(alpha) - w1 * log_aT - w2 * log_at
    g_alpha = r / alpha - rx * (w1 / (alpha + T) + w2 / (alpha + t_x))
    g_a = psi_ab - psi_abx + w2 / a
    g_b = psi_ab + digamma(b + xs) - digamma(b) - psi_abx - w2 / denom2
    return ll, (g_r, g_alpha, g_a, g_b)


def _purchase_objective(log_theta, x, t_x, T, w, shift):
    theta = np.exp(log_theta)
    ll, grads = _purchase_ll_grad(theta, x, t_x, T, shift, True)
    total = w.sum()
    value = -float(w @ ll) / total
    grad = np.array([-float(w @ g) for g in grads]) * theta / total  # chain rule: d/dlog p = p d/dp
    if not np.isfinite(value) or not np.isfinite(grad).all():
        return 1e300, np.zeros(4)
    return value, grad


def _maximise(objective, start, bounds, args, total_ll, what: str, *, jac: bool, ftol: float, gtol: float):
    """L-BFGS-B on log-parameters (one code path for every model): the parameters and the data's log-likelihood there.

    ``objective(log_theta, *args)`` is the mean negative log-likelihood (with its gradient when
    ``jac``; scipy's finite differences otherwise); ``total_ll(theta)`` the summed log-likelihood.
    """
    res = minimize(objective, start, args=args, jac=jac, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000, "ftol": ftol, "gtol": gtol})
    theta = np.exp(res.x)
    ll = total_ll(theta) if np.isfinite(theta).all() else float("nan")
    if not math.isfinite(ll):
        raise CustsegError(f"the {what} model did not converge on these customers")
    return theta, ll


def _sample(n: int, sample_size: int | None, seed: int, weights: np.ndarray | None):
    """Rows (and counts) of a seeded sample of at most sample_size customers.

    With integer weights (counts of identical rows) the sample is drawn over customers, not rows.
    """
    rng = np.random.default_rng(seed)
    if weights is None:
        if sample_size is None or n <= sample_size:
            return np.arange(n), None
        return np.sort(rng.choice(n, size=sample_size, replace=False)), None
    total = weights.sum()
    if sample_size is None or total <= sample_size or not np.all(weights == np.round(weights)):
        return np.arange(n), weights
    counts = rng.multivariate_hypergeometric(weights.astype(np.int64), sample_size, method="marginals")
    rows = np.flatnonzero(counts)
    return rows, counts[rows].astype(np.float64)


def _collapse(*columns: np.ndarray, weights: np.ndarray | None):
    """Identical rows merged into one with their count as weight (the likelihood is a sum)."""
    stacked = np.column_stack(columns)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
    return [uniq[:, i] for i in range(uniq.shape[1])], w


def fit_purchases(
    x,
    t_x,
    T,
    *,
    model: str = DEFAULT_MODEL,
    weights=None,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    time_unit: str = "days",
) -> PurchaseModel:
    """Maximum-likelihood (r, alpha, a, b) of BG/NBD or MBG/NBD, or (r, alpha, s, beta) of Pareto/NBD, on at most ``sample_size`` customers.

    ``weights`` are counts of identical (x, t_x, T) rows (or any non-negative weights; the
    sample is then skipped unless they are integers).  ``sample_size=None`` fits on everyone.
    The log-likelihood reported is the sample's (the full data's when nothing is sampled).
    """
    shift = _check_model(model)
    x, t_x, T = _summary(x, t_x, T)
    w = None if weights is None else _weights(weights, len(x))
    if len(x) == 0 or (w is not None and w.sum() <= 0):
        raise CustsegError("no customers to fit the purchase model on")
    rows, w = _sample(len(x), sample_size, seed, w)
    (x, t_x, T), w = _collapse(x[rows], t_x[rows], T[rows], weights=w)
    if not (x > 0).any():
        raise CustsegError("no customer bought twice: the purchase model needs repeat purchases to fit")
    scale = max(float(np.average(T, weights=w)), 1e-6)
    if model == PNBD:
        return _fit_pnbd(x, t_x, T, w, scale, time_unit)
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 4
    bounds[1] = (math.log(scale) - _LOG_BOUND, math.log(scale) + _LOG_BOUND)
    theta, ll = _maximise(
        _purchase_objective, np.log([1.0, scale, 1.0, 1.0]), bounds, (x, t_x, T, w, shift),
        lambda th: float(w @ _purchase_ll_grad(th, x, t_x, T, shift, False)[0]), "purchase",
        jac=True, ftol=1e-13, gtol=1e-9,
    )
    r, alpha, a, b = (float(v) for v in theta)
    return PurchaseModel(model, r, alpha, a, b, ll, int(round(w.sum())), time_unit)


def p_alive(params: PurchaseModel, x, t_x, T) -> np.ndarray:
    """P(the customer is still active | x, t_x, T), in [0, 1].

    BG/NBD: 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) — so exactly 1 when x = 0.
    MBG/NBD: 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)) — below 1 for everyone.
    Pareto/NBD: 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0) (FHL's note, eq. 4) — below 1
    for everyone with t_x < T.
    """
    shift = _check_model(params.model)
    x, t_x, T = _summary(x, t_x, T)
    if params.model == PNBD:
        return _pnbd_p_alive(params, x, t_x, T)
    return _p_alive(params, x, t_x, T, shift)


def _p_alive(params: PurchaseModel, x, t_x, T, shift: int) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xs = x + shift
    has = x > 0 if shift == 0 else np.ones(x.shape, dtype=bool)
    log_odds_dead = math.log(a) - np.log(np.where(has, b + xs - 1.0, 1.0)) + (r + x) * (
        np.log(alpha + T) - np.log(alpha + t_x)
    )
    return np.where(has, expit(-log_odds_dead), 1.0)


_GL_NODES, _GL_WEIGHTS = roots_legendre(96)
_GL_NODES = 0.5 * (_GL_NODES + 1.0)
_GL_WEIGHTS = 0.5 * _GL_WEIGHTS


def _future_purchases_alive(r_post, alpha_post, a: float, b_post, t) -> np.ndarray:
    """E[purchases in the next t | alive] with lambda ~ Gamma(r_post, alpha_post), p ~ Beta(a, b_post).

    = E_p[(1 - (alpha_post / (alpha_post + p t))^r_post) / p]
    = (a + b_post - 1)/(a - 1) * (1 - 2F1(r_post, a - 1; a + b_post - 1; -t/alpha_post)),
    the closed form of FHL 2005 after Euler's transformation (no (..)^r_post * 2F1 overflow).
    Where scipy's 2F1 fails (huge x, or a result outside the bounds 0 <= E <= r_post t /
    alpha_post that hold for every p) the expectation is integrated over p's quantiles instead
    (96-point Gauss-Legendre; ~1e-5 relative).  All array arguments broadcast.
    """
    r_post, alpha_post, b_post, t = np.broadcast_arrays(
        np.atleast_1d(np.asarray(r_post, dtype=np.float64)),
        np.atleast_1d(np.asarray(alpha_post, dtype=np.float64)),
        np.atleast_1d(np.asarray(b_post, dtype=np.float64)),
        np.atleast_1d(np.asarray(t, dtype=np.float64)),
    )
    upper = r_post * t / alpha_post
    if abs(a - 1.0) < 5e-7:  # removable singularity at a = 1: average the two sides
        out = 0.5 * (
            _future_purchases_alive(r_post, alpha_post, 1.0 - 1e-6, b_post, t)
            + _future_purchases_alive(r_post, alpha_post, 1.0 + 1e-6, b_post, t)
        )
        return np.clip(out, 0.0, upper)
    c = a + b_post - 1.0
    with np.errstate(all="ignore"):
        out = np.atleast_1d(c / (a - 1.0) * (1.0 - hyp2f1(r_post, a - 1.0, c, -t / alpha_post)))
    bad = ~(np.isfinite(out) & (out >= -1e-9 * upper) & (out <= upper * (1 + 1e-9))) & (t > 0)
    if bad.any():
        out[bad] = _future_purchases_quadrature(r_post[bad], alpha_post[bad], a, b_post[bad], t[bad])
    return np.where(t > 0, np.clip(out, 0.0, upper), 0.0)


def _future_purchases_quadrature(r_post, alpha_post, a, b_post, t) -> np.ndarray:
    """The same expectation as a Gauss-Legendre sum over p's Beta quantiles (the slow fallback)."""
    out = np.empty(len(r_post))
    for i in range(len(r_post)):
        p = betaincinv(a, b_post[i], _GL_NODES)
        p = np.maximum(p, 1e-300)
        f = -np.expm1(-r_post[i] * np.log1p(p * t[i] / alpha_post[i])) / p
        out[i] = float(_GL_WEIGHTS @ f)
    return out


def expected_purchases(params: PurchaseModel, t) -> np.ndarray:
    """Unconditional E[X(t)]: mean repeat purchases of a new customer within t of their first.

    BG/NBD:  (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]
    MBG/NBD: b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]
    Pareto/NBD: r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]
    Summed over customers by their first-purchase dates this is the "tracking" curve.
    """
    shift = _check_model(params.model)
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if not np.isfinite(t).all() or (t < 0).any():
        raise CustsegError("times must be finite and non-negative")
    if params.model == PNBD:
        return _pnbd_future_alive(params.r, params.alpha, params.s, params.beta, t)
    factor = params.b / (params.a + params.b) if shift else 1.0
    return factor * _future_purchases_alive(params.r, params.alpha, params.a, params.b + shift, t).reshape(t.shape)


def tracking_curve(params: PurchaseModel, first_purchase, times, weights=None) -> np.ndarray:
    """Expected cumulative repeat purchases of a cohort by each of ``times`` (the papers' tracking plot).

    ``first_purchase`` holds each customer's first-purchase time and ``times`` the calendar
    times of the curve, on the same clock and unit (e.g. days since the data's start); a
    customer contributes E[X(max(0, time - first_purchase))].  ``weights`` counts identical
    customers.  Distinct first-purchase times are summed once each, so a daily clock is cheap.
    """
    starts = np.asarray(first_purchase, dtype=np.float64).ravel()
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if not (np.isfinite(starts).all() and np.isfinite(times).all()):
        raise CustsegError("first-purchase times and curve times must be finite")
    w = _weights(weights, len(starts))
    uniq, inverse = np.unique(starts, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=len(uniq))
    curve = np.empty(times.shape)
    for i, time_point in enumerate(times.ravel()):
        ages = np.maximum(time_point - uniq, 0.0)
        curve.ravel()[i] = float(counts @ expected_purchases(params, ages))
    return curve


def conditional_expected_purchases(params: PurchaseModel, t: float, x, t_x, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] = P(alive) * E[purchases in t | alive, history].

    Given the history, a live customer's lambda ~ Gamma(r + x, alpha + T) and
    p ~ Beta(a, b + x) (BG/NBD) or Beta(a, b + x + 1) (MBG/NBD); this equals FHL 2005 eq. (10)
    and Batislam et al.'s counterpart.  Pareto/NBD: lambda ~ Gamma(r + x, alpha + T) and
    mu ~ Gamma(s, beta + T) given alive (Schmittlein et al. 1987, eq. 22).
    """
    shift = _check_model(params.model)
    x, t_x, T = _summary(x, t_x, T)
    t = float(t)
    if not math.isfinite(t) or t < 0:
        raise CustsegError("the horizon must be a finite, non-negative time")
    if t == 0:
        return np.zeros(x.shape)
    if params.model == PNBD:
        return _pnbd_p_alive(params, x, t_x, T) * _pnbd_future_alive(params.r + x, params.alpha + T, params.s, params.beta + T, t)
    alive = _p_alive(params, x, t_x, T, shift)
    return alive * _future_purchases_alive(params.r + x, params.alpha + T, params.a, params.b + x + shift, t)


# --------------------------------------------------------------------------------------------
# Pareto/NBD


def _log_hyp2f1_1(b: float | np.ndarray, c, z, fallback: bool = True) -> np.ndarray:
    """log 2F1(1, b; c; z) for 0 <= z < 1 and c > 0: a positive, increasing series in z.

    ``fallback=False`` (z < 0, see :func:`_pnbd_log_F`): NaN where scipy's value is not finite."""
    with np.errstate(all="ignore"):
        value = np.log(hyp2f1(1.0, b, c, z))
    bad = ~np.isfinite(value)
    if not fallback:
        value[bad] = np.nan
    elif bad.any():
        b_, c_, z_ = (np.broadcast_to(np.asarray(v, dtype=np.float64), value.shape)[bad] for v in (b, c, z))
        value[bad] = _log_hyp2f1_1_quadrature(b_, c_, z_)
    return value


def _log_hyp2f1_1_quadrature(b, c, z) -> np.ndarray:
    """The same by Euler's integral: 2F1(1, b; c; z) = (c-1) int_0^1 v^(c-2) (1 - z + z v)^(-b) dv (c > 1).

    Integrated in y = log v, where log of the integrand, (c-1) y - b log(1 - z + z e^y), is
    concave and increasing (slope between c-1-b z and c-1), so the integrand peaks at y = 0:
    16-point Gauss-Legendre panels, geometric near 0 (the first min(1/(c-1), 1/4) wide, each
    1.5 times the last) and at most 1 wide beyond (the integrand's features there, around
    y = log(1-z), are O(1) wide), down to where the integrand is below e^-40 of its peak.
    Vectorised over rows (chunks of _QUAD_ROWS): the fallback for arguments where scipy's 2F1
    is not finite — large b with z near 1, e.g. b >= 300, z >= 0.99, as when a fit's r and alpha
    run off together (no heterogeneity in the purchase rate).  Against mpmath: ~1e-11 relative
    or better on b in 0.3..1e6, c - b - 1 in 1e-3..50, z up to 1 - 1e-8 (tests/test_lifecycle_models.py).
    """
    b, c, z = (np.asarray(v, dtype=np.float64).ravel() for v in np.broadcast_arrays(b, c, z))
    out = np.empty(len(b))
    for start in range(0, len(b), _QUAD_ROWS):
        rows = slice(start, start + _QUAD_ROWS)
        out[rows] = _log_euler_integral(b[rows], c[rows], z[rows])
    return out


_QUAD_NODES, _QUAD_WEIGHTS = roots_legendre(16)
_QUAD_ROWS = 256
_QUAD_GROWTH = 1.5
_QUAD_MAX_PANELS = 400


def _log_euler_integral(b, c, z) -> np.ndarray:
    k = c - 1.0
    y_lo = -(40.0 + np.maximum(b, 0.0) * -np.log1p(-z)) / k - 1.0
    h0 = np.minimum(1.0 / k, 0.25)
    growing = np.ceil(np.log(1.0 / h0) / math.log(_QUAD_GROWTH))  # panels until they are 1 wide
    covered = h0 * (_QUAD_GROWTH**growing - 1.0) / (_QUAD_GROWTH - 1.0)
    need = growing + np.ceil(np.maximum(-y_lo - covered, 0.0)) + 1.0
    n_panels = int(min(need.max(), _QUAD_MAX_PANELS))
    width = np.minimum(h0[:, None] * _QUAD_GROWTH ** np.arange(n_panels)[None, :], 1.0)
    upper = -(np.cumsum(width, axis=1) - width)
    half = 0.5 * width
    y = (upper - half)[:, :, None] + half[:, :, None] * _QUAD_NODES
    log_f = k[:, None, None] * y - b[:, None, None] * np.log1p(z[:, None, None] * np.expm1(y))
    terms = (log_f + np.log(half)[:, :, None] + np.log(_QUAD_WEIGHTS)).reshape(len(b), -1)
    peak = terms.max(axis=1)
    return np.log(k) + peak + np.log(np.exp(terms - peak[:, None]).sum(axis=1))


#: Largest s for which alpha < beta is computed with the alpha >= beta form at z < 0 (see
#: :func:`_pnbd_log_F`): scipy's 2F1(1, b; c; z) for z < 0 is within 1e-12 of mpmath there (or not
#: finite, and then not used), and is not beyond it (wrong by 1e-5..1e7 for c - b >= 6, b ~ 50).
NEGATIVE_Z_MAX_S = 1.0


def _pnbd_log_F(r, alpha, s, beta, x, tau, grad: bool = False):
    """log of FHL's A0 term at tau (A0 = F(t_x) - F(T)), in the form that stays in range, and with
    ``grad`` its derivatives in (r, alpha, s, beta) (else None).

    FHL's note: F(tau) = 2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/(alpha+tau)) / (alpha+tau)^(r+s+x)
    when alpha >= beta, else 2F1(r+s+x, r+x; r+s+x+1; (beta-alpha)/(beta+tau)) / (beta+tau)^(r+s+x)
    (the choice keeps the argument in [0, 1)).  Euler's transformation 2F1(a, b; c; z) =
    (1-z)^(c-a-b) 2F1(c-a, c-b; c; z) turns both into a 2F1(1, .; r+s+x+1; z), which neither
    overflows for large x nor suffers the alpha/beta powers:
      alpha >= beta: -(r+x) log(alpha+tau) - s log(beta+tau) + log 2F1(1, r+x; r+s+x+1; z)
      alpha <  beta: -(r+x-1) log(alpha+tau) - (s+1) log(beta+tau) + log 2F1(1, s+1; r+s+x+1; z)
    The first is the same function for alpha < beta (z < 0 then).  Where data show little drop-out
    (beta >> alpha + T) the second's z is near 1, where scipy's 2F1 costs ~10 us a value, against
    ~0.1 us for the first's large negative z: with s <= NEGATIVE_Z_MAX_S the first form is used,
    and the second only for the values scipy does not give finite there.
    """
    x, tau = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(tau, dtype=np.float64))
    if alpha >= beta:
        return _pnbd_alpha_form(r, alpha, s, beta, x, tau, grad, True)
    if s > NEGATIVE_Z_MAX_S:
        return _pnbd_beta_form(r, alpha, s, beta, x, tau, grad)
    value, grads = _pnbd_alpha_form(r, alpha, s, beta, x, tau, grad, False)
    bad = ~np.isfinite(value)
    if grads is not None:
        for g in grads:
            bad |= ~np.isfinite(g)
    if bad.any():
        v_bad, g_bad = _pnbd_beta_form(r, alpha, s, beta, x[bad], tau[bad], grad)
        value[bad] = v_bad
        if grads is not None:
            for g, g2 in zip(grads, g_bad):
                g[bad] = g2
    return value, grads


def _pnbd_alpha_form(r, alpha, s, beta, x, tau, grad: bool, fallback: bool):
    rx = r + x
    c = rx + s + 1.0
    z = (alpha - beta) / (alpha + tau)
    log_a, log_b = np.log(alpha + tau), np.log(beta + tau)
    if not grad:
        return -rx * log_a - s * log_b + _log_hyp2f1_1(rx, c, z, fallback), None
    log_h, h_b, h_c, h_z = _log_hyp2f1_1_grad(rx, c, z, fallback)
    return -rx * log_a - s * log_b + log_h, [
        -log_a + h_b + h_c,
        -rx / (alpha + tau) + h_z * (beta + tau) / (alpha + tau) ** 2,
        -log_b + h_c,
        -s / (beta + tau) - h_z / (alpha + tau),
    ]


def _pnbd_beta_form(r, alpha, s, beta, x, tau, grad: bool):
    rx = r + x
    c = rx + s + 1.0
    z = (beta - alpha) / (beta + tau)
    log_a, log_b = np.log(alpha + tau), np.log(beta + tau)
    if not grad:
        return -(rx - 1.0) * log_a - (s + 1.0) * log_b + _log_hyp2f1_1(s + 1.0, c, z), None
    log_h, h_b, h_c, h_z = _log_hyp2f1_1_grad(s + 1.0, c, z, True)
    return -(rx - 1.0) * log_a - (s + 1.0) * log_b + log_h, [
        -log_a + h_c,
        -(rx - 1.0) / (alpha + tau) - h_z / (beta + tau),
        -log_b + h_b + h_c,
        -(s + 1.0) / (beta + tau) + h_z * (alpha + tau) / (beta + tau) ** 2,
    ]


def _pnbd_pairs(x, t_x, T):
    """Distinct (x, t_x) and (x, T) pairs and each row's index into them: the 2F1 work of one
    likelihood evaluation (a fit's rows, collapsed on (x, t_x, T), repeat x and T a lot — on a
    1M-line run's 10,000-customer sample 3,053 rows have 745 and 811 distinct pairs)."""
    return _distinct_pairs(x, t_x) + _distinct_pairs(x, T)


def _pnbd_parts(theta, x, t_x, T, distinct: bool = False, pairs=None, grad: bool = False):
    """Per-customer Pareto/NBD log-likelihood, the logs of its two terms (alive, gone) and, with
    ``grad``, its gradient in (r, alpha, s, beta) (else None).

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [(alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0]
    (Fader, Hardie & Lee 2005, "A note on implementing the Pareto/NBD model in MATLAB", eq. 2);
    the first term is "still alive at T", the second "left between t_x and T".
    ``distinct``: compute the 2F1 terms once per distinct (x, t_x) and (x, T) pair (whole-day
    summaries repeat them a lot); ``pairs``: those pairs precomputed by :func:`_pnbd_pairs`.
    The gradient is analytic but for 2F1's derivatives in b and c (see :func:`_log_hyp2f1_1_grad`).
    """
    r, alpha, s, beta = (float(v) for v in theta)
    rx = r + x
    log_aT, log_bT = np.log(alpha + T), np.log(beta + T)
    l1 = -rx * log_aT - s * log_bT
    if distinct and len(x) and pairs is None:
        pairs = _pnbd_pairs(x, t_x, T)
    if pairs is None:
        pairs = (x, t_x, slice(None), x, T, slice(None))
    kx, kt, inv_t, kx2, kT, inv_T = pairs
    f_t, g_t = _pnbd_log_F(r, alpha, s, beta, kx, kt, grad=grad)
    f_T, g_T = _pnbd_log_F(r, alpha, s, beta, kx2, kT, grad=grad)
    f_t, f_T = f_t[inv_t], f_T[inv_T]
    # A0 = F(t_x) - F(T) > 0 for t_x < T, 0 when the last purchase is at T
    with np.errstate(divide="ignore"):
        log_a0 = f_t + np.log(-np.expm1(np.minimum(f_T - f_t, 0.0)))
    l2 = math.log(s) - np.log(r + s + x) + log_a0
    lse = np.logaddexp(l1, l2)
    ll = gammaln(rx) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta) + lse
    if not grad:
        return ll, l1, l2, None
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.exp(np.minimum(f_T - f_t, 0.0))  # F(T)/F(t_x), 1 when the last purchase is at T
        p2 = np.exp(l2 - lse)  # share of the "left between t_x and T" term
        gone = p2 > 0
        spread = np.where(gone, 1.0 - q, 1.0)
        d_a0 = [np.where(gone, (gt[inv_t] - q * gT[inv_T]) / spread, 0.0) for gt, gT in zip(g_t, g_T)]
    p1 = 1.0 - p2
    inv_rsx = 1.0 / (r + s + x)
    grads = (
        digamma(rx) - digamma(r) + math.log(alpha) - p1 * log_aT + p2 * (d_a0[0] - inv_rsx),
        r / alpha - p1 * rx / (alpha + T) + p2 * d_a0[1],
        math.log(beta) - p1 * log_bT + p2 * (1.0 / s - inv_rsx + d_a0[2]),
        s / beta - p1 * s / (beta + T) + p2 * d_a0[3],
    )
    return ll, l1, l2, grads


def _log_hyp2f1_1_grad(b, c, z, fallback: bool = True):
    """log 2F1(1, b; c; z) and its derivatives in b, c and z (arrays of one shape).

    z: closed form from Gauss's contiguous relations for a = 1, (c-1) + (1-c+bz) F = z(1-z) F',
    so d log F/dz = ((c-1)/F + 1 - c + bz) / (z(1-z)) costs nothing once F is known; below
    |z| = 0.05, where that difference cancels, F' = (b/c) 2F1(2, b+1; c+1; z) (cheap there).
    b and c: forward differences of log F alone (no closed form), two more 2F1 evaluations —
    three per gradient instead of the five a finite-difference gradient of the whole
    likelihood costs.
    """
    b, c, z = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(b, c, z))
    log_f = _log_hyp2f1_1(b, c, z, fallback)
    step_b = 1e-7 * np.maximum(b, 1.0)
    step_c = 1e-7 * np.maximum(c, 1.0)
    d_b = (_log_hyp2f1_1(b + step_b, c, z, fallback) - log_f) / step_b
    d_c = (_log_hyp2f1_1(b, c + step_c, z, fallback) - log_f) / step_c
    small = np.abs(z) < 0.05
    d_z = np.empty_like(log_f)
    with np.errstate(all="ignore"):
        big = ~small
        zb = z[big]
        d_z[big] = ((c[big] - 1.0) * np.exp(-log_f[big]) + 1.0 - c[big] + b[big] * zb) / (zb * (1.0 - zb))
        d_z[small] = b[small] / c[small] * hyp2f1(2.0, b[small] + 1.0, c[small] + 1.0, z[small]) * np.exp(-log_f[small])
    return log_f, d_b, d_c, d_z


def _pnbd_ll_grad(theta, x, t_x, T, pairs):
    """Per-customer Pareto/NBD log-likelihood and its gradient in (r, alpha, s, beta) (:func:`_pnbd_parts`)."""
    ll, _, _, grads = _pnbd_parts(theta, x, t_x, T, pairs=pairs, grad=True)
    return ll, grads


def _pnbd_objective(log_theta, x, t_x, T, w, pairs):
    theta = np.exp(log_theta)
    ll, grads = _pnbd_ll_grad(theta, x, t_x, T, pairs)
    total = w.sum()
    value = -float(w @ ll) / total
    grad = np.array([-float(w @ g) for g in grads]) * theta / total  # d/dlog p = p d/dp
    if not math.isfinite(value) or not np.isfinite(grad).all():
        return 1e300, np.zeros(4)
    return value, grad


def _fit_pnbd(x, t_x, T, w, scale: float, time_unit: str) -> PurchaseModel:
    """L-BFGS-B on log-parameters with the gradient of :func:`_pnbd_ll_grad` (each call is
    vectorised, its 2F1 work once per distinct (x, t_x) and (x, T) pair)."""
    scaled = (math.log(scale) - _LOG_BOUND, math.log(scale) + _LOG_BOUND)
    bounds = [(-_LOG_BOUND, math.log(PNBD_MAX_R)), scaled, (-_LOG_BOUND, _LOG_BOUND), scaled]
    pairs = _pnbd_pairs(x, t_x, T)
    theta, ll = _maximise(
        _pnbd_objective, np.log([1.0, scale, 1.0, scale]), bounds, (x, t_x, T, w, pairs),
        lambda th: float(w @ _pnbd_parts(th, x, t_x, T, pairs=pairs)[0]), "purchase",
        jac=True, ftol=1e-11, gtol=1e-8,
    )
    r, alpha, s, beta = (float(v) for v in theta)
    return PurchaseModel(PNBD, r, alpha, s, beta, ll, int(round(w.sum())), time_unit)


def _pnbd_p_alive(params: PurchaseModel, x, t_x, T) -> np.ndarray:
    _, l1, l2, _ = _pnbd_parts((params.r, params.alpha, params.s, params.beta), x, t_x, T, distinct=True)
    return expit(l1 - l2)


def _pnbd_future_alive(r_post, alpha_post, s: float, beta_post, t) -> np.ndarray:
    """E[purchases in the next t | alive], lambda ~ Gamma(r_post, alpha_post), mu ~ Gamma(s, beta_post).

    = r_post beta_post / (alpha_post (s - 1)) [1 - (beta_post / (beta_post + t))^(s-1)], written
    as r_post/alpha_post * beta_post * (1 - exp(-(s-1) L)) / (s-1) with L = log(1 + t/beta_post),
    whose s -> 1 limit is L (no singularity at s = 1).
    """
    r_post, alpha_post, beta_post, t = np.broadcast_arrays(
        np.atleast_1d(np.asarray(r_post, dtype=np.float64)),
        np.atleast_1d(np.asarray(alpha_post, dtype=np.float64)),
        np.atleast_1d(np.asarray(beta_post, dtype=np.float64)),
        np.atleast_1d(np.asarray(t, dtype=np.float64)),
    )
    log_ratio = np.log1p(t / beta_post)
    k = s - 1.0
    if abs(k) < 1e-12:
        g = log_ratio
    else:
        g = -np.expm1(-k * log_ratio) / k
    return np.where(t > 0, r_post / alpha_post * beta_post * g, 0.0)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma


def _spend_ll_grad(theta, x, m, want_grad: bool):
    p, q, g = (float(v) for v in theta)
    px = p * x
    log_gxm = np.log(g + x * m)
    log_m = np.log(m)
    log_x = np.log(x)
    ll = (
        gammaln(px + q) - gammaln(px) - math.lgamma(q) + q * math.log(g)
        + px * log_x + (px - 1.0) * log_m - (px + q) * log_gxm
    )
    if not want_grad:
        return ll, None
    psi = digamma(px + q)
    g_p = x * (psi - digamma(px) + log_x + log_m - log_gxm)
    g_q = psi - digamma(q) + math.log(g) - log_gxm
    g_g = q / g - (px + q) / (g + x * m)
    return ll, (g_p, g_q, g_g)


def spend_log_likelihood(params, x, mean_value) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood of (p, q, gamma) for the mean order value over x >= 1 orders.

    f(m | x) = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q x^(px) m^(px-1) / (gamma + x m)^(px+q)
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(mean_value, dtype=np.float64)
    if (x < 1).any() or (m <= 0).any():
        raise CustsegError("the spend likelihood needs customers with at least one order and a positive mean")
    return _spend_ll_grad(np.asarray(params, dtype=np.float64), x, m, False)[0]


def _spend_objective(log_theta, x, m, w):
    theta = np.exp(log_theta)
    ll, grads = _spend_ll_grad(theta, x, m, True)
    total = w.sum()
    value = -float(w @ ll) / total
    grad = np.array([-float(w @ g) for g in grads]) * theta / total
    if not np.isfinite(value) or not np.isfinite(grad).all():
        return 1e300, np.zeros(3)
    return value, grad


def fit_spend(
    x,
    mean_value,
    *,
    weights=None,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> SpendModel:
    """Maximum-likelihood Gamma-Gamma (p, q, gamma) on customers with x >= 1 and a positive mean.

    ``x`` is the number of orders ``mean_value`` averages (lifetimes and the CDNOW data use the
    repeat orders); other customers are left out of the fit (they still get a value from
    :func:`expected_order_value`).  q is kept above 1, where the population mean order value
    p * gamma / (q - 1) exists.
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(mean_value, dtype=np.float64)
    if x.shape != m.shape or x.ndim != 1:
        raise CustsegError("frequency and mean order value must be 1-D arrays of the same length")
    w = None if weights is None else _weights(weights, len(x))
    keep = np.isfinite(x) & np.isfinite(m) & (x >= 1) & (m > 0)
    if w is not None:
        keep &= w > 0
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise CustsegError("no customer with a repeat order and a positive spend to fit the spend model on")
    x, m = x[rows], m[rows]
    w = None if w is None else w[rows]
    picked, w = _sample(len(x), sample_size, seed, w)
    (x, m), w = _collapse(x[picked], m[picked], weights=w)
    scale = float(np.average(m, weights=w))
    bounds = [(-_LOG_BOUND, _LOG_BOUND), (math.log1p(1e-6), _LOG_BOUND), (math.log(scale) - _LOG_BOUND, math.log(scale) + _LOG_BOUND)]
    theta, ll = _maximise(
        _spend_objective, np.log([1.0, 2.0, scale]), bounds, (x, m, w),
        lambda th: float(w @ _spend_ll_grad(th, x, m, False)[0]), "spend", jac=True, ftol=1e-13, gtol=1e-9,
    )
    p, q, g = (float(v) for v in theta)
    return SpendModel(p, q, g, ll, int(round(w.sum())))


def expected_order_value(params: SpendModel, x, mean_value) -> np.ndarray:
    """Expected value of a customer's future orders: p (gamma + x m) / (p x + q - 1).

    That is the customer's own mean m weighted by px / (px + q - 1) against the population mean
    p gamma / (q - 1) — so a customer with x = 0 gets the population mean.  Documented choices
    for what the model does not cover (always finite): a customer whose mean order value is zero,
    negative (refunds exceed purchases) or missing gets **0** — we do not predict revenue from a
    customer whose orders netted nothing; x = 0 with a positive mean gets the population mean.
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(mean_value, dtype=np.float64)
    p, q, g = params.p, params.q, params.gamma
    positive = np.isfinite(m) & (m > 0)
    xs = np.where(positive & np.isfinite(x), np.maximum(x, 0.0), 0.0)
    ms = np.where(positive, m, 0.0)
    value = p * (g + xs * ms) / (p * xs + q - 1.0)
    return np.where(positive, value, 0.0)


# --------------------------------------------------------------------------------------------
# scoring and CLV


def discount_factors(horizon_months: int, monthly_discount: float = DEFAULT_MONTHLY_DISCOUNT) -> np.ndarray:
    """1 / (1 + d)^m for the months m = 1..horizon: a month's orders are discounted at its end."""
    if int(horizon_months) != horizon_months or horizon_months < 1:
        raise CustsegError(f"the horizon must be a whole number of months >= 1, not {horizon_months}")
    if not math.isfinite(monthly_discount) or monthly_discount <= -1:
        raise CustsegError(f"the monthly discount rate must be a number above -1, not {monthly_discount}")
    return (1.0 + monthly_discount) ** -np.arange(1, int(horizon_months) + 1, dtype=np.float64)


def score_customers(
    model: LifecycleModel,
    x,
    t_x,
    T,
    mean_value=None,
    value_orders=None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, np.ndarray]:
    """P(alive), expected orders and discounted expected value over the model's horizon, per customer.

    Returns float64 arrays ``p_alive``, ``expected_orders`` (repeat orders in the next
    ``horizon_months``) and, when ``model.spend`` and ``mean_value`` are given,
    ``expected_value`` = sum over months m of (E[orders by month m] - E[orders by month m-1])
    * expected order value / (1 + d)^m.  ``value_orders`` is the order count behind
    ``mean_value`` (default ``x``).  The summary is in days (``model.days_per_month`` per month).

    Works ``chunk_size`` customers at a time; within a chunk the part of the expectation that
    depends on (x, T) only is computed once per distinct (x, T) — integer-day summaries repeat a
    lot — so the cost is a few passes over the arrays plus ``horizon`` 2F1 calls per distinct pair.
    """
    purchases = model.purchases
    shift = _check_model(purchases.model)
    x, t_x, T = np.asarray(x), np.asarray(t_x), np.asarray(T)
    if mean_value is not None:
        mean_value = np.asarray(mean_value)
    if value_orders is not None:
        value_orders = np.asarray(value_orders)
    n = len(x)
    for extra, name in ((mean_value, "mean order value"), (value_orders, "order counts")):
        if extra is not None and extra.shape != (n,):
            raise CustsegError(f"the {name} must have one value per customer ({n}), not shape {extra.shape}")
    boundaries, discounts = model.horizon_boundaries()
    want_value = model.spend is not None and mean_value is not None
    out = {"p_alive": np.empty(n), "expected_orders": np.empty(n)}
    if want_value:
        out["expected_value"] = np.empty(n)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        xc, tc, Tc = _summary(x[start:stop], t_x[start:stop], T[start:stop])
        key_x, key_T, inverse = _distinct_pairs(xc, Tc)
        orders_by = np.empty((len(boundaries), len(key_x)))
        if purchases.model == PNBD:
            alive = _pnbd_p_alive(purchases, xc, tc, Tc)
            for j, t in enumerate(boundaries):
                orders_by[j] = _pnbd_future_alive(purchases.r + key_x, purchases.alpha + key_T, purchases.s, purchases.beta + key_T, float(t))
        else:
            alive = _p_alive(purchases, xc, tc, Tc, shift)
            for j, t in enumerate(boundaries):
                orders_by[j] = _future_purchases_alive(purchases.r + key_x, purchases.alpha + key_T, purchases.a, purchases.b + key_x + shift, float(t))
        out["p_alive"][start:stop] = alive
        out["expected_orders"][start:stop] = alive * orders_by[-1][inverse]
        if want_value:
            monthly = np.diff(orders_by, axis=0, prepend=0.0)
            discounted = discounts @ monthly  # per distinct pair
            vo = xc if value_orders is None else np.asarray(value_orders[start:stop], dtype=np.float64)
            value = expected_order_value(model.spend, vo, np.asarray(mean_value[start:stop], dtype=np.float64))
            out["expected_value"][start:stop] = alive * discounted[inverse] * value
    return out


def _distinct_pairs(x: np.ndarray, T: np.ndarray):
    """Distinct (x, T) pairs of a chunk and the index of each customer's pair.

    Whole numbers (x and T in whole days, as the engine computes them from dates) pack into one
    int64 key; other values are sorted lexicographically.  Either way the hyp2f1 work is per
    distinct pair; a summary with no repeated (x, T) at all costs one 2F1 per customer and month.
    """
    if len(x) == 0:
        return x, T, np.zeros(0, dtype=np.int64)
    whole = np.array_equal(x, np.floor(x)) and np.array_equal(T, np.floor(T))
    if whole and min(x.min(), T.min()) >= 0 and (x.max() + 1) * (T.max() + 1) <= 4 * len(x) + 65_536:
        # Few possible pairs (orders up to dozens, days up to a few years): mark the pairs present
        # in a table of all of them, no sort (a 2M-customer chunk: 0.03 s instead of 0.19 s).
        # The same pairs in the same (x, T) order as the sort below.
        span = int(T.max()) + 1
        key = x.astype(np.int64) * span + T.astype(np.int64)
        present = np.zeros((int(x.max()) + 1) * span, dtype=bool)
        present[key] = True
        uniq = np.flatnonzero(present)
        return (uniq // span).astype(np.float64), (uniq % span).astype(np.float64), \
            (np.cumsum(present) - 1)[key]
    if whole and T.max() < 2**31 and x.max() < 2**31:
        key = x.astype(np.int64) << 32 | T.astype(np.int64)
        uniq, inverse = np.unique(key, return_inverse=True)
        return (uniq >> 32).astype(np.float64), (uniq & 0xFFFFFFFF).astype(np.float64), inverse.ravel()
    order = np.lexsort((T, x))
    xs, Ts = x[order], T[order]
    new = np.empty(len(x), dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    new[1:] |= Ts[1:] != Ts[:-1]
    inverse = np.empty(len(x), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return xs[new], Ts[new], inverse
