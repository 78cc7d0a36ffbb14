"""A small segmentation run on Shopify-like data whose product names and one customer id are
script and attribute-injection payloads (shared by the report tests; computed once per process)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pandas as pd

SCRIPT_PAYLOAD = "</script><script>window.__pwned=1;alert(1)</script>"
ATTRIBUTE_PAYLOAD = '"><img src=x onerror="window.__pwned=2;alert(2)">'
MARKUP_PAYLOAD = "Tops & <b>Tees</b> {{7*7}} <!--"
CUSTOMER_PAYLOAD = "c<svg onload=window.__pwned=3>"
PAYLOADS = (SCRIPT_PAYLOAD, ATTRIBUTE_PAYLOAD, MARKUP_PAYLOAD)


@functools.lru_cache(maxsize=1)
def hostile_input() -> Path:
    from custseg.sample import write_sample

    directory = Path(tempfile.mkdtemp(prefix="custseg-report-test-"))
    path = write_sample(directory / "clean.csv", "shopify", 6_000, 7)
    frame = pd.read_csv(path, dtype={"customer_id": str})
    # The three most frequent product types become payloads, so they are best sellers everywhere.
    top = frame["product_type"].value_counts().index[:3]
    frame["product_type"] = frame["product_type"].replace(dict(zip(top, PAYLOADS)))
    first = frame["customer_id"].iloc[0]
    frame.loc[frame["customer_id"] == first, "customer_id"] = CUSTOMER_PAYLOAD
    hostile = directory / "hostile.csv"
    frame.to_csv(hostile, index=False)
    return hostile


@functools.lru_cache(maxsize=1)
def hostile_result():
    import custseg

    return custseg.segment(str(hostile_input()), k_max=8, n_init=3, command="custseg run hostile.csv --k-max 8")
