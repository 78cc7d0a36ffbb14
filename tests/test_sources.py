"""Readers and schema adapters on tiny hand-made tables."""

import shutil

import pandas as pd
import pytest

from custseg.errors import CustsegError
from custseg.engines import connect
from custseg.options import EngineOptions
from custseg.sources.csv_dialect import sniff_csv
from custseg.sources.files import expand_inputs
from custseg.sources.read import SourceSpec, read_source
from custseg.sources.schemas import detect_schema

from conftest import TEST_DATA
from helpers import features_of


def day(value) -> str:
    return pd.Timestamp(value).date().isoformat()


def canonical(path, **spec):
    backend = connect(EngineOptions())
    source = read_source(backend, SourceSpec([str(path)], **spec))
    return source, source.lines.to_pandas()


def test_schema_detected_from_header():
    assert detect_schema(["product_type", "customer_id", "order_id", "day", "total_sales",
                          "ordered_item_quantity", "returned_item_quantity", "x"]) == "shopify"
    assert detect_schema(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                          "CustomerID", "Country"]) == "online-retail"
    assert detect_schema(["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
                          "Customer ID", "Country"]) == "online-retail"
    assert detect_schema(["customer", "date", "amount"]) == "generic"


def test_shopify_adapter_day_first_dates_and_positive_returns():
    source, lines = canonical(TEST_DATA / "shopify_tiny.csv")
    assert source.schema == "shopify" and source.date_format == "dmy"
    first = lines.iloc[0]
    assert day(first.order_date) == "2018-11-03"
    assert first["product"] == "Dresses" and first.quantity == 2 and first.amount == 120
    assert (lines.returned_quantity >= 0).all()
    assert lines.returned_quantity.tolist()[:4] == [0, 1, 0, 1]


def test_online_retail_cancellations_are_returns_not_purchases():
    source, lines = canonical(TEST_DATA / "online_retail_tiny.csv")
    assert source.schema == "online-retail" and source.date_format == "mdy"
    cancel = lines[lines.order_id == "C536379"].iloc[0]
    assert cancel.quantity == 0 and cancel.returned_quantity == 3 and cancel.amount == 0
    first = lines.iloc[0]
    assert first.amount == pytest.approx(6 * 2.55) and day(first.order_date) == "2010-12-01"
    assert first["product"] == "85123A" and first.product_name == "WHITE HANGING HEART"


def test_generic_semicolon_bom_and_decimal_comma():
    dialect = sniff_csv(str(TEST_DATA / "generic_tiny.csv"))
    assert dialect.delimiter == ";" and dialect.header[0] == "Client"
    source, lines = canonical(TEST_DATA / "generic_tiny.csv")
    assert source.schema == "generic"
    assert lines.amount.tolist() == [10.5, 4.0, 20.0, 100.0, -30.0, 7.0]
    # Without an order id, an order is the customer's lines on one day.
    assert lines.order_id.tolist()[:3] == ["2024-01-05", "2024-01-05", "2024-03-01"]


def test_generic_amount_from_quantity_and_price(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text("cust,when,qty,price,item\nx,2024-05-01,3,2.5,a\nx,2024-05-02,1,4,b\ny,2024-05-02,2,1,a\n")
    feats, _, _ = features_of(path, mapping={"customer_id": "cust", "order_date": "when", "quantity": "qty",
                                             "unit_price": "price", "product": "item"})
    assert feats.loc["x", "total_spending"] == pytest.approx(11.5)
    assert feats.loc["x", "products_ordered"] == 2
    assert feats.loc["y", "total_spending"] == pytest.approx(2.0)


def test_several_files_and_globs_read_as_one(tmp_path):
    for i in range(3):
        shutil.copy(TEST_DATA / "shopify_tiny.csv", tmp_path / f"part{i}.csv")
    assert len(expand_inputs([str(tmp_path / "part*.csv")])) == 3
    one, _, _ = features_of(TEST_DATA / "shopify_tiny.csv")
    three, quality, _ = features_of(str(tmp_path / "part*.csv"))
    assert quality["rows_read"] == 24
    # Three copies of the same orders: same orders and products, three times the spending.
    assert (three.order_count == one.order_count).all()
    assert (three.total_spending == 3 * one.total_spending).all()


def test_missing_required_column_names_found_and_needed(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("who,when\na,2024-01-01\n")
    with pytest.raises(CustsegError) as err:
        canonical(path)
    message = str(err.value)
    assert "x.csv" in message and "customer_id" in message and "amount" in message and "found: who, when" in message


def test_map_to_unknown_column_is_refused(tmp_path):
    with pytest.raises(CustsegError, match="has no column 'Nope'"):
        canonical(TEST_DATA / "generic_tiny.csv", mapping={"customer_id": "Nope"})


def test_missing_file_and_unmatched_glob(tmp_path):
    with pytest.raises(CustsegError, match="no such file"):
        expand_inputs([str(tmp_path / "none.csv")])
    with pytest.raises(CustsegError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.csv")])


def test_parquet_input_gives_the_same_features(tmp_path):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(TEST_DATA / "shopify_tiny.csv")
    pq.write_table(table, tmp_path / "tiny.parquet")
    a, _, _ = features_of(TEST_DATA / "shopify_tiny.csv")
    b, _, _ = features_of(tmp_path / "tiny.parquet")
    assert a.sort_index().equals(b.sort_index())
