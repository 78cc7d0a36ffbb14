"""The report page: self-contained, escaped, locked down by its CSP, bounded in size; PNG figures
and the notebook summary."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from _report_data import ATTRIBUTE_PAYLOAD, CUSTOMER_PAYLOAD, PAYLOADS, SCRIPT_PAYLOAD, hostile_input, hostile_result
from custseg.errors import CustsegError
from custseg.outputs.report import page as R


class _Page(HTMLParser):
    """Scripts (attributes and text), meta tags, elements with data-figure, and visible text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict, str]] = []
        self.metas: list[dict] = []
        self.figures: list[str] = []
        self.links: list[dict] = []
        self.text: list[str] = []
        self._script: dict | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._script, self._buffer = attrs, []
        elif tag == "meta":
            self.metas.append(attrs)
        elif tag == "link":
            self.links.append(attrs)
        if "data-figure" in attrs:
            self.figures.append(attrs["data-figure"])

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._buffer)))
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._buffer.append(data)
        else:
            self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def result():
    return hostile_result()


@pytest.fixture(scope="module")
def page(result):
    return R.render_report(result)


def test_report_is_self_contained_and_only_its_own_scripts_may_run(page):
    parsed = _parse(page)
    assert len(parsed.scripts) == 3  # figure data (JSON), plotly.js, the bootstrap
    assert all("src" not in attrs for attrs, _ in parsed.scripts)
    assert not parsed.links
    outside_scripts = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.DOTALL | re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", outside_scripts, re.IGNORECASE)
    csp = next(m["content"] for m in parsed.metas if m.get("http-equiv", "").lower() == "content-security-policy")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'none'"
    assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in directives["script-src"]
    executable = [text for attrs, text in parsed.scripts if attrs.get("type") != "application/json"]
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() + "'" for t in executable}
    assert set(directives["script-src"].split()) == hashes


def test_payloads_in_the_data_appear_only_as_text(page):
    parsed = _parse(page)
    for payload in PAYLOADS + (CUSTOMER_PAYLOAD,):
        assert payload not in page  # never raw anywhere in the file
    text = "".join(parsed.text)
    # The segment cards name the top products in words: the payloads read as plain text.
    assert SCRIPT_PAYLOAD in text and ATTRIBUTE_PAYLOAD in text
    assert html.escape(SCRIPT_PAYLOAD, quote=False) in page


def test_figure_data_cannot_close_its_script_element_and_decodes_to_the_names(page):
    parsed = _parse(page)
    data = next(text for attrs, text in parsed.scripts if attrs.get("type") == "application/json")
    assert "<" not in data and ">" not in data and "&" not in data
    specs = json.loads(data)
    assert set(parsed.figures) <= set(specs)
    decoded = json.dumps(specs, ensure_ascii=False)
    # plotly gets the names entity-escaped (it reads a little HTML in labels) and shows them as text
    assert html.escape(SCRIPT_PAYLOAD, quote=False) in decoded
    assert hostile_result().summary["customers"] < R.PLOT_SAMPLE  # so every customer id is in the scatter's hover
    assert html.escape(CUSTOMER_PAYLOAD, quote=False) in decoded


def test_figures_json_escapes_every_character_that_could_end_the_element():
    from custseg.outputs.report.figures import best_sellers_figure
    import pandas as pd

    sellers = pd.DataFrame({"segment": [0], "by": ["quantity"], "rank": [1], "product": ["p"],
                            "product_name": ["</script><!--<script>\u2028&amp;"], "quantity": [3], "revenue": [1.0]})
    text = R.figures_json({"one": best_sellers_figure(sellers, "#000000", by="quantity")})
    assert not set(text) & {"<", ">", "&", "\u2028"}
    assert json.loads(text)["one"]["data"][0]["x"] == [3]


def test_report_has_every_section_figure_and_segment(result, page):
    parsed = _parse(page)
    assert len(parsed.figures) >= 8
    for name in ("elbow", "k_scores", "silhouette", "sizes", "scatter", "matrix", "profile", "boxes",
                 "distributions"):
        assert name in parsed.figures
    assert sum(f.startswith("best_sellers_") for f in parsed.figures) == result.k
    text = " ".join(" ".join(parsed.text).split())
    for row in result.profiles.itertuples():
        assert row.segment_name in text and row.strategy in text and row.description in text
    for section in ("Summary", "Segments", "Segment cards", "Choosing the number of segments", "Features",
                    "Data quality", "Method and reproducibility"):
        assert section in text
    assert f"{result.summary['customers']:,} customers" in text
    assert "The elbow of the inertia curve is at k = " in text or result.summary["k_method"] != "elbow"
    assert result.summary["command"] in text
    assert "no_ordered_units" in text  # the data quality rules


def test_scatter_draws_a_uniform_sample_and_says_so(result):
    data = R.report_data(result, plot_sample=500, detail_sample=200)
    figs = R.build_figures(result, data)
    points = [t for t in figs["scatter"].data if t.name != "segment centres"]
    assert sum(len(t.x) for t in points) == 500
    assert f"500 of {result.summary['customers']:,}" in figs["scatter"].layout.title.subtitle.text
    assert set(data.detail) <= set(data.sample) and len(data.detail) == 200
    sizes = [len(t.x) for t in points]
    labels = data.labels[data.sample]
    assert sizes == [int((labels == s).sum()) for s in range(result.k) if (labels == s).any()]


def test_write_report_writes_one_file_and_refuses_unknown_figure_formats(result, tmp_path):
    assert R.write_report(result, tmp_path) == ["report.html"]
    assert (tmp_path / "report.html").stat().st_size > 1_000_000  # plotly.js is inside
    with pytest.raises(CustsegError, match="--figures 'svg' is unknown"):
        R.write_report(result, tmp_path, figures="svg")


def test_summary_html_for_notebooks_is_compact_escaped_and_script_free(result):
    text = result._repr_html_()
    assert "<script" not in text.lower()
    assert len(text) < 50_000
    for row in result.profiles.itertuples():
        assert html.escape(row.segment_name) in text
    assert f"{result.summary['customers']:,} customers" in text


# ---------------------------------------------------------------------------- large data


def _synthetic_result(n: int, seed: int = 0):
    """A result over n synthetic customers (RFM features, k = 4), without reading any file."""
    from custseg.options import RunOptions
    from custseg.pipeline import Features, Stages, assemble, cluster, profile

    rng = np.random.default_rng(seed)
    table = pa.table({
        "customer_id": pa.array(np.arange(n).astype(str)),
        "recency_days": rng.integers(1, 365, n).astype(float),
        "order_count": (1 + rng.poisson(1.0, n)).astype(float),
        "total_spending": np.round(rng.lognormal(4, 1.2, n), 2),
    })
    source = SimpleNamespace(provided={"customer_id", "order_date", "amount"}, schema="generic",
                             files=["synthetic.parquet"], date_format="iso")
    quality = {"rows_read": 3 * n, "rows_dropped": 0, "rows_used": 3 * n, "rules": [],
               "date_range": ["2024-01-01", "2024-12-31"]}
    features = Features(source=source, cleaned=None, quality=quality, table=table,
                        names=["recency_days", "order_count", "total_spending"])
    options, stages = RunOptions(k=4), Stages()
    clustering = cluster(features.matrix(), options, stages)
    profiles, sellers = profile(features, clustering, options, stages)
    return assemble(features, clustering, profiles, sellers, options, stages, time.perf_counter())


def test_report_size_does_not_grow_with_the_number_of_customers():
    small, large = _synthetic_result(20_000), _synthetic_result(300_000, seed=1)
    sizes = [len(R.render_report(r).encode()) for r in (small, large)]
    assert sizes[1] < 15_000_000
    assert sizes[1] < sizes[0] * 1.05  # both draw the same sample size; nothing per customer beyond it


# ---------------------------------------------------------------------------- PNG figures


def test_png_export_without_a_browser_says_what_is_missing(monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chrome")
    with pytest.raises(CustsegError, match="BROWSER_PATH=/nonexistent/chrome.*apt-get install chromium"):
        R.check_figures("png")
    with pytest.raises(CustsegError, match="unknown; use png"):
        R.check_figures("svg")
    monkeypatch.delenv("BROWSER_PATH")
    with pytest.raises(CustsegError, match="drop --no-report"):
        R.check_figures("png", report=False)


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "custseg.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_cli_figures_png_without_a_browser_exits_2_before_any_work(tmp_path):
    out = tmp_path / "out"
    run = _cli("run", str(hostile_input()), "--out", str(out), "--figures", "png",
               env={"BROWSER_PATH": str(tmp_path / "no-chrome")})
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "BROWSER_PATH" in lines[0] and "Traceback" not in run.stderr
    assert not out.exists()


def test_cli_unknown_figures_format_exits_2(tmp_path):
    run = _cli("run", str(hostile_input()), "--out", str(tmp_path / "out"), "--figures", "gif")
    assert run.returncode == 2 and "--figures 'gif' is unknown" in run.stderr


@pytest.mark.browser
@pytest.mark.slow
def test_png_figures_are_written_through_kaleido(result, tmp_path):
    if R.find_browser() is None:
        pytest.skip("no Chrome/Chromium for kaleido (Debian: apt-get install chromium; .ci/run installs it in CI)")
    figs = R.build_figures(result)
    chosen = {name: figs[name] for name in ("elbow", "scatter")}
    files = R.write_pngs(chosen, tmp_path / "figures")
    assert files == ["figures/01-elbow.png", "figures/02-scatter.png"]
    for f in files:
        data = (tmp_path / f).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        width = int.from_bytes(data[16:20], "big")
        assert width == 2200  # 1100 layout pixels at scale 2


def test_report_without_sweep_or_products_says_so_and_still_draws_the_rest():
    result = _synthetic_result(3_000)  # k given, generic data without products
    parsed = _parse(R.render_report(result))
    text = " ".join(" ".join(parsed.text).split())
    assert "k was given on the command line, so no sweep over k was run" in text
    assert "no product column, so there are no best sellers" in text
    assert set(parsed.figures) == {"silhouette", "sizes", "scatter", "matrix", "profile", "boxes", "distributions"}
