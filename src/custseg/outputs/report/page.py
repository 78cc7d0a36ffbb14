"""The segmentation report: one self-contained HTML file (plotly.js and all data inside).

`build_figures` makes every figure from a SegmentationResult (drawing a uniform sample of
customers where points are drawn; summaries such as histograms and box plots use everyone),
`render_report` fills the Jinja2 template, `write_report` writes report.html (and, with
figures="png", figures/*.png through kaleido and a Chrome/Chromium), and `summary_html`
is the compact, script-free summary a notebook shows for a result.

Safety: the template autoescapes everything; figure data goes into a non-executed
`<script type="application/json">` with `<`, `>` and `&` written as \\u003c, \\u003e and
\\u0026, so no text from the data can close the element; the page's Content-Security-Policy
forbids every network load and lets only the two scripts it carries run (by their hashes).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...clustering.kmeans import silhouettes, uniform_sample
from ...clustering.scaling import Scaling
from ...runtime.parallel import parallel_map
from ...errors import CustsegError
from ...features import REGISTRY
from ...options import SEED
from ...profiles.describe import number_text, share_text
from ...profiles.explain import RFM_COLUMNS
from ...profiles.rfm import RFM_SEGMENTS
from ...profiles.stats import LOCAL_STATS_UP_TO
from ...sources.currency import money
from . import figures as F

PLOT_SAMPLE = 5_000     # points drawn in the scatter plots
DETAIL_SAMPLE = 2_000   # points in the silhouette plot and the scatter matrix (a subset of the above)
MATRIX_POINTS = 12_000  # points over all panels of the scatter matrix
FIGURE_FORMATS = ("png",)

BOOTSTRAP_JS = """(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("custseg-figures").textContent);
  var config = {responsive: true, displaylogo: false, scrollZoom: false,
                modeBarButtonsToRemove: ["lasso2d"],
                toImageButtonOptions: {format: "png", scale: 2}};
  function hasWebGL() {
    try {
      var canvas = document.createElement("canvas");
      return !!(window.WebGLRenderingContext &&
                (canvas.getContext("webgl") || canvas.getContext("experimental-webgl")));
    } catch (e) { return false; }
  }
  // Without WebGL (some locked-down viewers) a 3D scatter is drawn flat: its first two axes.
  function flatten(spec) {
    var scene = spec.layout.scene || {};
    var data = spec.data.map(function (t) {
      if (t.type !== "scatter3d") { return t; }
      var flat = Object.assign({}, t, {type: "scatter"});
      delete flat.z;
      flat.marker = Object.assign({}, t.marker, {size: Math.max(5, (t.marker && t.marker.size) || 5)});
      return flat;
    });
    var layout = Object.assign({}, spec.layout, {
      xaxis: {title: (scene.xaxis || {}).title}, yaxis: {title: (scene.yaxis || {}).title}});
    delete layout.scene;
    layout.title = Object.assign({}, layout.title, {text: layout.title.text + " (flat: this viewer has no WebGL)"});
    return {data: data, layout: layout};
  }
  var webgl = hasWebGL();
  function draw(node) {
    if (node.getAttribute("data-drawn")) { return; }
    node.setAttribute("data-drawn", "1");
    var spec = specs[node.getAttribute("data-figure")];
    if (!spec) { return; }
    if (!webgl && spec.data.some(function (t) { return t.type === "scatter3d"; })) { spec = flatten(spec); }
    Plotly.newPlot(node, spec.data, spec.layout, config);
  }
  // The charts in the first window are drawn here, so the page is complete as first seen when it
  // has loaded. The others are drawn after the load event, one per task, those near the window
  // first: the page scrolls while they are drawn (drawing all at once kept it blank for seconds),
  // and its load (what a browser and its tools count as opened) does not wait for the ones below,
  // the 3D scatter's WebGL above all (~1 s in a browser without a GPU).
  var nodes = Array.prototype.slice.call(document.querySelectorAll("[data-figure]"));
  function top(n) { return n.getBoundingClientRect().top; }
  var near = window.innerHeight * 1.5;
  var queue = nodes.filter(function (n) { return top(n) < near; })
    .concat(nodes.filter(function (n) { return top(n) >= near; }));
  function next() {
    var node = queue.shift();
    if (!node) { return; }
    draw(node);
    setTimeout(next, 0);
  }
  nodes.filter(function (n) { return top(n) < window.innerHeight; }).forEach(draw);
  if ("IntersectionObserver" in window) {  // a chart scrolled to is drawn before the rest of the queue
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { seen.unobserve(e.target); draw(e.target); } });
    }, {rootMargin: "300px 0px"});
    nodes.forEach(function (n) { seen.observe(n); });
  }
  if (document.readyState === "complete") { next(); }
  else { window.addEventListener("load", function () { setTimeout(next, 0); }); }
})();
"""


# ---------------------------------------------------------------------------- data for the figures


@dataclass
class ReportData:
    """What the figures and the page need, taken from a SegmentationResult."""

    labels: np.ndarray            # segment of every customer (row order of all_features)
    columns: dict[str, np.ndarray]  # every computed feature, every customer
    features: list[str]           # the clustering features
    names: list[str]              # segment names by id
    colors: list[str]             # colour by segment id
    sample: np.ndarray            # row indices of the plotted sample
    detail: np.ndarray            # row indices of the silhouette / scatter-matrix sample (subset of sample)
    total: int
    notes: dict[str, str] = field(default_factory=dict)  # sentences for the page, set by build_figures


def report_data(result, plot_sample: int = PLOT_SAMPLE, detail_sample: int = DETAIL_SAMPLE) -> ReportData:
    table = result.all_features
    # asarray, not astype: the columns are float64 already and are not copied (2 GB at 37M customers)
    labels = np.asarray(result.segments_table.column("segment").to_numpy(zero_copy_only=False), dtype=np.int64)
    columns = {c: np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=np.float64)
               for c in table.column_names if c != "customer_id"}
    n = table.num_rows
    seed = int(result.summary.get("seed", SEED))
    sample = uniform_sample(n, plot_sample, seed)
    sample = np.arange(n) if sample is None else sample
    detail = uniform_sample(len(sample), detail_sample, seed + 1)
    detail = sample if detail is None else sample[detail]
    names = [str(n) for n in result.profiles.sort_values("segment")["segment_name"]]
    return ReportData(labels=labels, columns=columns, features=list(result.features), names=names,
                      colors=F.segment_colors(len(names)), sample=sample, detail=detail, total=n)


def _transform_column(scaling: Scaling, j: int, values: np.ndarray) -> np.ndarray:
    """One feature column through the fitted transform (column by column keeps memory small)."""
    one = Scaling(scaling.method, np.asarray(scaling.mean)[j:j + 1], np.asarray(scaling.scale)[j:j + 1])
    return one.transform(values[:, None])[:, 0]


GROUPED_UP_TO = LOCAL_STATS_UP_TO  # customers up to which rows are grouped by segment in memory
# Beyond, the per-column passes run two at a time: each copies a column (~300 MB at 37M customers);
# one at a time took 15.5 s of a 100M-line run's 26.9 s of writing.
BEYOND_GROUPED_WORKERS = 2


def build_figures(result, data: ReportData | None = None) -> OrderedDict:
    """Every figure of the report, by name, in page order."""
    d = data or report_data(result)
    scaling, scale = result.model.scaling, result.model.scaling.method
    k = len(d.names)
    figs: OrderedDict = OrderedDict()
    ksel = result.k_selection
    if ksel is not None and len(ksel) > 1:
        figs["elbow"] = F.elbow_figure(ksel, result.k)
        if (ksel["k"] >= 2).any():
            figs["k_scores"] = F.k_scores_figure(ksel, result.k)
    X_sample = np.column_stack([d.columns[f][d.sample] for f in d.features])
    Z_sample = scaling.transform(X_sample)
    labels_sample = d.labels[d.sample]
    position = {row: i for i, row in enumerate(d.sample)} if len(d.detail) != len(d.sample) else None
    detail_rows = np.array([position[r] for r in d.detail]) if position else np.arange(len(d.sample))
    Z_detail, labels_detail = Z_sample[detail_rows], labels_sample[detail_rows]
    if len(np.unique(labels_detail)) >= 2:
        sil = silhouettes(Z_detail, [labels_detail])[0]
        figs["silhouette"] = F.silhouette_figure(sil, labels_detail, d.names, d.colors, d.total)
    figs["sizes"] = F.sizes_figure(result.profiles.sort_values("segment"), d.colors)
    ids = result.all_features.column("customer_id").take(d.sample).to_pylist()
    currency = result.summary.get("currency")
    ticks = shop_ticks(d, scaling, currency)
    figs["scatter"] = F.segments_scatter_figure(Z_sample, X_sample, labels_sample, d.features,
                                                np.asarray(result.model.centers), d.names, d.colors, scale,
                                                d.total, customer_ids=ids, ticks=ticks, currency=currency)
    if len(d.features) >= 2:
        pairs = len(d.features) * (len(d.features) - 1) // 2
        keep = max(300, MATRIX_POINTS // pairs)  # SVG points in all panels stay bounded
        figs["matrix"] = F.scatter_matrix_figure(Z_detail[:keep], labels_detail[:keep], d.features, d.names,
                                                 d.colors, scale, d.total, ticks=ticks)
    ordered = d.features + [c for c in d.columns if c not in d.features]
    stats = column_stats(d, ordered, scaling)
    z = pd.concat([stats[("z", c)] for c in ordered], axis=1)
    means = _segment_means(result.profiles, ordered)
    figs["profile"] = F.profile_heatmap_figure(z, d.names, d.features, means, currency=currency)
    rfm = rfm_shares(result.profiles)
    if rfm is not None:
        figs["rfm"] = F.rfm_heatmap_figure(rfm, d.names)
    figs["boxes"] = F.box_figure({c: stats[("box", c)] for c in ordered}, d.names, d.colors, d.features, d.total,
                                 currency=currency)
    before = {f: stats[("before", f)] for f in d.features}
    after = {f: stats[("after", f)] for f in d.features}
    figs["distributions"] = F.distributions_figure(before, after, scale, d.total, ticks=ticks, currency=currency)
    d.notes["distributions"] = F.beyond_note(before)
    backtest = result.summary.get("backtest")
    if backtest and backtest.get("tracking"):
        figs["tracking"] = F.tracking_figure(backtest["tracking"], str(backtest.get("holdout", "")))
    sellers = result.best_sellers
    if sellers is not None and len(sellers):
        for s in range(k):
            rows = sellers[sellers["segment"] == s]
            if len(rows):
                figs[f"best_sellers_{s}"] = F.best_sellers_figure(rows, d.colors[s], segment_name=d.names[s],
                                                                  currency=currency)
    return figs


def shop_ticks(d: ReportData, scaling: Scaling, currency: str | None = None) -> dict:
    """For each clustering feature, ticks for its transformed axis labelled in the shop's units:
    round values (0, 1, 2, 5, 10, ... or shares) placed where the transform puts them. Empty
    when K-means ran on the raw values (plotly's own ticks are the shop's units then)."""
    if scaling.method == "none":
        return {}
    ticks = {}
    for j, f in enumerate(d.features):
        column = d.columns[f]
        if not len(column):
            continue
        unit = F.unit_of(f)
        values = F.nice_values(float(column.min()), float(column.max()), unit)
        if len(values) < 2:
            continue
        positions = _transform_column(scaling, j, np.asarray(values, dtype=float))
        ticks[f] = F.axis_ticks(values, positions, [F.tick_label(v, unit, currency) for v in values])
    return ticks


def rfm_shares(profiles: pd.DataFrame) -> pd.DataFrame | None:
    """The profiles' RFM composition (segments x RFM segments, in segment order), or None."""
    if not all(c in profiles for c in RFM_COLUMNS):
        return None
    p = profiles.sort_values("segment")
    return pd.DataFrame(p[list(RFM_COLUMNS)].to_numpy(dtype=float), columns=list(RFM_SEGMENTS))


def column_stats(d: ReportData, columns: list[str], scaling: Scaling) -> dict[tuple[str, str], Any]:
    """The statistics drawn from every customer: per column its standardized segment means ("z"),
    box stats ("box"), and for clustering features the histograms before and after the transform.

    One task per column and statistic, run side by side up to GROUPED_UP_TO customers (numpy's
    sorts and partitions release the GIL): the report's share of a run on millions of customers
    is mostly these passes.
    """
    k = len(d.names)
    groups = F.SegmentGroups(d.labels, k) if d.total <= GROUPED_UP_TO else None  # (memory, see box_stats)
    position = {f: j for j, f in enumerate(d.features)}
    tasks = {("z", c): lambda c=c: F.standardized_means({c: d.columns[c]}, d.labels, k) for c in columns}
    tasks.update({("box", c): lambda c=c: F.box_stats(d.columns[c], d.labels, k, groups) for c in columns})
    tasks.update({("before", f): lambda f=f: F.histogram(d.columns[f]) for f in d.features})
    tasks.update({("after", f): lambda f=f: F.histogram(_transform_column(scaling, position[f], d.columns[f]),
                                                        clip_quantile=None) for f in d.features})
    workers = None if groups is not None else BEYOND_GROUPED_WORKERS
    return dict(zip(tasks, parallel_map(lambda task: task(), tasks.values(), workers=workers)))


def _segment_means(profiles: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    p = profiles.sort_values("segment")
    return pd.DataFrame({f: p[f"{f}_mean"].to_numpy(dtype=float) if f"{f}_mean" in p else np.nan
                         for f in features})


# ---------------------------------------------------------------------------- the page


def script_json(text: str) -> str:
    """JSON text made safe inside a <script> element: `<`, `>` and `&` (and the two JavaScript line
    separators) are written as \\u escapes, so `</script>` cannot appear."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def figures_json(figs: dict) -> str:
    """All figures as one JSON object, safe inside a <script> element (script_json)."""
    body = ",".join(f"{json.dumps(name)}:{fig.to_json()}" for name, fig in figs.items())
    return script_json("{" + body + "}")


def _sha256(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(scripts: list[str]) -> str:
    """No network at all; only the page's own scripts (by hash) run; inline styles allowed
    (plotly sets styles); data:/blob: images for plotly's 'download as png'."""
    return ("default-src 'none'; script-src " + " ".join(_sha256(s) for s in scripts)
            + "; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
              "base-uri 'none'; form-action 'none'")


def environment(currency: str | None = None):
    """The Jinja2 environment of custseg's pages (report.html, compare.html): autoescaped, strict;
    the `value` filter writes money in `currency`."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape  # (imported with the page)

    env = Environment(loader=PackageLoader("custseg.outputs.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = share_text
    env.filters["value"] = lambda x, unit="": _value(x, unit, currency)
    return env


def _value(x, unit: str = "", currency: str | None = None) -> str:
    """A feature's value in its unit: money with two decimals and the currency, shares as percentages."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if unit == "money":
        return money(float(x), currency)
    if unit == "rate":
        return share_text(x, 0 if float(x) in (0.0, 1.0) or float(x) >= 0.1 else 1)
    return _num(x)


def _num(x, digits: int | None = None) -> str:
    return number_text(x, digits, missing="–")


def _headline(result) -> dict[str, Any]:
    s, q = result.summary, result.data_quality
    reason = str(s.get("k_reason", ""))
    dates = s.get("date_range") or q.get("date_range")
    return {
        "period": _period(dates),
        "customers": s["customers"], "k": s["k"], "rows_read": s["rows_read"], "rows_used": s["rows_used"],
        "dropped": s["rows_read"] - s["rows_used"],
        "dates": dates, "reason": reason[:1].upper() + reason[1:], "k_method": s.get("k_method"),
        "seconds": s.get("seconds", {}).get("total"),
    }


def _period(dates) -> str | None:
    """'Nov 2018 – Apr 2019' from ISO dates."""
    if not dates or not dates[0] or not dates[1]:
        return None
    try:
        first, last = (pd.Timestamp(d) for d in dates[:2])
    except (ValueError, TypeError):
        return None
    a, b = first.strftime("%b %Y"), last.strftime("%b %Y")
    return a if a == b else f"{a} – {b}"


def _feature_rows(result, columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    ordered = list(result.features) + [c for c in columns if c not in result.features]

    def summary(name: str) -> dict[str, float | None]:  # (a median partitions every value: side by side)
        values = columns[name]
        if not len(values):
            return {"median": None, "mean": None, "min": None, "max": None}
        return {"median": float(np.median(values)), "mean": float(values.mean()), "min": float(values.min()),
                "max": float(values.max())}

    rows = []
    few = not columns or len(next(iter(columns.values()))) <= GROUPED_UP_TO
    for name, stats in zip(ordered, parallel_map(summary, ordered, workers=None if few else BEYOND_GROUPED_WORKERS)):
        feature = REGISTRY.get(name)
        rows.append({
            "name": name, "title": F.feature_title(name), "used": name in result.features,
            "definition": feature.description if feature else "",
            "unit": feature.unit if feature else "",
            **stats,
        })
    return rows


SCALE_WORDS = {
    "log": "log(1 + value) of each feature: it tames the long tail of big spenders, so "
           "K-means is not driven by a handful of customers",
    "log-standard": "log(1 + value), then standardized to mean 0 and standard deviation 1",
    "standard": "standardized to mean 0 and standard deviation 1",
    "none": "none: K-means ran on the raw values",
}


def _cards(result, data: ReportData) -> list[dict[str, Any]]:
    p = result.profiles.sort_values("segment")
    sellers = result.best_sellers if result.best_sellers is not None else pd.DataFrame()
    cards = []
    for row in p.itertuples():
        s = int(row.segment)
        top = []
        if len(sellers):
            mine = sellers[(sellers["segment"] == s) & (sellers["by"] == "customers")].sort_values("rank")
            for r in mine.head(3).itertuples():
                name = r.product_name if isinstance(r.product_name, str) and r.product_name else r.product
                top.append({"name": str(name), "quantity": float(r.quantity), "customers": int(r.customers)})
        stats = []
        for f in data.features:
            stats.append({"title": F.feature_title(f), "unit": F.unit_of(f),
                          "median": getattr(row, f"{f}_median", None),
                          "mean": getattr(row, f"{f}_mean", None), "min": getattr(row, f"{f}_min", None),
                          "max": getattr(row, f"{f}_max", None)})
        cards.append({
            "id": s, "name": str(row.segment_name), "color": data.colors[s], "customers": int(row.customers),
            "customer_share": float(row.customer_share),
            "revenue_share": float(row.revenue_share) if hasattr(row, "revenue_share") else None,
            "description": str(row.description), "strategy": str(row.strategy), "stats": stats, "top": top,
            "evidence": str(getattr(row, "name_evidence", "") or ""),
            "stability": float(row.stability) if hasattr(row, "stability") else None,
            "unstable": bool(row.unstable) if hasattr(row, "unstable") else False,
            "borderline": int(row.borderline_customers) if hasattr(row, "borderline_customers") else None,
            "figure": f"best_sellers_{s}",
        })
    return cards


def _method_rows(result) -> list[tuple[str, str]]:
    s = result.summary
    k_text = f"{s['k']} ({s.get('k_method', '')}: {s.get('k_reason', '')})"
    rows = [
        ("Input", ", ".join(map(str, s.get("inputs") or [])) or "a DataFrame"),
        ("Schema", f"{s.get('schema')} (dates: {s.get('date_format')})"),
        ("Features", ", ".join(s.get("features", []))),
        ("Transform", str(s.get("scale"))),
        ("Number of segments k", k_text),
        ("Sweep", f"k = 1 to {s.get('k_max')} on {s.get('sweep_sample', 0):,} customers; silhouette on "
                  f"{s.get('silhouette_sample', 0):,}"),
        ("K-means", f"k-means++, {s.get('n_init')} starts, at most {s.get('max_iter')} iterations "
                    f"({s.get('clustering_backend', 'scikit-learn')})"),
        ("Currency", str(s.get("currency") or "not given (amounts shown without a symbol; --currency EUR)")),
        ("Random seed", str(s.get("seed"))),
        ("Engine", str(s.get("engine"))),
        ("Within-segment sum of squares", f"{s.get('inertia', float('nan')):,.2f}"),
    ]
    return rows


def render_report(result, figs: dict | None = None, data: ReportData | None = None) -> str:
    """The report page as a string."""
    import plotly.offline  # plotly: heavy

    from markupsafe import Markup  # (jinja2's)

    d = data or report_data(result)
    figs = figs if figs is not None else build_figures(result, d)
    plotly_js = plotly.offline.get_plotlyjs()
    s = result.summary
    context = {
        "title": "Customer segments",
        "headline": _headline(result),
        "quality": result.data_quality,
        "features": _feature_rows(result, d.columns),
        "scale": s.get("scale"),
        "scale_words": SCALE_WORDS.get(str(s.get("scale")), str(s.get("scale"))),
        "cards": _cards(result, d),
        "stability": s.get("stability"),
        "method": _method_rows(result),
        "seconds": s.get("seconds", {}),
        "versions": s.get("versions", {}),
        "command": s.get("command", ""),
        "has": set(figs),
        "sample_note": F.sample_note(len(d.sample), d.total),
        "notes": d.notes,
        "high_means": [(F.feature_title(f), F.HIGH_MEANS[f])
                       for f in d.features + [c for c in d.columns if c not in d.features] if f in F.HIGH_MEANS],
        "plotly_js": Markup(plotly_js),
        "bootstrap_js": Markup(BOOTSTRAP_JS),
        "figures_json": Markup(figures_json(figs)),
        "csp": content_security_policy([plotly_js, BOOTSTRAP_JS]),
        "custseg_version": s.get("custseg_version", ""),
        "lifecycle": lifecycle_context(result),
    }
    return environment(s.get("currency")).get_template("report.html.j2").render(**context)


def lifecycle_context(result) -> dict[str, Any]:
    """The report's "worth ahead" section: per segment (profiles' lifecycle columns) and the backtest."""
    info = result.summary.get("lifecycle") or {}
    if info.get("status") != "scored":
        return {"scored": False, "reason": info.get("reason", "")}
    p = result.profiles
    horizon = info.get("horizon", "")
    value, orders = f"expected_value_{horizon}", f"expected_orders_{horizon}"
    rows = [{"name": r["segment_name"], "orders": r[orders], "value": r[value], "share": r[f"{value}_share"],
             "alive": r["mean_p_alive"], "lost": r["likely_lost"], "lost_share": r["likely_lost_share"],
             "stake": r["revenue_at_stake"]} for _, r in p.iterrows()]
    backtest = result.summary.get("backtest")
    return {"scored": True, "horizon": horizon, "model": info.get("model"), "rows": rows,
            "discount": info.get("monthly_discount"), "backtest": backtest}


def write_report(result, directory: Path, figures: str | None = None) -> list[str]:
    """Write report.html into `directory` (and figures/*.png with figures="png"); the files written."""
    directory = Path(directory)
    if figures is not None and figures not in FIGURE_FORMATS:
        raise CustsegError(f"--figures {figures!r} is unknown; use png.")
    browser = png_browser_or_error() if figures == "png" else None
    d = report_data(result)
    figs = build_figures(result, d)
    (directory / "report.html").write_text(render_report(result, figs, d), encoding="utf-8")
    files = ["report.html"]
    if figures == "png":
        files += write_pngs(figs, directory / "figures", browser)
    return files


# ---------------------------------------------------------------------------- PNG figures


def find_browser() -> str | None:
    """A Chrome/Chromium for kaleido: $BROWSER_PATH, else one kaleido/choreographer finds
    (its own download, then chrome/chromium on PATH and in the usual places)."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    try:
        from choreographer.browsers.chromium import Chromium  # optional (custseg[png])

        return Chromium.find_browser(skip_local=False)
    except Exception:  # choreographer missing or its search failed: no browser
        return None


def png_browser_or_error() -> str:
    """The browser to draw PNGs with, or a CustsegError saying what is missing."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise CustsegError("--figures png needs kaleido: pip install 'custseg[png]' (and a Chrome or Chromium); "
                           "or leave out --figures.") from None
    browser = find_browser()
    if browser is None:
        where = os.environ.get("BROWSER_PATH")
        raise CustsegError(
            (f"BROWSER_PATH={where}: no executable browser there; " if where else
             "--figures png needs Chrome or Chromium and none was found; ")
            + "install one (Debian/Ubuntu: apt-get install chromium; or run kaleido_get_chrome) or set "
              "BROWSER_PATH=/path/to/chrome; or leave out --figures."
        )
    return browser


def check_figures(figures: str, report: bool = True) -> None:
    """Refuse an unusable --figures before any work: unknown format, no report, no browser."""
    if figures not in FIGURE_FORMATS:
        raise CustsegError(f"--figures {figures!r} is unknown; use png.")
    if not report:
        raise CustsegError("--figures png draws the report's figures; drop --no-report or --figures.")
    png_browser_or_error()


def png_name(index: int, name: str) -> str:
    return f"{index:02d}-{name.replace('_', '-')}.png"


def write_pngs(figs: dict, directory: Path, browser: str | None = None) -> list[str]:
    """Each figure as a PNG (2x scale) under `directory`, drawn by kaleido in a headless browser."""
    import kaleido  # optional (custseg[png])

    browser = browser or png_browser_or_error()
    directory.mkdir(parents=True, exist_ok=True)
    specs, files = [], []
    for i, (name, fig) in enumerate(figs.items(), start=1):
        filename = png_name(i, name)
        height = fig.layout.get("height") or 450
        specs.append({"fig": json.loads(fig.to_json()), "path": directory / filename,
                      "opts": {"format": "png", "width": 1100, "height": int(height), "scale": 2}})
        files.append(f"{directory.name}/{filename}")
    try:
        kaleido.write_fig_from_object_sync(specs, kopts={"path": browser, "mathjax": False})
    except Exception as exc:  # the browser failed to start or to draw
        raise CustsegError(f"--figures png: {browser} could not draw the figures ({type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}); "
                           "check that it starts headless, or leave out --figures.") from exc
    missing = [f for f in files if not (directory.parent / f).is_file()]
    if missing:
        raise CustsegError(f"--figures png: {browser} did not write {missing[0]}; leave out --figures.")
    return files


# ---------------------------------------------------------------------------- notebooks


def summary_html(result) -> str:
    """A compact summary for Jupyter: headline, one row per segment with share bars, and the
    profile heatmap, in plain HTML and CSS (no script: it shows in untrusted notebooks too)."""
    env = environment()
    d = report_data(result, plot_sample=1, detail_sample=1)
    ordered = d.features + [c for c in d.columns if c not in d.features]
    z = F.standardized_means({c: d.columns[c] for c in ordered}, d.labels, len(d.names))
    cells = []
    for s in range(len(d.names)):
        cells.append([{"value": float(z.iloc[s][c]), "color": _diverging(float(z.iloc[s][c])),
                       "ink": "#ffffff" if abs(float(z.iloc[s][c])) >= 1.4 else "#1f2933"} for c in ordered])
    return env.get_template("summary.html.j2").render(
        headline=_headline(result), cards=_cards(result, d), heat_features=[F.feature_title(c) for c in ordered],
        heat=cells,
    )


def _diverging(z: float, limit: float = 2.0) -> str:
    """Background colour for a standardized mean: brown below average, teal above (as the heatmap)."""
    if not math.isfinite(z):
        return "#ffffff"
    t = max(-1.0, min(1.0, z / limit))
    target = (1, 102, 94) if t > 0 else (140, 81, 10)
    a = abs(t) * 0.85
    r, g, b = (round(255 + (c - 255) * a) for c in target)
    return f"#{r:02x}{g:02x}{b:02x}"
