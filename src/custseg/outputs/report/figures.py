"""The report's figures: one small, pure builder per figure, from data to a plotly.js figure.

Builders take plain arrays and tables (already sampled or summarised: no builder ever
sees more points than it draws) and return a `plot.Figure` (plotly.js JSON, see plot.py). Text that
comes from the data (segment and product names, customer ids) goes through `label()`,
so plotly shows it as text and never as markup. Colours: `segment_colors()`, one
stable colour per segment id, colour-blind safe (Okabe-Ito first).

The helpers `box_stats`, `histogram`, `standardized_means` (from profiles.py) and
`principal_components` turn full columns into the small summaries the builders draw.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...features import REGISTRY

# box_stats groups the rows of each segment with SegmentGroups; standardized_means is what names
# the segments (profiles.py) and what the profile heatmap draws.
from ...profiles.stats import SegmentGroups, standardized_means  # noqa: F401
from ...profiles.describe import share_text
from ...sources.currency import money, prefix_suffix
from .plot import Figure, colorscale, subplots, trace

# Okabe & Ito (2008), the colour-blind safe qualitative palette, then Paul Tol's "muted"
# palette for k > 8. Yellow sits late: it is the hardest to see on white.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
TOL_MUTED = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499")
PALETTE = OKABE_ITO + TOL_MUTED
CENTRE_COLOR = "#111111"
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# Brown below average, teal above: a neutral diverging scale (ColorBrewer BrBG, colour-blind safe)
# that says "more" or "less", not "good" or "bad" (red would make a lapsed segment's recency glow).
DIVERGING = "BrBG"
# What a high value of each feature means for the shop (the heatmap's legend and hover).
HIGH_MEANS = {
    "products_ordered": "buys many different products",
    "average_return_rate": "returns much of what they buy (bad)",
    "total_spending": "spends more in total (good)",
    "order_count": "orders often (good)",
    "avg_order_value": "bigger baskets (good)",
    "recency_days": "has not ordered for long: lapsing (bad)",
    "tenure_days": "a customer for longer",
}


def segment_colors(k: int) -> list[str]:
    """One colour per segment id 0..k-1, the same in every figure."""
    return [PALETTE[i % len(PALETTE)] for i in range(k)]


def label(text) -> str:
    """Data text made safe for plotly: plotly reads a subset of HTML in labels, so `<`, `>`
    and `&` become entities (which plotly shows as the characters themselves)."""
    return html.escape(str(text), quote=False)


def feature_title(name: str) -> str:
    """'total_spending' -> 'total spending'."""
    return name.replace("_", " ")


def scaled_title(name: str, scale: str) -> str:
    """Axis title of a feature after the clustering transform."""
    title = feature_title(name)
    return {
        "log": f"log(1 + {title})",
        "log-standard": f"log(1 + {title}), standardized",
        "standard": f"{title}, standardized",
    }.get(scale, title)


def unit_of(name: str) -> str:
    """products | rate | money | orders | days, or '' for a feature custseg does not know."""
    feature = REGISTRY.get(name)
    return feature.unit if feature else ""


def hover_number(field: str, unit: str, currency: str | None = None) -> str:
    """A plotly hover placeholder for a value in the shop's units, e.g. '€%{customdata[1]:,.2f}'."""
    if unit == "rate":
        return f"%{{{field}:.0%}}"
    if unit == "money":
        before, after = prefix_suffix(currency)
        return f"{label(before)}%{{{field}:,.2f}}{label(after)}"
    return f"%{{{field}:,.4~g}}"


def shop_axis_title(name: str, scale: str) -> str:
    """Axis title of a feature drawn where K-means saw it, with ticks in the shop's units."""
    return f"{feature_title(name)} (log scale)" if scale.startswith("log") else feature_title(name)


Ticks = dict  # feature -> (positions on the transformed axis, labels in the shop's units)


def nice_values(lo: float, hi: float, unit: str = "") -> list[float]:
    """Round values between lo and hi to label an axis with: 0, 1, 2, 5, 10, 20, 50, ... (and
    their negatives); shares (unit "rate") as 0, 10%, 25%, 50%, 75%, 100%."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return []
    if unit == "rate":
        steps = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]
    else:
        steps = [0.0] + [m * 10.0 ** e for e in range(-2, 13) for m in (1, 2, 5)]
    # (negatives from -1 down only: a refund of a few cents is not worth a tick)
    values = sorted({v for s in steps for v in ((s, -s) if s >= 1 else (s,))})
    return [v for v in values if lo - 1e-12 <= v <= hi + 1e-12]


def axis_ticks(values: Sequence[float], positions: Sequence[float], labels: Sequence[str],
               most: int = 7) -> tuple[list[float], list[str]]:
    """At most `most` of the candidate ticks, spread evenly along the (transformed) axis."""
    pos = np.asarray(positions, dtype=float)
    if len(pos) == 0:
        return [], []
    span = float(pos.max() - pos.min()) or 1.0
    gap = span / (most + 1)
    kept: list[int] = []
    for i in np.argsort(pos):
        if not kept or pos[i] - pos[kept[-1]] >= gap:
            kept.append(int(i))
    return [float(pos[i]) for i in kept], [labels[i] for i in kept]


def tick_label(value: float, unit: str = "", currency: str | None = None) -> str:
    """A tick in the shop's units: '25%', '€1,000', '€0.50', '1,000', '0.5'."""
    if unit == "rate":
        return f"{value:.0%}"
    if unit == "money":
        return money(value, currency, whole=float(value).is_integer())
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def sample_note(shown: int, total: int, what: str = "customers") -> str:
    """'all 812 customers' or 'a uniform sample of 5,000 of 2,400,000 customers'."""
    if shown >= total:
        return f"all {total:,} {what}"
    return f"a uniform sample of {shown:,} of {total:,} {what}"


def _layout(fig: Figure, title: str, subtitle: str | None = None, height: int = 420, margin: dict | None = None,
            **extra) -> Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "pad": {"l": 8}, "font": {"size": 16, "color": INK},
               **({"subtitle": {"text": subtitle, "font": {"size": 12, "color": MUTED}}} if subtitle else {})},
        font={"family": FONT, "size": 12, "color": INK},
        height=height,
        margin=margin or {"l": 60, "r": 20, "t": 80 if subtitle else 56, "b": 90},
        paper_bgcolor="white",
        plot_bgcolor="white",
        hoverlabel={"font": {"family": FONT}},
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.01, "x": 0, "xanchor": "left",
                "itemsizing": "constant"},
        **extra,
    )
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=GRID, linecolor="#9aa5b1")
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID, linecolor="#9aa5b1")
    return fig


# ---------------------------------------------------------------------------- choosing k


def elbow_figure(k_selection: pd.DataFrame, k: int) -> Figure:
    """Inertia (within-cluster sum of squares) against k, the chosen k marked."""
    ks = k_selection["k"].astype(int).tolist()
    inertia = k_selection["inertia"].astype(float).tolist()
    fig = Figure()
    fig.add_trace(trace("scatter", x=ks, y=inertia, mode="lines+markers", name="inertia",
                                   line={"color": OKABE_ITO[0], "width": 2}, marker={"size": 7},
                                   hovertemplate="k = %{x}<br>inertia %{y:,.1f}<extra></extra>"))
    if k in ks:
        chosen = inertia[ks.index(k)]
        fig.add_trace(trace("scatter", x=[k], y=[chosen], mode="markers", name=f"chosen k = {k}",
                                       marker={"size": 16, "color": OKABE_ITO[5], "symbol": "circle-open",
                                         "line": {"width": 3}},
                                       hovertemplate="chosen k = %{x}<br>inertia %{y:,.1f}<extra></extra>"))
        fig.add_annotation(x=k, y=chosen, text=f"chosen: k = {k}", showarrow=True, arrowhead=2, ax=40, ay=-40,
                           font={"color": OKABE_ITO[5], "size": 13})
    fig.update_xaxes(title="number of segments k", dtick=1)
    fig.update_yaxes(title="inertia (lower: tighter)", rangemode="tozero")  # (short: it runs up the plot)
    return _layout(fig, "Elbow curve: how much tighter segments get per extra segment",
                   "Inertia always falls as k grows; the elbow is where more segments stop paying off.")


K_SCORES = (
    ("silhouette", "Silhouette<br>(higher is better)"),
    ("calinski_harabasz", "Calinski-Harabasz<br>(higher is better)"),
    ("davies_bouldin", "Davies-Bouldin<br>(lower is better)"),
)


def k_scores_figure(k_selection: pd.DataFrame, k: int) -> Figure:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin against k (k >= 2), the chosen k marked."""
    fig = subplots(rows=1, cols=3, subplot_titles=[t for _, t in K_SCORES], horizontal_spacing=0.08)
    scored = k_selection[k_selection["k"] >= 2]
    for col, (name, _) in enumerate(K_SCORES, start=1):
        ks = scored["k"].astype(int).tolist()
        values = scored[name].astype(float).tolist()
        fig.add_trace(trace("scatter", x=ks, y=values, mode="lines+markers", name=name, showlegend=False,
                                       line={"color": OKABE_ITO[0], "width": 2}, marker={"size": 6},
                                       hovertemplate=f"k = %{{x}}<br>{name} %{{y:,.3f}}<extra></extra>"),
                      row=1, col=col)
        if k in ks:
            fig.add_trace(trace("scatter", x=[k], y=[values[ks.index(k)]], mode="markers", name=f"chosen k = {k}",
                                           showlegend=col == 1, legendgroup="chosen",
                                           marker={"size": 14, "color": OKABE_ITO[5], "symbol": "circle-open",
                                             "line": {"width": 3}},
                                           hovertemplate=f"chosen k = %{{x}}<br>{name} %{{y:,.3f}}<extra></extra>"),
                          row=1, col=col)
        # (a third of the width each: at most ~8 tick labels, so they stay level at 800 px)
        fig.update_xaxes(title="k", tick0=0, dtick=max(1, -(-max(ks, default=1) // 8)), row=1, col=col)
    fig.update_annotations(font={"size": 12})
    return _layout(fig, "Cross-checks: cluster quality indices for each k",
                   "Three views of how well separated the segments are; the ring marks the chosen k.",
                   height=420, margin={"l": 60, "r": 20, "t": 124, "b": 90})


def silhouette_figure(values: np.ndarray, labels: np.ndarray, names: Sequence[str], colors: Sequence[str],
                      total: int) -> Figure:
    """The silhouette plot: each customer of the sample as a horizontal line, grouped by segment
    and sorted; the dashed line is the average."""
    values, labels = np.asarray(values, dtype=float), np.asarray(labels)
    fig = Figure()
    gap = max(2, len(values) // 60)
    y0 = 0
    ticks, ticktext = [], []
    for s, name in enumerate(names):
        v = np.sort(values[labels == s])[::-1]
        if len(v) == 0:
            continue
        y = y0 + np.arange(len(v))
        fig.add_trace(trace("scatter",
            x=np.concatenate([[0.0], v, [0.0]]), y=np.concatenate([[y[0]], y, [y[-1]]]),
            mode="lines", fill="toself", name=label(name), line={"color": colors[s], "width": 0.5},
            fillcolor=colors[s], hoveron="fills",
            hovertemplate=f"{label(name)}<br>mean silhouette {v.mean():.3f}<extra></extra>",
        ))
        ticks.append(y0 + len(v) / 2)
        ticktext.append(f"{label(name)}<br>mean {v.mean():.2f}")
        y0 += len(v) + gap
    mean = float(values.mean()) if len(values) else 0.0
    fig.add_vline(x=mean, line={"color": INK, "dash": "dash", "width": 1.5},
                  annotation_text=f"average {mean:.2f}")
    fig.update_xaxes(title="silhouette (1: well inside, 0: on a border)",
                     range=[min(-0.1, float(values.min()) - 0.02) if len(values) else -0.1, 1])
    fig.update_yaxes(tickvals=ticks, ticktext=ticktext, showgrid=False, zeroline=False, autorange="reversed")
    return _layout(fig, "Silhouette per segment at the chosen k",
                   f"How clearly each customer belongs; {sample_note(len(values), total)}.",
                   height=max(360, 90 * len(names)), showlegend=False, margin={"l": 20, "r": 20, "t": 80, "b": 50})


# ---------------------------------------------------------------------------- segments


def sizes_figure(profiles: pd.DataFrame, colors: Sequence[str]) -> Figure:
    """Customers per segment (bars) beside each segment's share of customers and of revenue."""
    names = [label(n) for n in profiles["segment_name"]]
    seg_colors = [colors[int(s)] for s in profiles["segment"]]
    has_revenue = "revenue_share" in profiles
    fig = subplots(rows=1, cols=2 if has_revenue else 1, horizontal_spacing=0.06, shared_yaxes=True,
                   subplot_titles=["Customers"] + (["Share of customers and of revenue"] if has_revenue else []))
    customers = profiles["customers"].astype(int).tolist()
    fig.add_trace(trace("bar", y=names, x=customers, orientation="h", marker={"color": seg_colors}, name="customers",
                               showlegend=False, text=[f"{c:,}" for c in customers], textposition="outside",
                               cliponaxis=False, hovertemplate="%{y}<br>%{x:,} customers<extra></extra>"), row=1, col=1)
    if has_revenue:
        # (bar labels as the tables write them: '<1%' for a tiny share, '0%', not '-0%', for -0.02 of revenue)
        customer_share = profiles["customer_share"].astype(float).tolist()
        revenue_share = profiles["revenue_share"].astype(float).tolist()
        fig.add_trace(trace("bar", y=names, x=customer_share, orientation="h",
                                   name="share of customers (hatched)",
                                   marker={"color": "white", "line": {"color": seg_colors, "width": 1.5},
                                     "pattern": {"shape": "/", "fgcolor": seg_colors, "size": 6}},
                                   text=[share_text(v) for v in customer_share], texttemplate="%{text}",
                                   textposition="outside", cliponaxis=False,
                                   customdata=[share_text(v, 1) for v in customer_share],
                                   hovertemplate="%{y}<br>%{customdata} of customers<extra></extra>"), row=1, col=2)
        fig.add_trace(trace("bar", y=names, x=revenue_share, orientation="h",
                                   name="share of revenue (solid)", marker={"color": seg_colors},
                                   text=[share_text(v) for v in revenue_share], texttemplate="<b>%{text}</b>",
                                   textposition="outside", cliponaxis=False,
                                   customdata=[share_text(v, 1) for v in revenue_share],
                                   hovertemplate="%{y}<br>%{customdata} of revenue<extra></extra>"), row=1, col=2)
        top = max(profiles["customer_share"].max(), profiles["revenue_share"].max())
        fig.update_xaxes(tickformat=".0%", range=[0, float(top) * 1.3], row=1, col=2)
    fig.update_xaxes(range=[0, max(customers) * 1.3], row=1, col=1)
    # The legend (below) says which bar is which share, so no bar label has to.
    fig.update_layout(barmode="group", bargap=0.3, bargroupgap=0.08, showlegend=has_revenue)
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_annotations(font={"size": 13})
    return _layout(fig, "How big each segment is, and what it is worth", None,
                   height=max(320, 80 * len(names) + 160), margin={"l": 20, "r": 30, "t": 80, "b": 80})


def principal_components(Z: np.ndarray, n: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the first `n` principal axes (rows) and each axis's share of the variance."""
    mean = Z.mean(axis=0)
    _, s, vt = np.linalg.svd(Z - mean, full_matrices=False)
    variance = s ** 2
    share = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    # A deterministic sign: the largest loading of each axis is positive.
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    vt = vt * np.where(signs == 0, 1, signs)[:, None]
    return mean, vt[:n], share[:n]


def segments_scatter_figure(Z: np.ndarray, X: np.ndarray, labels: np.ndarray, features: Sequence[str],
                            centers: np.ndarray, names: Sequence[str], colors: Sequence[str], scale: str,
                            total: int, customer_ids: Sequence | None = None, ticks: Ticks | None = None,
                            currency: str | None = None) -> Figure:
    """The customers in the space K-means worked in, coloured by segment, centres marked.

    Three features: a 3D scatter of the transformed features. Two: a 2D scatter of them.
    Otherwise the first two principal components. Hover shows the original units; `ticks`
    (from `axis_ticks`) label the transformed axes in the shop's units.
    """
    Z, X, labels, centers = np.asarray(Z, float), np.asarray(X, float), np.asarray(labels), np.asarray(centers, float)
    n_features = Z.shape[1]
    hover = "<br>".join(f"{feature_title(f)}: {hover_number(f'customdata[{j}]', unit_of(f), currency)}"
                        for j, f in enumerate(features))
    ticks = ticks or {}
    ids = [label(c) for c in customer_ids] if customer_ids is not None else None
    three_d = n_features == 3
    if n_features in (2, 3):
        coords, centre_coords = Z, centers
        titles = [shop_axis_title(f, scale) if f in ticks else scaled_title(f, scale) for f in features]
        axis_ticks_ = [_tick_settings(ticks.get(f)) for f in features]
    else:
        axis_ticks_ = [{}, {}]
        mean, axes, share = principal_components(Z, min(2, n_features))
        coords, centre_coords = (Z - mean) @ axes.T, (centers - mean) @ axes.T
        if coords.shape[1] == 1:  # one feature: spread the points by segment
            coords = np.column_stack([coords[:, 0], labels + np.random.default_rng(0).uniform(-0.3, 0.3, len(labels))])
            centre_coords = np.column_stack([centre_coords[:, 0], np.arange(len(centers))])
            titles = [shop_axis_title(features[0], scale) if features[0] in ticks else scaled_title(features[0], scale),
                      "segment"]
            axis_ticks_ = [_tick_settings(ticks.get(features[0])), {}]
        else:
            titles = [f"principal component {i + 1} ({share[i]:.0%} of the variance)" for i in range(2)]
    fig = Figure()
    kind = "scatter3d" if three_d else "scatter"
    for s, name in enumerate(names):
        mask = labels == s
        if not mask.any():
            continue
        xyz = {"x": coords[mask, 0], "y": coords[mask, 1]}
        if three_d:
            xyz["z"] = coords[mask, 2]
        fig.add_trace(trace(
            kind, **xyz, mode="markers", name=label(name), legendgroup=f"s{s}",
            marker={"size": 2.5 if three_d else 5, "color": colors[s], "opacity": 0.75 if three_d else 0.6},
            customdata=X[mask], text=[ids[i] for i in np.flatnonzero(mask)] if ids else None,
            hovertemplate=(f"<b>{label(name)}</b><br>" + ("customer %{text}<br>" if ids else "") + hover
                           + "<extra></extra>"),
        ))
    centre = {"x": centre_coords[:, 0], "y": centre_coords[:, 1]}
    if three_d:
        centre["z"] = centre_coords[:, 2]
    fig.add_trace(trace(
        kind, **centre, mode="markers", name="segment centres", text=[label(n) for n in names],
        marker={"size": 9 if three_d else 16, "color": [colors[s] for s in range(len(names))], "symbol": "diamond",
                "line": {"color": CENTRE_COLOR, "width": 2}},
        hovertemplate="centre of %{text}<extra></extra>",
    ))
    subtitle = f"{sample_note(len(labels), total).capitalize()}; hover a dot for its values."
    if three_d:
        fig.update_layout(scene={
            "xaxis": {"title": {"text": titles[0]}, "backgroundcolor": "#f7f8fa", **axis_ticks_[0]},
            "yaxis": {"title": {"text": titles[1]}, "backgroundcolor": "#f7f8fa", **axis_ticks_[1]},
            "zaxis": {"title": {"text": titles[2]}, "backgroundcolor": "#f7f8fa", **axis_ticks_[2]},
            # a little further away and the scene above the legend: no axis title is cut off
            "camera": {"eye": {"x": 1.6, "y": -1.6, "z": 0.75}, "center": {"x": 0, "y": 0, "z": -0.08}},
            "aspectmode": "cube",
            "domain": {"x": [0, 1], "y": [0.1, 1]},
        })
        # (no "drag to rotate" here: the title is in the static PNG exports too; the page says it)
        return _layout(fig, "The segments in feature space", subtitle, height=640,
                       margin={"l": 0, "r": 0, "t": 80, "b": 40})
    fig.update_xaxes(title=titles[0], **axis_ticks_[0])
    fig.update_yaxes(title=titles[1], **axis_ticks_[1])
    return _layout(fig, "The segments in feature space", subtitle, height=560)


def _tick_settings(ticks: tuple | None) -> dict:
    if not ticks or not len(ticks[0]):
        return {}
    return {"tickmode": "array", "tickvals": list(ticks[0]), "ticktext": list(ticks[1])}


def scatter_matrix_figure(Z: np.ndarray, labels: np.ndarray, features: Sequence[str], names: Sequence[str],
                          colors: Sequence[str], scale: str, total: int, ticks: Ticks | None = None) -> Figure:
    """Every pair of (transformed) features against each other, coloured by segment (SVG, no WebGL);
    `ticks` label the axes in the shop's units."""
    ticks = ticks or {}

    def title(f: str) -> str:
        return shop_axis_title(f, scale) if f in ticks else scaled_title(f, scale)
    Z, labels = np.asarray(Z, float), np.asarray(labels)
    n = len(features)
    pairs = [(i, j) for i in range(1, n) for j in range(i)]
    size = n - 1
    fig = subplots(rows=size, cols=size, horizontal_spacing=0.04, vertical_spacing=0.05)
    for i, j in pairs:
        for s, name in enumerate(names):
            mask = labels == s
            if not mask.any():
                continue
            fig.add_trace(trace("scatter",
                x=Z[mask, j], y=Z[mask, i], mode="markers", name=label(name), legendgroup=f"s{s}",
                showlegend=(i, j) == pairs[0], marker={"size": 4, "color": colors[s], "opacity": 0.55},
                hovertemplate=f"{label(name)}<extra></extra>",
            ), row=i, col=j + 1)
        fig.update_xaxes(**_tick_settings(ticks.get(features[j])), row=i, col=j + 1)
        fig.update_yaxes(**_tick_settings(ticks.get(features[i])), row=i, col=j + 1)
        if i == n - 1:
            fig.update_xaxes(title=title(features[j]), row=i, col=j + 1)
        if j == 0:
            fig.update_yaxes(title=title(features[i]), row=i, col=1)
    for i in range(1, n):  # hide the empty upper triangle
        for j in range(i, n - 1):
            fig.update_xaxes(visible=False, row=i, col=j + 1)
            fig.update_yaxes(visible=False, row=i, col=j + 1)
    return _layout(fig, "Pairs of features, coloured by segment",
                   f"{sample_note(len(labels), total).capitalize()}; axes as K-means saw them.",
                   height=max(440, 260 * size + 130), margin={"l": 80, "r": 20, "t": 90, "b": 100})


def profile_heatmap_figure(z: pd.DataFrame, names: Sequence[str], clustering_features: Sequence[str],
                           means: pd.DataFrame | None = None, currency: str | None = None) -> Figure:
    """The standardized segment means as a heatmap: teal above average, brown below (a neutral
    scale: whether high is good depends on the feature, see HIGH_MEANS)."""
    features = list(z.columns)
    x = [feature_title(f).replace(" ", "<br>") + (" *" if f in clustering_features else "") for f in features]
    y = [label(n) for n in names]
    values = z.to_numpy(dtype=float)
    limit = max(1.0, float(np.nanmax(np.abs(values)))) if values.size else 1.0
    # the segment means in the shop's units, written out (money with its currency, shares in %)
    custom = ([[_shop_text(float(means[f].iloc[i]), unit_of(f), currency) for f in features]
               for i in range(len(means))] if means is not None else None)
    fig = Figure(trace("heatmap",
        z=values, x=x, y=y, colorscale=colorscale(DIVERGING), zmid=0, zmin=-limit, zmax=limit,
        texttemplate="%{z:+.2f}", textfont={"size": 13},
        customdata=custom, xgap=2, ygap=2,
        text=[[f"high: {HIGH_MEANS[f]}" if f in HIGH_MEANS else "" for f in features] for _ in names],
        colorbar={"title": {"text": "vs. the<br>average", "side": "top"}, "thickness": 14, "len": 0.9,
                  "tickvals": [-limit, 0, limit], "ticktext": ["below", "average", "above"]},
        hovertemplate=("%{y}<br>%{x}: %{z:+.2f} standard deviations"
                       + ("<br>segment mean %{customdata}" if custom is not None else "") + "<br>%{text}"
                       + "<extra></extra>"),
    ))
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False, tickangle=0, side="bottom")
    return _layout(fig, "Segment profiles: each segment against the average",
                   "In standard deviations from the average customer; * = used for clustering.",
                   height=max(320, 66 * len(names) + 190), margin={"l": 20, "r": 20, "t": 80, "b": 40})


def rfm_heatmap_figure(shares: pd.DataFrame, names: Sequence[str]) -> Figure:
    """Each K-means segment's RFM composition (rows: segments; columns: the RFM segments; cells: the
    share of the segment's customers, rows summing to 1)."""
    columns = [str(c) for c in shares.columns]
    values = shares.to_numpy(dtype=float)
    fig = Figure(trace("heatmap",
        z=values, x=[label(c) for c in columns], y=[label(n) for n in names], colorscale=colorscale("Blues"),
        zmin=0, zmax=1,
        texttemplate="%{z:.0%}", textfont={"size": 12}, xgap=2, ygap=2,
        colorbar={"title": {"text": "share of<br>the segment"}, "thickness": 14, "tickformat": ".0%"},
        hovertemplate="%{y}<br>%{x}: %{z:.1%} of the segment's customers<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False, tickangle=-30)
    return _layout(fig, "RFM segments inside each segment",
                   "Share of the segment's customers (rows sum to 100%).",
                   height=max(300, 66 * len(names) + 200), margin={"l": 200, "r": 20, "t": 80, "b": 110})


def box_stats(values: np.ndarray, labels: np.ndarray, k: int, groups: SegmentGroups | None = None) -> pd.DataFrame:
    """Per segment: quartiles, mean and Tukey whiskers (the furthest values within 1.5 IQR of the box),
    computed on every customer (partitions and masks, no full sort: linear in the customers)."""
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels)
    # With groups, each feature is reordered once (a copy of the column); without, each segment
    # is masked out (less memory for tens of millions of customers, more passes).
    parts = groups.split(values) if groups is not None else None
    rows = []
    for s in range(k):
        v = parts[s] if parts is not None else values[labels == s]
        if len(v) == 0:
            rows.append({"segment": s, "q1": np.nan, "median": np.nan, "q3": np.nan, "lowerfence": np.nan,
                         "upperfence": np.nan, "mean": np.nan, "count": 0})
            continue
        q1, median, q3 = np.percentile(v, [25, 50, 75])
        iqr = q3 - q1
        lo = float(v[v >= q1 - 1.5 * iqr].min())
        hi = float(v[v <= q3 + 1.5 * iqr].max())
        rows.append({"segment": s, "q1": q1, "median": median, "q3": q3, "lowerfence": lo, "upperfence": hi,
                     "mean": float(v.mean()), "count": len(v)})
    return pd.DataFrame(rows)


def box_figure(stats: dict[str, pd.DataFrame], names: Sequence[str], colors: Sequence[str],
               clustering_features: Sequence[str], total: int, currency: str | None = None) -> Figure:
    """Box plots of each feature by segment, in original units (from `box_stats`: every customer)."""
    features = list(stats)
    cols = min(3, max(1, len(features)))
    rows = -(-len(features) // cols)
    fig = subplots(rows=rows, cols=cols, vertical_spacing=0.12 / rows ** 0.5, horizontal_spacing=0.07,
                   subplot_titles=[feature_title(f) + (" *" if f in clustering_features else "")
                                        for f in features])
    for i, feature in enumerate(features):
        r, c = i // cols + 1, i % cols + 1
        st = stats[feature]
        for row in st.itertuples():
            s = int(row.segment)
            if row.count == 0:
                continue
            fig.add_trace(trace("box",
                x=[label(names[s])], q1=[row.q1], median=[row.median], q3=[row.q3], lowerfence=[row.lowerfence],
                upperfence=[row.upperfence], mean=[row.mean], name=label(names[s]), legendgroup=f"s{s}",
                showlegend=i == 0, marker={"color": colors[s]}, line={"color": colors[s]},
                fillcolor=_tint(colors[s]), boxpoints=False,
                hovertemplate=None,
            ), row=r, col=c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
        fig.update_yaxes(**_money_axis(feature, currency), row=r, col=c)
        same = _constant(st)
        if same is not None:  # every customer has the same value: say so instead of an empty -1..1 axis
            unit = unit_of(feature)
            fig.update_yaxes(range=[same - 0.05, same + 1] if same == 0 else [same * 0.5, same * 1.5], row=r, col=c)
            shown = _shop_text(same, unit, currency) if unit in ("rate", "money") else f"{same:,.4g}"
            fig.add_annotation(text=f"{shown} for every<br>customer", showarrow=False, xref="x domain" if i == 0
                               else f"x{i + 1} domain", yref="y domain" if i == 0 else f"y{i + 1} domain",
                               x=0.5, y=0.55, font={"size": 12, "color": MUTED})
    fig.update_annotations(font={"size": 13})
    return _layout(fig, "Each feature by segment, in the shop's units",
                   f"{sample_note(total, total).capitalize()}; * = used for clustering.",
                   height=250 * rows + 170, margin={"l": 60, "r": 20, "t": 100, "b": 70})


def _constant(stats: pd.DataFrame) -> float | None:
    """The one value of a feature when every customer of every segment has it (else None)."""
    rows = stats[stats["count"] > 0]
    if not len(rows):
        return None
    values = rows[["lowerfence", "q1", "median", "q3", "upperfence", "mean"]].to_numpy(dtype=float)
    if np.all(values == values[0, 0]):
        return float(values[0, 0])
    return None


def _shop_text(value: float, unit: str, currency: str | None = None) -> str:
    """A value as text in the shop's units (for hover labels that mix units)."""
    if not np.isfinite(value):
        return "–"
    if unit == "money":
        return label(money(value, currency))
    if unit == "rate":
        return f"{value:.1%}"
    return f"{value:,.4g}"


def _tint(hex_color: str, alpha: float = 0.35) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def histogram(values: np.ndarray, bins: int = 40, clip_quantile: float | None = 0.99) -> dict:
    """Bin edges and counts of every value. Whole numbers over a short range get one bin per
    number. With `clip_quantile`, the range stops at that quantile (a long tail would squash
    everything else into one bar) and `beyond` counts the values cut off."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return {"edges": np.array([0.0, 1.0]), "counts": np.array([0]), "beyond": 0}
    lo = float(values.min())
    hi = float(np.quantile(values, clip_quantile)) if clip_quantile else float(values.max())
    if hi <= lo:
        hi = float(values.max())
    whole = bool(np.all(values == np.round(values)))
    if whole and hi - lo <= 60:
        first, n_bins = lo - 0.5, int(round(hi - lo)) + 1
    else:
        first, n_bins = lo, bins
    last = first + n_bins if whole and hi - lo <= 60 else (hi if hi > lo else lo + 1.0)
    # Equal bins given as a count and a range: numpy bins in one pass (edges as an array: a sort).
    counts, edges = np.histogram(values, bins=n_bins, range=(first, last))
    return {"edges": edges, "counts": counts, "beyond": int((values > edges[-1]).sum())}


def distributions_figure(before: dict[str, dict], after: dict[str, dict], scale: str, total: int,
                         ticks: Ticks | None = None, currency: str | None = None) -> Figure:
    """Histograms of each clustering feature before (original units) and after the transform;
    `ticks` label the transformed axes in the shop's units."""
    features = list(before)
    n = len(features)
    ticks = ticks or {}
    titles = [feature_title(f) for f in features] + [shop_axis_title(f, scale) if f in ticks
                                                     else scaled_title(f, scale) for f in features]
    fig = subplots(rows=2, cols=n, subplot_titles=titles, vertical_spacing=0.2, horizontal_spacing=0.06)
    for row, hists, color in ((1, before, OKABE_ITO[4]), (2, after, OKABE_ITO[0])):
        for j, f in enumerate(features):
            h = hists[f]
            edges = np.asarray(h["edges"], float)
            where = (f"around {hover_number('x', unit_of(f), currency)}: " if row == 1
                     else ("" if f in ticks else "around %{x:,.4~g}: "))
            fig.add_trace(trace("bar", x=(edges[:-1] + edges[1:]) / 2, y=np.asarray(h["counts"]), width=np.diff(edges),
                                       marker={"color": color, "line": {"width": 0.5, "color": "white"}},
                                       showlegend=False, name="before" if row == 1 else "after",
                                       hovertemplate=where + "%{y:,} customers<extra></extra>"),
                          row=row, col=j + 1)
            if row == 2 and f in ticks:  # (fewer ticks side by side: they stay level at 800 px)
                thinned = axis_ticks(ticks[f][0], ticks[f][0], ticks[f][1], most=5 if n >= 3 else 7)
                fig.update_xaxes(**_tick_settings(thinned), row=2, col=j + 1)
            else:
                fig.update_xaxes(**_money_axis(f, currency), row=1, col=j + 1)
    fig.update_layout(bargap=0)
    fig.update_annotations(font={"size": 12})
    fig.update_yaxes(title="customers", col=1)
    cut = beyond_note(before)
    subtitle = "Top: the shop's units" + (" (to the 99th percentile)" if cut else "") + ". Bottom: as K-means sees them."
    return _layout(fig, "Distribution of the features, before and after the transform", subtitle,
                   height=560, margin={"l": 70, "r": 20, "t": 110, "b": 40})


def _money_axis(feature: str, currency: str | None) -> dict:
    """tickprefix/ticksuffix with the currency for a money feature's axis (shop's units)."""
    unit = unit_of(feature)
    if unit == "rate":
        return {"tickformat": ".0%"}
    if unit != "money" or not currency:
        return {}
    before, after = prefix_suffix(currency)
    return {"tickprefix": label(before), "ticksuffix": label(after), "tickformat": ",~g"}


def beyond_note(before: dict[str, dict]) -> str:
    """What the histograms of the shop's units leave out: '' or 'Top axes stop at the 99th percentile; ...'."""
    cut = [f"{feature_title(f)}: {h['beyond']:,}" for f, h in before.items() if h["beyond"]]
    if not cut:
        return ""
    return "The top axes stop at the 99th percentile; customers beyond it: " + ", ".join(cut) + "."


# by -> axis title, hover text, what the title says they are ranked by
_SELLER_UNITS = {"customers": ("customers who bought it", "%{x:,.0f} customers", "buying customers"),
                 "quantity": ("units ordered", "%{x:,.0f} units", "units"),
                 "revenue": ("revenue", "%{x:,.2f} revenue", "revenue")}


def best_sellers_figure(sellers: pd.DataFrame, color: str, by: str = "customers", top: int = 10,
                        segment_name: str | None = None, currency: str | None = None) -> Figure:
    """One segment's best-selling products (rows of best_sellers for that segment)."""
    rows = sellers[sellers["by"] == by].sort_values("rank").head(top)
    names = [str(n) if isinstance(n, str) and n else str(p) for n, p in zip(rows["product_name"], rows["product"])]
    if len(set(names)) < len(names):  # two products share a name: tell them apart by id
        names = [f"{n} ({p})" for n, p in zip(names, rows["product"])]
    shown = [label(_shorten(n)) for n in names]
    values = rows[by].astype(float).tolist()
    fig = Figure(trace("bar",
        x=values, y=shown, orientation="h", marker={"color": color}, customdata=[label(n) for n in names],
        text=[_shop_text(v, "money", currency) if by == "revenue" else f"{v:,.0f}" for v in values],
        textposition="outside", cliponaxis=False, name=by,
        hovertemplate="%{customdata}<br>" + (hover_number("x", "money", currency) + " revenue" if by == "revenue"
                                             else _SELLER_UNITS[by][1]) + "<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", showgrid=False, automargin=True)
    fig.update_xaxes(title=_SELLER_UNITS[by][0], rangemode="tozero",
                     range=[0, max(values) * 1.18] if values else None)
    # The segment's name on lines of its own: these figures stand two or three abreast, and a long
    # name on the title's line ran past the figure's edge (measured at 1400 and 1920 px).
    lines = [f"Best sellers by {_SELLER_UNITS[by][2]}"] + (
        [label(part) for part in textwrap.wrap(str(segment_name), 40)] if segment_name else [])
    fig = _layout(fig, "<br>".join(lines), None, height=max(200, 24 * len(rows) + 102 + 18 * len(lines)),
                  margin={"l": 10, "r": 30, "t": 46 + 18 * len(lines), "b": 45})
    # The title sits just above the bars, below the toolbar that plotly shows top right.
    fig.update_layout(title={"font": {"size": 13}, "yref": "paper", "y": 1, "yanchor": "bottom", "pad": {"b": 10}})
    return fig


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tracking_figure(tracking: dict, holdout_label: str) -> Figure:
    """The papers' tracking plot: cumulative repeat orders, actual vs the model's expectation, week by week.

    Days are counted from the holdout's first day (day 0): left of it the model is checked
    in-sample, right of it it forecasts."""
    days = [float(d) for d in tracking["week_end_day"]]
    fig = Figure()
    fig.add_trace(trace("scatter", x=days, y=tracking["actual"], mode="lines", name="actual",
                                   line={"color": OKABE_ITO[0], "width": 2},
                                   hovertemplate="day %{x:.0f}<br>actual %{y:,.0f}<extra></extra>"))
    fig.add_trace(trace("scatter", x=days, y=tracking["predicted"], mode="lines", name="predicted",
                                   line={"color": OKABE_ITO[5], "width": 2, "dash": "dash"},
                                   hovertemplate="day %{x:.0f}<br>predicted %{y:,.0f}<extra></extra>"))
    fig.add_vline(x=float(tracking.get("holdout_starts_at_day", 0.0)), line={"color": "#888", "dash": "dot"})
    fig.add_annotation(x=0, yref="paper", y=1.0, text=f"holdout starts ({holdout_label})", showarrow=False,
                       xanchor="left", font={"size": 12, "color": "#555"})
    fig.update_xaxes(title="days from the start of the holdout (weeks end every 7 days)")
    fig.update_yaxes(title="cumulative repeat orders", rangemode="tozero")
    return _layout(fig, "Tracking: cumulative repeat orders, predicted vs actual",
                   "Before day 0 the model is checked against the data it was fitted on; after it, it forecasts.")
