"""The UCI Online Retail invoices (../shared/data/online_retail_invoices.csv, one line per invoice,
Dec 2010 - Dec 2011) as the order lines of a lifecycle summary: customer_id, order_id,
order_date, amount.

One loader for the lifecycle benchmark (lifecycle_retail.py) and the backtest's real-data tests
(tests/test_backtest.py), so that both read the same customers and dates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_invoices(path: Path) -> pd.DataFrame:
    """One row per invoice: ids read as text (exactly as written), the invoice date parsed."""
    d = pd.read_csv(path, dtype={"InvoiceNo": str, "CustomerID": str})
    return pd.DataFrame(
        {
            "customer_id": d["CustomerID"],
            "order_id": d["InvoiceNo"],
            "order_date": pd.to_datetime(d["InvoiceDate"]),
            "amount": d["TotalPrice"],
        }
    )
