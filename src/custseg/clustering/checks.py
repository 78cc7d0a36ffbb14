"""What a customer matrix must be before K-means: refusals the user can act on."""

from __future__ import annotations

import numpy as np

from ..errors import CustsegError


def column_bounds(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's least and greatest value: NaN or infinity shows in them (column by column:
    quicker than reducing along axis 0, and no temporary of X's size)."""
    if not len(X):
        return np.zeros(X.shape[1]), np.zeros(X.shape[1])
    return (np.array([X[:, j].min() for j in range(X.shape[1])]),
            np.array([X[:, j].max() for j in range(X.shape[1])]))


def all_finite(X: np.ndarray) -> bool:
    """No NaN and no infinity."""
    return all(np.isfinite(bounds).all() for bounds in column_bounds(X))


def check_matrix(X: np.ndarray, where: str, names: list[str], quality, k: int | None) -> None:
    """Refuse data that cannot be segmented, with a reason the user can act on (``where``: the
    input as the message names it; ``names``: the features; ``quality``: the cleaning's counts)."""
    n_customers = len(X)
    k_needed = k or 2
    used = quality.get("rows_used", 0) if isinstance(quality, dict) else 0
    if n_customers == 0 and used:
        raise CustsegError(
            f"{where}: every one of the {used:,} lines used is a cancellation, return or refund (no ordered units): "
            "there is no purchase to segment. Give the order lines, not only the cancellations."
        )
    if n_customers < max(2, k_needed):
        raise CustsegError(
            f"{where}: only {n_customers} customer(s) with orders after cleaning; at least "
            f"{max(2, k_needed)} are needed to make {k_needed} segments. Give more data or a smaller --k."
        )
    lows, highs = column_bounds(X)
    if not (np.isfinite(lows).all() and np.isfinite(highs).all()):  # a guard: cannot happen after cleaning
        raise CustsegError(f"{where}: a feature is not a finite number; please report this input.")
    if not (highs - lows).any():
        raise CustsegError(
            f"{where}: all {n_customers} customers have the same {', '.join(names)}; there is nothing "
            "to segment. Choose other --features or give more varied data."
        )
    distinct = len(np.unique(X[: min(len(X), 200_000)], axis=0)) if k else None  # (a sort: only when needed)
    if k and k > distinct and distinct < 200_000:
        raise CustsegError(
            f"{where}: --k {k} is more than the {distinct} distinct customer profiles; choose a smaller --k."
        )
