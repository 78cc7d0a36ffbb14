"""Names, descriptions and strategies of the segments as the pipeline makes them today: small,
deterministic rules over each segment's statistics (profiles/naming.py holds the checked-claim
naming of issue 13, not wired yet). Also the one number formatter."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..sources.currency import money

# feature -> (word when high, word when low) for names
_WORDS = {
    "order_count": ("loyal", "one-time"),
    "products_ordered": ("multi-product", "single-product"),
    "recency_days": ("lapsed", "recently active"),
    "tenure_days": ("long-standing", "new"),
    "avg_order_value": ("big-basket", "small-basket"),
    "total_spending": ("high-spending", "low-spending"),
}


VALUE_FEATURES = ("total_spending", "avg_order_value", "order_count")


HIGH, LOW = 0.3, -0.3


STRATEGIES = {
    "returns": "Reduce returns: clearer size guides, photos and reviews on the products they buy, and ask why "
               "they send items back; then engage them with products they keep.",
    "vip": "VIP treatment: early access to launches, exclusive offers and a loyalty programme; watch them "
           "closely, as losing one costs the most.",
    "win_back": "Win them back: a time-limited offer and a reminder of what they bought; stop spending on those "
                "who do not react.",
    "newcomers": "Engage newcomers: a welcome series, a second-purchase incentive and recommendations based on "
                 "their first order.",
    "middle": "Keep them engaged with personalised offers and recommendations based on what they bought, "
              "nudging them towards the next tier.",
}


@dataclass
class SegmentTraits:
    """Standardised level (z) of each feature's segment mean, on the log scale."""

    z: dict[str, float]
    means: dict[str, float]

    def level(self, feature: str) -> int:
        value = self.z.get(feature)
        if value is None:
            return 0
        return 1 if value >= HIGH else (-1 if value <= LOW else 0)


def _value_feature(t: SegmentTraits) -> str | None:
    return next((f for f in VALUE_FEATURES if f in t.z), None)


def value_tiers(segment_traits: list[SegmentTraits]) -> list[int]:
    """+1 high, 0 middle, -1 low value: the top segment is high and the bottom one low (when they stand
    above / below average); others only when far from the average (|z| >= 1)."""
    if not segment_traits:
        return []
    value = _value_feature(segment_traits[0])
    if value is None:
        return [0] * len(segment_traits)
    z = [t.z.get(value, 0.0) for t in segment_traits]
    tiers = [1 if v >= 1.0 else (-1 if v <= -1.0 else 0) for v in z]
    top, bottom = int(np.argmax(z)), int(np.argmin(z))
    if z[top] > 0:
        tiers[top] = 1
    if z[bottom] < 0 and bottom != top:
        tiers[bottom] = -1
    return tiers


def _base_name(t: SegmentTraits, value_level: int) -> tuple[str, list[str]]:
    """A name and the ordered list of extra qualifiers that could tell it apart."""
    value = _value_feature(t)
    value_word = {1: "High-value", 0: "Mid-value", -1: "Low-value"}[value_level]
    behaviours = sorted(
        (f for f in _WORDS if f in t.z and f != value and t.level(f) != 0),
        key=lambda f: (-abs(t.z[f]), f),
    )
    words = [(_WORDS[f][0] if t.level(f) > 0 else _WORDS[f][1]) for f in behaviours]
    high_returns = t.level("average_return_rate") > 0 and t.means.get("average_return_rate", 0) > 0.02
    no_returns = "average_return_rate" in t.means and t.means["average_return_rate"] == 0
    newcomer = value_level < 0 and any(w in ("one-time", "new", "single-product") for w in words[:1])
    if newcomer:
        name = "Newcomers"
        words = [w for w in words if w not in ("one-time", "new", "single-product")]
    elif value_level > 0 and words[:1] == ["lapsed"]:
        name, words = "Lapsed high-value", words[1:]
    elif words:
        name, words = f"{value_word} {words[0]}", words[1:]
    else:
        name = {1: "High-value", 0: "Mid-value regulars", -1: "Low-value"}[value_level]
    if high_returns:
        name += " with high returns"
    extras = words + (["no returns"] if no_returns else [])
    return name, extras


def name_segments(segment_traits: list[SegmentTraits]) -> list[str]:
    """Short, distinct, deterministic names derived from the profiles."""
    tiers = value_tiers(segment_traits)
    bases = [_base_name(t, tier) for t, tier in zip(segment_traits, tiers)]
    names = [b[0] for b in bases]
    for _ in range(3):
        seen: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            seen.setdefault(n, []).append(i)
        clashes = [ids for ids in seen.values() if len(ids) > 1]
        if not clashes:
            return names
        for ids in clashes:
            for i in ids:
                extras = bases[i][1]
                used = names[i].count("(")
                if used < len(extras):
                    names[i] = f"{bases[i][0]} ({', '.join(extras[: used + 1])})"
    # Still equal: number them by value, highest first.
    seen = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i)
    for n, ids in seen.items():
        if len(ids) > 1:
            value = _value_feature(segment_traits[ids[0]])
            ranked = sorted(ids, key=lambda i: -segment_traits[i].z.get(value, 0.0) if value else i)
            for rank, i in enumerate(ranked, start=1):
                names[i] = f"{n} {rank}"
    return names


def strategy_for(t: SegmentTraits, value_level: int) -> str:
    if t.level("average_return_rate") > 0 and t.means.get("average_return_rate", 0) > 0.02:
        return STRATEGIES["returns"]
    if t.level("recency_days") > 0 and value_level >= 0:
        return STRATEGIES["win_back"]
    if value_level > 0:
        return STRATEGIES["vip"]
    if t.level("recency_days") > 0:
        return STRATEGIES["win_back"]
    if value_level < 0:
        return STRATEGIES["newcomers"]
    return STRATEGIES["middle"]


# ---------------------------------------------------------------------------- descriptions


def number_text(x, digits: int | None = None, missing: str = "n/a") -> str:
    """A number for people: thousands separators, decimals only where they matter (or `digits` of
    them); `missing` for None, NaN or infinity. The one number formatter (descriptions, report)."""
    if x is None or not math.isfinite(float(x)):
        return missing
    x = float(x)
    if digits is not None:
        return f"{x:,.{digits}f}"
    if abs(x) >= 100 or x.is_integer():
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:,.2f}"


def _range(lo: float, hi: float, unit: str, plural: str | None = None) -> str:
    plural = plural or unit + "s"
    if lo == hi:
        return f"{number_text(lo)} {unit if lo == 1 else plural}"
    return f"{number_text(lo)} to {number_text(hi)} {plural}"


def describe(row: pd.Series, features: list[str], currency: str | None = None) -> str:
    """One sentence in the shop's units, e.g. 'Ordered 1 to 13 products, spent €600.00 on average, returned
    nothing.' (money with two decimals, and the currency when known)."""
    parts = []
    for name in features:
        mean, median = row.get(f"{name}_mean"), row.get(f"{name}_median")
        lo, hi = row.get(f"{name}_min"), row.get(f"{name}_max")
        if mean is None or pd.isna(mean):
            continue
        if name == "products_ordered":
            parts.append(f"ordered {_range(lo, hi, 'product')}")
        elif name == "total_spending":
            parts.append(f"spent {money(mean, currency)} on average (median {money(median, currency)})")
        elif name == "average_return_rate":
            parts.append("returned nothing" if hi == 0 else f"returned {mean:.0%} of their units on average")
        elif name == "order_count":
            parts.append(f"placed {_range(lo, hi, 'order')} (median {number_text(median)})")
        elif name == "avg_order_value":
            parts.append(f"spent {money(mean, currency)} per order on average")
        elif name == "recency_days":
            parts.append(f"last ordered {number_text(median)} days ago (median)")
        elif name == "tenure_days":
            parts.append(f"were customers for {number_text(median)} days (median, first to last order)")
    if not parts:
        return ""
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return text[0].upper() + text[1:] + "."
