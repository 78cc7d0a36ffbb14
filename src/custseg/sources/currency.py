"""Money as people read it: '€17.30', '$1,204.00', '17.30 CHF', or '17.30' when the currency is unknown.

`--currency` takes an ISO 4217 code (EUR) or a symbol (€) (its check: options.normalize_currency);
`currency_of` reads it from the data when a column says so (Shopify's exports carry a `currency`
column). Amounts always show two decimals, so a sum of money never reads like a count.
"""

from __future__ import annotations

import math

from ..errors import CustsegError
from ..options import CURRENCY_SYMBOLS, normalize_currency

# Columns whose values name the currency of the amounts (Shopify's exports: `currency`).
COLUMN_NAMES = ("currency", "currency_code", "presentment_currency")


def money(x: float | None, currency: str | None = None, whole: bool = False) -> str:
    """'€17.30' (a symbol before), '17.30 CHF' (a code after), '17.30' (no currency); `whole`
    drops the decimals (axis ticks at round values)."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    number = f"{abs(x):,.0f}" if whole else f"{abs(x):,.2f}"
    sign = "-" if x < 0 and number.strip("0.,") else ""
    if not currency:
        return sign + number
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    if len(symbol) == 3 and symbol.isalpha() and symbol.isupper():
        return f"{sign}{number} {symbol}"
    return f"{sign}{symbol}{number}"


def prefix_suffix(currency: str | None) -> tuple[str, str]:
    """plotly's tickprefix / ticksuffix for a money axis."""
    if not currency:
        return "", ""
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    if len(symbol) == 3 and symbol.isalpha() and symbol.isupper():
        return "", f" {symbol}"
    return symbol, ""


def currency_of(values) -> str | None:
    """The currency named by a column's values when they name exactly one (else None)."""
    found = {str(v).strip() for v in values if v is not None and str(v).strip()}
    if len(found) != 1:
        return None
    try:
        return normalize_currency(found.pop())
    except CustsegError:
        return None


def data_currency(engine, raw) -> str | None:
    """The currency a column of the data names (e.g. Shopify's `currency`), read from its first
    1,000 lines (no extra pass over the data); None without such a column or with several values."""
    name = next((c for c in raw.columns if str(c).strip().lower() in COLUMN_NAMES), None)
    if name is None:
        return None
    try:
        values = engine.execute(raw.select(name).limit(1000))[name].tolist()
    except Exception:  # an engine that cannot take a sample here: no currency, as without the column
        return None
    return currency_of(values)
