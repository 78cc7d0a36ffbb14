"""A minimal self-contained report.html (the full report comes with the report issue)."""

from __future__ import annotations

import html
from pathlib import Path


def _table(result) -> str:
    rows = []
    for r in result.profiles.itertuples():
        rows.append(
            f"<tr><td>{r.segment}</td><td>{html.escape(str(r.segment_name))}</td><td>{r.customers:,}</td>"
            f"<td>{r.customer_share:.1%}</td><td>{html.escape(str(r.description))}</td>"
            f"<td>{html.escape(str(r.strategy))}</td></tr>"
        )
    return ("<table><tr><th>segment</th><th>name</th><th>customers</th><th>share</th><th>description</th>"
            "<th>strategy</th></tr>" + "".join(rows) + "</table>")


def summary_html(result) -> str:
    s = result.summary
    return (f"<div><p><b>{s['customers']:,} customers</b> in <b>{s['k']} segments</b> "
            f"({html.escape(s['k_reason'])}).</p>{_table(result)}</div>")


def write_report(result, directory: Path) -> list[str]:
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<title>custseg report</title></head><body><h1>Customer segments</h1>"
        f"{summary_html(result)}</body></html>"
    )
    (directory / "report.html").write_text(page, encoding="utf-8")
    return ["report.html"]
