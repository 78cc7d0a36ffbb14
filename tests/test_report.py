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
from custseg.outputs.report import figures as F
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


def checked(figs: dict) -> dict:
    """The report's figures, each checked by plotly.py (it raises on a property or value plotly.js
    would not read) and returned as plotly Figures, whose properties the tests read."""
    return {name: fig.to_plotly() for name, fig in figs.items()}


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


def test_every_figure_in_the_page_is_one_plotly_accepts(page):
    """The page's figures as the browser gets them (typed arrays, the template) read by plotly.py,
    which raises on any property or value plotly.js does not have."""
    import plotly.graph_objects as go

    parsed = _parse(page)
    specs = json.loads(next(text for attrs, text in parsed.scripts if attrs.get("type") == "application/json"))
    assert len(specs) >= 10
    for name, spec in specs.items():
        fig = go.Figure(spec)
        assert fig.layout.title.text and len(fig.data) >= 1, name
        assert spec["layout"]["template"]["layout"]["colorway"][0] == "#636efa"  # plotly's default look


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
    figs = checked(R.build_figures(result, data))
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
    from custseg.engines import connect
    from custseg.options import EngineOptions
    from custseg.pipeline import Features, assemble, cluster, profile
    from custseg.runtime.stages import Stages

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
                        names=["recency_days", "order_count", "total_spending"],
                        engine=connect(EngineOptions()))
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


def _shop_value(text: str) -> float:
    """'€1,000' -> 1000.0, '25%' -> 0.25."""
    cleaned = text.replace(",", "").replace("€", "").replace("$", "").strip()
    return float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)


def test_transformed_axes_have_ticks_in_the_shop_units_placed_by_the_transform(result):
    """Every tick of the 3D scatter, the scatter matrix and the transformed histograms reads as a
    value in the shop's units and sits where log(1 + |value|) puts it (the clustering's transform)."""
    assert result.summary["scale"] == "log"
    figs = checked(R.build_figures(result))
    scene = figs["scatter"].layout.scene
    axes = [scene.xaxis, scene.yaxis, scene.zaxis]
    assert [a.title.text for a in axes] == [f"{F.feature_title(f)} (log scale)" for f in result.features]
    matrix_axes = [a for name, a in figs["matrix"].layout.to_plotly_json().items()
                   if name.startswith(("xaxis", "yaxis")) and a.get("visible", True) is not False]
    after = [a for name, a in figs["distributions"].layout.to_plotly_json().items()
             if name.startswith("xaxis") and "tickvals" in a]
    assert len(after) == len(result.features)
    ticks = 0
    for axis in [a.to_plotly_json() for a in axes] + matrix_axes + after:
        assert axis.get("tickmode") == "array" and len(axis["tickvals"]) >= 2
        for position, text in zip(axis["tickvals"], axis["ticktext"]):
            value = _shop_value(text)
            assert position == pytest.approx(np.sign(value) * np.log1p(abs(value)), abs=1e-9), text
            ticks += 1
    assert ticks > 20
    assert "log(1 +" not in json.dumps(figs["scatter"].to_plotly_json()["layout"])


@pytest.fixture(scope="module")
def euro_result():
    import custseg

    return custseg.segment(str(hostile_input()), k=3, n_init=2, currency="EUR")


def test_every_money_figure_in_the_page_carries_the_currency(euro_result):
    page = R.render_report(euro_result)
    parsed = _parse(page)
    text = " ".join(" ".join(parsed.text).split())
    sentences = [s for s in re.split(r"(?<=\.)\s", text) if re.search(r"spent \S*\d", s)]  # (an amount follows)
    assert len(sentences) >= euro_result.k
    for sentence in sentences:  # 'spent €17.30 on average (median €12.00)'
        amounts = re.findall(r"spent (\S+) (?:on average|per order)(?: on average)?(?: \(median (\S+?)\))?", sentence)
        assert amounts and all(a.startswith("€") for pair in amounts for a in pair if a), sentence
    # every money cell of the tables (cards and features): '€' and two decimals
    money_rows = re.findall(r"<td>(?:<code>)?(total[ _]spending|avg[ _]order[ _]value)(?:</code>)?</td>(.*?)</tr>",
                            page, flags=re.DOTALL)
    assert len(money_rows) >= euro_result.k + 1
    for _, cells in money_rows:
        numbers = re.findall(r'<td class="n">([^<]*)</td>', cells)
        assert numbers and all(re.fullmatch(r"-?€[\d,]+\.\d\d", n) for n in numbers), numbers
    assert "Currency" in text and "EUR" in text
    figs = checked(R.build_figures(euro_result))
    boxes = figs["boxes"].layout.to_plotly_json()
    titles = [a["text"] for a in boxes["annotations"]]
    money_axes = [boxes["yaxis" + ("" if i == 0 else str(i + 1))] for i, t in enumerate(titles)
                  if t.startswith(("total spending", "avg order value"))]
    assert money_axes and all(a.get("tickprefix") == "€" for a in money_axes)
    heat = figs["profile"].data[0]
    spending = [row[list(heat.x).index(next(x for x in heat.x if x.startswith("total<br>spending")))]
                for row in heat.customdata]
    assert all(re.fullmatch(r"-?€[\d,]+\.\d\d", v) for v in spending), spending
    ticks = figs["scatter"].layout.scene.zaxis.ticktext
    assert euro_result.features[2] == "total_spending" and all(t.startswith("€") for t in ticks)


def test_without_a_currency_money_has_two_decimals_and_no_symbol(result):
    assert result.summary["currency"] is None
    text = " ".join(" ".join(_parse(R.render_report(result)).text).split())
    spent = re.findall(r"spent (\S+) on average", text)
    assert spent and all(re.fullmatch(r"[\d,]+\.\d\d", s) for s in spent)
    assert "€" not in text


def test_the_profile_legend_says_what_a_high_value_means_for_each_feature(page):
    text = " ".join("".join(_parse(page).text).split())
    for feature, means in F.HIGH_MEANS.items():
        assert f"{F.feature_title(feature)}: {means}" in text
    assert "red cells" not in text


def test_no_internal_jargon_in_the_page_or_the_figure_titles(page, result):
    text = " ".join(" ".join(_parse(page).text).split()).lower()
    for jargon in ("case study", "the seed's", "seed 0", "taller"):
        assert jargon not in text
    titles = json.dumps([fig.layout.title.text for fig in checked(R.build_figures(result)).values()]).lower()
    assert "drag" not in titles  # the titles are in the PNG exports too


def test_plotly_js_is_in_the_page_once_and_the_csp_stays_hash_based(page):
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs()
    assert page.count(plotly_js[:400]) == 1 and page.count(plotly_js[-400:]) == 1
    assert len(page) < len(plotly_js) + 2_000_000  # figures and text: well under the 4.8 MB of plotly.js
    csp = next(m["content"] for m in _parse(page).metas if m.get("http-equiv", "").lower() == "content-security-policy")
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]
    assert len(script_src) == 2 and all(s.startswith("'sha256-") for s in script_src)
    assert "unsafe-inline" not in " ".join(script_src) and "unsafe-eval" not in " ".join(script_src)
