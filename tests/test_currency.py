"""Money with its currency: --currency (code or symbol), or the currency a column of the data names."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from custseg.options import normalize_currency
from custseg.sources.currency import currency_of, money
from custseg.errors import CustsegError


def test_money_has_two_decimals_and_the_currency_where_people_expect_it():
    assert money(17.3) == "17.30"
    assert money(17.3, "EUR") == "€17.30"
    assert money(1204, "USD") == "$1,204.00"
    assert money(17.3, "CHF") == "17.30 CHF"
    assert money(-2.5, "£") == "-£2.50"
    assert money(-0.001, "EUR") == "€0.00"  # no "-€0.00"
    assert money(1000, "EUR", whole=True) == "€1,000"
    assert money(float("nan"), "EUR") == "n/a"


def test_normalize_currency_takes_codes_and_symbols_and_refuses_words():
    assert normalize_currency("eur") == "EUR"
    assert normalize_currency(" € ") == "€"
    assert normalize_currency("kr") == "kr"
    assert normalize_currency("") is None and normalize_currency(None) is None
    with pytest.raises(CustsegError, match="--currency 'euros' is not a currency"):
        normalize_currency("euros")


def test_currency_of_a_column_needs_exactly_one_value():
    assert currency_of(["GBP", "GBP", None, ""]) == "GBP"
    assert currency_of(["GBP", "EUR"]) is None
    assert currency_of([]) is None
    assert currency_of(["not money"]) is None


def _orders(currency: str | None) -> pd.DataFrame:
    rows = []
    for c in range(60):
        for o in range(1 + c % 3):
            rows.append({"customer_id": f"c{c}", "order_date": f"2024-0{1 + o}-1{c % 9}",
                         "amount": 10.0 + 7 * c + o})
    frame = pd.DataFrame(rows)
    if currency is not None:
        frame["Currency"] = currency
    return frame


def test_the_currency_column_of_the_data_is_used_and_the_option_wins():
    import custseg

    from_data = custseg.segment(_orders("GBP"), k=2, n_init=1)
    assert from_data.summary["currency"] == "GBP"
    spent = [d for d in from_data.profiles["description"] if "spent" in d]
    assert spent and all("spent £" in d for d in spent)
    given = custseg.segment(_orders("GBP"), k=2, n_init=1, currency="usd")
    assert given.summary["currency"] == "USD" and all("spent $" in d for d in given.profiles["description"])
    plain = custseg.segment(_orders(None), k=2, n_init=1)
    assert plain.summary["currency"] is None
    assert all("£" not in d and "$" not in d for d in plain.profiles["description"])
    # two decimals without a currency too: "spent 17.30", never "spent 17.3"
    assert all(pd.Series(plain.profiles["description"]).str.contains(r"spent \d[\d,]*\.\d\d "))


def test_cli_refuses_an_unknown_currency_before_any_work(tmp_path):
    data = tmp_path / "orders.csv"
    _orders(None).to_csv(data, index=False)
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "run", str(data), "--out", str(tmp_path / "out"),
                          "--currency", "euros", "-q"], capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "custseg: error: --currency 'euros' is not a currency; give an ISO code such as EUR or a symbol such as €."]
    assert not (tmp_path / "out").exists()
