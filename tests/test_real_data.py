"""The real files in ../shared/data: the Online Retail sample workbook and the invoice table."""

import numpy as np
import pandas as pd
import pytest

import custseg

from conftest import shared_file
from helpers import cli, features_of


@pytest.fixture(scope="module")
def retail_xlsx():
    return shared_file("online_retail_sample_40k.xlsx")


@pytest.fixture(scope="module")
def invoices_csv():
    return shared_file("online_retail_invoices.csv")


def test_online_retail_workbook_counts_and_spending(retail_xlsx):
    feats, quality, source = features_of(retail_xlsx)
    assert source.schema == "online-retail"
    rules = {r["rule"]: r["rows_dropped"] for r in quality["rules"]}
    assert quality["rows_read"] == 40_000
    assert rules["missing_customer"] == 10_057          # as the data's README says
    # Independent pandas computation of spending and orders from the raw workbook.
    raw = _read_xlsx_pandas(retail_xlsx)
    raw = raw[raw.CustomerID.notna() & (raw.UnitPrice > 0)]
    raw["cancel"] = raw.InvoiceNo.astype(str).str.startswith("C") | (raw.Quantity < 0)
    buys = raw[~raw.cancel]
    expected = (buys.assign(amount=buys.Quantity * buys.UnitPrice)
                .groupby(buys.CustomerID.astype("int64").astype(str))
                .agg(total_spending=("amount", "sum"), order_count=("InvoiceNo", "nunique")))
    assert sorted(feats.index) == sorted(expected.index)
    joined = \
        expected.merge(feats, left_index=True, right_index=True, suffixes=("", "_ours"))
    np.testing.assert_allclose(joined.total_spending_ours, joined.total_spending, atol=1e-6)
    assert (joined.order_count_ours == joined.order_count).all()


def _read_xlsx_pandas(path):
    import fastexcel

    return fastexcel.read_excel(path).load_sheet(0).to_pandas()


def test_online_retail_workbook_segments_end_to_end(retail_xlsx, tmp_path):
    result = custseg.segment(str(retail_xlsx))
    assert result.summary["features"] == ["total_spending", "order_count", "avg_order_value"]
    assert 2 <= result.k <= 15 and result.summary["k_method"] in ("elbow", "silhouette")
    assert result.profiles.segment_name.is_unique
    out = result.to_dir(tmp_path / "retail")
    best = pd.read_csv(out / "best_sellers.csv")
    assert not best.empty and best.product_name.notna().all()


def test_invoice_table_through_map_is_rfm(invoices_csv, tmp_path):
    out = tmp_path / "rfm"
    done = cli("run", invoices_csv, "--map", "customer_id=CustomerID", "--map", "order_date=InvoiceDate",
               "--map", "amount=TotalPrice", "--map", "order_id=InvoiceNo", "--out", out, "-q")
    assert done.returncode == 0, done.stderr
    seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert list(seg.columns[:4]) == ["customer_id", "recency_days", "order_count", "total_spending"]
    raw = pd.read_csv(invoices_csv, dtype={"CustomerID": str})
    expected = raw.groupby("CustomerID").agg(total=("TotalPrice", "sum"), orders=("InvoiceNo", "nunique"))
    joined = seg.set_index("customer_id").join(expected)
    np.testing.assert_allclose(joined.total_spending, joined.total, rtol=1e-12, atol=1e-6)
    assert (joined.order_count == joined.orders).all()
    last = pd.to_datetime(raw.InvoiceDate).max()
    last_by_customer = pd.to_datetime(raw.InvoiceDate).groupby(raw.CustomerID).max()
    recency = (last - last_by_customer).dt.days + 1
    assert (joined.recency_days == recency.loc[joined.index]).all()
