"""Descriptions of the segments: one sentence of each segment's statistics in the shop's units
(every word a number it has: ranges, means, medians). Names and strategies are naming.py's.
Also the one number formatter."""

from __future__ import annotations

import math
import pandas as pd

from ..sources.currency import money

# ---------------------------------------------------------------------------- descriptions


def number_text(x, digits: int | None = None, missing: str = "n/a") -> str:
    """A number for people: thousands separators, decimals only where they matter (or `digits` of
    them); `missing` for None, NaN or infinity. The one number formatter (descriptions, report)."""
    if x is None or not math.isfinite(float(x)):
        return missing
    x = float(x)
    if digits is not None:
        text = f"{x:,.{digits}f}"
    elif abs(x) >= 100 or x.is_integer():
        text = f"{x:,.0f}"
    elif abs(x) >= 10:
        text = f"{x:,.1f}"
    else:
        text = f"{x:,.2f}"
    return _without_negative_zero(text)


def share_text(x, digits: int = 0, missing: str = "–") -> str:
    """A share as a percentage: '46%', '<1%' for a positive share that rounds to 0 (it is not
    nothing), '-3%' for a negative one (a segment whose returns outweigh its sales), and '0%', not
    '-0%', for a negative share that rounds to 0 (-0.02 of a shop's 54M of revenue)."""
    if x is None or not math.isfinite(float(x)):
        return missing
    value = float(x)
    if 0 < value < 0.5 / 10 ** (digits + 2):
        return f"<{1 / 10 ** digits:.{digits}f}%"
    return _without_negative_zero(f"{value:.{digits}%}")


def _without_negative_zero(text: str) -> str:
    """'-0', '-0.00', '-0%' (a tiny negative number rounded) as '0', '0.00', '0%'."""
    if text.startswith("-") and not text.strip("-0.,%"):
        return text[1:]
    return text


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
        elif name == "first_order_age_days":
            parts.append(f"first ordered {number_text(median)} days ago (median)")
        elif name == "tenure_days":
            parts.append(f"were customers for {number_text(median)} days (median, first to last order)")
    if not parts:
        return ""
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return text[0].upper() + text[1:] + "."
