"""Choosing k: the one place that decides the number of segments (the elbow, checked by silhouette)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

@dataclass
class KChoice:
    k: int
    method: str   # "elbow", "silhouette" (no elbow found), "given"
    reason: str


def choose_k(ks, inertia, silhouette=None) -> KChoice:
    """The elbow of the inertia curve (kneedle: convex, decreasing).

    Falls back to the best silhouette when the curve has no elbow. The reason says
    where silhouette stands relative to the elbow.
    """
    from kneed import KneeLocator  # (imports scipy: on first use)

    ks = [int(k) for k in ks]
    inertia = [float(v) for v in inertia]
    sil = {int(k): float(s) for k, s in zip(ks, silhouette)} if silhouette is not None else {}
    sil = {k: s for k, s in sil.items() if np.isfinite(s)}
    best_sil = max(sil, key=sil.get) if sil else None
    knee = None
    if len(ks) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            knee = KneeLocator(ks, inertia, curve="convex", direction="decreasing").knee
    if knee is not None and int(knee) >= 2:
        k = int(knee)
        reason = f"the elbow of the inertia curve is at k = {k}"
        if best_sil is not None and k in sil:
            if best_sil == k:
                reason += f"; silhouette agrees (best at k = {k}, {sil[k]:.3f})"
            else:
                reason += (f"; silhouette is {sil[k]:.3f} there, {sil[best_sil] - sil[k]:.3f} below its best "
                           f"({sil[best_sil]:.3f} at k = {best_sil})")
        return KChoice(k, "elbow", reason)
    if best_sil is not None:
        return KChoice(best_sil, "silhouette",
                       f"the inertia curve has no clear elbow; k = {best_sil} has the best silhouette "
                       f"({sil[best_sil]:.3f})")
    k = min(max(ks), 2) if ks else 1
    return KChoice(k, "fallback", f"too few values of k to find an elbow; k = {k}")
