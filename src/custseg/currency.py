"""Money as people read it: '€17.30', '$1,204.00', '17.30 CHF', or '17.30' when the currency is unknown.

`--currency` takes an ISO 4217 code (EUR) or a symbol (€); `currency_of` reads it from the
data when a column says so (Shopify's exports carry a `currency` column). Amounts always
show two decimals, so a sum of money never reads like a count.
"""

from __future__ import annotations

import math

from .errors import CustsegError

# Codes shown as their symbol; any other three-letter code is written after the amount.
SYMBOLS = {
    "EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩", "RUB": "₽",
    "TRY": "₺", "ILS": "₪", "NGN": "₦", "PHP": "₱", "VND": "₫", "UAH": "₴", "THB": "฿", "BRL": "R$",
    "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "HKD": "HK$", "SGD": "S$", "MXN": "MX$",
}
KNOWN_SYMBOLS = set(SYMBOLS.values()) | {"kr", "zł", "Fr.", "R"}
COLUMN_NAMES = ("currency", "currency_code", "presentment_currency")


def normalize_currency(value: str | None, option: str = "--currency") -> str | None:
    """'eur' -> 'EUR', '€' -> '€', '' / None -> None; anything else is refused."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) == 3 and text.isascii() and text.isalpha():
        return text.upper()
    if text in KNOWN_SYMBOLS or (len(text) <= 3 and not any(ch.isalnum() for ch in text)):
        return text
    raise CustsegError(f"{option} {value!r} is not a currency; give an ISO code such as EUR or a symbol such as €.")


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
    symbol = SYMBOLS.get(currency, currency)
    if len(symbol) == 3 and symbol.isalpha() and symbol.isupper():
        return f"{sign}{number} {symbol}"
    return f"{sign}{symbol}{number}"


def prefix_suffix(currency: str | None) -> tuple[str, str]:
    """plotly's tickprefix / ticksuffix for a money axis."""
    if not currency:
        return "", ""
    symbol = SYMBOLS.get(currency, currency)
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
