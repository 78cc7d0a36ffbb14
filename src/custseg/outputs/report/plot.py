"""Figures as plain plotly.js JSON: a trace is a dict, a figure is its traces and its layout.

The report's figures were built with plotly.py's object model (`plotly.graph_objects`), which
checks and copies every property as it is set: 0.3-0.45 s for the report's 14 figures at every
size, against ~20 ms to write the same dicts (measured on the 70k-line sample; custseg's own
arithmetic is a few milliseconds of it). plotly.js reads the same JSON either way, so the figures
are written as the JSON plotly.py would have sent: `Figure` keeps the few operations the
builders use (`add_trace` into a grid cell, `update_layout` merging nested dicts, `update_xaxes`
and `update_yaxes` on all, one row/column or one cell, `add_annotation`, `add_vline`) with
plotly.py's meaning, `subplots` lays out a grid as `make_subplots` does (domains, anchors, titles,
shared y axes), and `to_json` writes numeric arrays as plotly.js typed arrays (base64, the
smallest integer type that holds them), with plotly.py's default template ("plotly") in the layout.
tests/test_report_figures.py validates every figure with plotly.py itself.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import math
import os
from decimal import Decimal
from typing import Any

import numpy as np

# ColorBrewer's BrBG (11 classes) and Blues (9), as plotly.py expands its named scales.
_BRBG = ((84, 48, 5), (140, 81, 10), (191, 129, 45), (223, 194, 125), (246, 232, 195), (245, 245, 245),
         (199, 234, 229), (128, 205, 193), (53, 151, 143), (1, 102, 94), (0, 60, 48))
_BLUES = ((247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214), (66, 146, 198),
          (33, 113, 181), (8, 81, 156), (8, 48, 107))
COLORSCALES = {"BrBG": _BRBG, "Blues": _BLUES}


def colorscale(name: str) -> list[list]:
    """A named scale as plotly.js's [[position, colour], ...]."""
    colors = COLORSCALES[name]
    return [[i / (len(colors) - 1), f"rgb({r},{g},{b})"] for i, (r, g, b) in enumerate(colors)]


def trace(kind: str, **props) -> dict:
    """A trace of plotly.js type `kind` ("scatter", "bar", ...); properties given as None are left out."""
    out = {key: value for key, value in props.items() if value is not None}
    out["type"] = kind
    return out


def merge(into: dict, update: dict) -> dict:
    """plotly.py's update: nested dicts are merged key by key, None removes, anything else replaces."""
    for key, value in update.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = _copy(value)
    return into


def _copy(value):
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def _axis_props(props: dict) -> dict:
    if isinstance(props.get("title"), str):  # plotly.py reads title="..." as {"text": "..."}
        props = {**props, "title": {"text": props["title"]}}
    return props


class Figure:
    """A figure's traces and layout as plotly.js JSON (see the module's docstring)."""

    def __init__(self, data: dict | None = None):
        self.data: list[dict] = [data] if data is not None else []
        self.layout: dict[str, Any] = {}
        self.grid: tuple[int, int] | None = None  # rows, columns when laid out by `subplots`

    def cell(self, row: int, col: int) -> int:
        """The subplot number of a grid cell, 1 for the top left, counted along the rows."""
        return (row - 1) * self.grid[1] + col

    def add_trace(self, data: dict, row: int | None = None, col: int | None = None) -> Figure:
        if row is not None:
            n = self.cell(row, col)
            data = {**data, "xaxis": "x" if n == 1 else f"x{n}", "yaxis": "y" if n == 1 else f"y{n}"}
        self.data.append(data)
        return self

    def update_layout(self, **props) -> Figure:
        merge(self.layout, props)
        return self

    def _axes(self, letter: str, row: int | None, col: int | None) -> list[str]:
        if self.grid is None:
            return [f"{letter}axis"]
        rows, cols = self.grid
        cells = [self.cell(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)
                 if (row is None or r == row) and (col is None or c == col)]
        return [f"{letter}axis" if n == 1 else f"{letter}axis{n}" for n in cells]

    def update_xaxes(self, row: int | None = None, col: int | None = None, **props) -> Figure:
        for name in self._axes("x", row, col):
            merge(self.layout.setdefault(name, {}), _axis_props(props))
        return self

    def update_yaxes(self, row: int | None = None, col: int | None = None, **props) -> Figure:
        for name in self._axes("y", row, col):
            merge(self.layout.setdefault(name, {}), _axis_props(props))
        return self

    def add_annotation(self, **props) -> Figure:
        self.layout.setdefault("annotations", []).append({k: _copy(v) for k, v in props.items() if v is not None})
        return self

    def update_annotations(self, **props) -> Figure:
        for annotation in self.layout.get("annotations", []):
            merge(annotation, props)
        return self

    def add_vline(self, x: float, line: dict, annotation_text: str | None = None) -> Figure:
        """A vertical line across the plot at x, the text centred above it (plotly.py's add_vline with
        annotation_position="top", on a figure without a grid)."""
        if self.grid is not None:
            raise ValueError("add_vline draws on a figure without subplots")
        self.layout.setdefault("shapes", []).append(
            {"line": dict(line), "type": "line", "x0": x, "x1": x, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain"})
        if annotation_text is not None:
            self.add_annotation(showarrow=False, text=annotation_text, x=x, xanchor="center", xref="x", y=1,
                                yanchor="bottom", yref="y domain")
        return self

    def to_dict(self) -> dict:
        """The figure as plotly.js reads it (numeric arrays as numpy arrays; `to_json` encodes them)."""
        return {"data": self.data, "layout": {**self.layout, "template": copy.deepcopy(default_template())}}

    def to_json(self) -> str:
        # (the shared template as it is: encoding builds new objects, it never changes the input)
        return to_json({"data": self.data, "layout": {**self.layout, "template": default_template()}})

    def to_plotly(self):
        """The figure as a plotly.py Figure, to `.show()` or restyle in a notebook (plotly.py checks
        every property on the way: it raises on anything plotly.js does not have)."""
        import plotly.graph_objects as go  # plotly.py: only when asked for

        return go.Figure(self.to_dict())


def subplots(rows: int, cols: int, horizontal_spacing: float | None = None, vertical_spacing: float | None = None,
             subplot_titles: list[str] | None = None, shared_yaxes: bool = False) -> Figure:
    """An empty figure laid out as a grid of rows x cols plots, as plotly.py's make_subplots: each
    plot's x and y axes anchored to each other over its share of the page (row 1 at the top), the
    titles centred above the plots, and with shared_yaxes each row's y axes matched to its first."""
    fig = Figure()
    fig.grid = (rows, cols)
    horizontal_spacing = 0.2 / cols if horizontal_spacing is None else horizontal_spacing  # (plotly's defaults)
    if vertical_spacing is None:
        vertical_spacing = (0.5 if subplot_titles else 0.3) / rows
    width = (1.0 - horizontal_spacing * (cols - 1)) / cols
    height = (1.0 - vertical_spacing * (rows - 1)) / rows
    # (summed as plotly.py sums them, so the domains are the same to the last bit)
    x_domains = [[x, x + width] for x in (sum([width] * c) + c * horizontal_spacing for c in range(cols))]
    y_domains = [[min(1.0, max(0.0, v)) for v in (start, start + height)]
                 for start in (sum([height] * r) + r * vertical_spacing for r in range(rows))]
    for r in range(1, rows + 1):
        y_domain = y_domains[rows - r]  # row 1 at the top
        for c in range(1, cols + 1):
            n = fig.cell(r, c)
            x_name, y_name = ("x", "y") if n == 1 else (f"x{n}", f"y{n}")
            fig.layout[f"xaxis{'' if n == 1 else n}"] = {"anchor": y_name, "domain": list(x_domains[c - 1])}
            y_axis = {"anchor": x_name, "domain": list(y_domain)}
            if shared_yaxes and c > 1:
                first = fig.cell(r, 1)
                y_axis.update(matches="y" if first == 1 else f"y{first}", showticklabels=False)
            fig.layout[f"yaxis{'' if n == 1 else n}"] = y_axis
    for i, text in enumerate(subplot_titles or []):
        if i >= rows * cols:
            break
        r, c = divmod(i, cols)
        x_domain, y_domain = x_domains[c], y_domains[rows - 1 - r]
        fig.add_annotation(font={"size": 16}, showarrow=False, text=text, x=(x_domain[0] + x_domain[1]) / 2,
                           xanchor="center", xref="paper", y=y_domain[1], yanchor="bottom", yref="paper")
    return fig


@functools.cache
def default_template() -> dict:
    """plotly.py's default template ("plotly"), read from its package data as plotly.py embeds it."""
    import importlib.util  # (finding plotly's files imports nothing of it)

    spec = importlib.util.find_spec("plotly")
    path = os.path.join(os.path.dirname(spec.origin), "package_data", "templates", "plotly.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# plotly.js's typed arrays: numpy dtype -> its short name
_TYPED = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
          "float32": "f4", "float64": "f8"}
_NOT_TYPED = frozenset({"geojson", "layer", "layers", "range"})  # properties plotly.js reads as plain lists


def typed_array(v: np.ndarray):
    """A numeric array as plotly.js's typed array spec ({"dtype", "bdata"[, "shape"]}), 64-bit integers
    narrowed to the smallest type that holds them; other arrays (text, objects, empty) as lists."""
    if v.dtype.kind == "M":  # datetime64: ISO text as plotly.py writes it (tolist() would give nanoseconds)
        return np.datetime_as_string(v).tolist()
    if v.size == 0 or v.dtype.kind not in "iuf":
        return v.tolist()
    if v.dtype.kind in "iu" and v.dtype.itemsize == 8:
        lo, hi = int(v.min()), int(v.max())
        for kind in ((np.uint8, np.uint16, np.uint32) if v.dtype.kind == "u" else (np.int8, np.int16, np.int32)):
            info = np.iinfo(kind)
            if info.min <= lo and hi <= info.max:
                v = v.astype(kind)
                break
        else:
            return v.tolist()
    name = _TYPED.get(str(v.dtype))
    if name is None:
        return v.tolist()
    spec = {"dtype": name, "bdata": base64.b64encode(np.ascontiguousarray(v)).decode("ascii")}
    if v.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in v.shape)
    return spec


def _encode(value, key: str | None = None):
    if isinstance(value, dict):
        return {k: _encode(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, np.ndarray):
        return _encode(value.tolist() if key in _NOT_TYPED else typed_array(value))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # (as plotly.py writes them: JSON has no NaN)
    return value


def _other(value):
    """JSON for what json does not know: dates and times as ISO text, decimals as numbers (as plotly.py)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not a plotly.js value")


def to_json(figure: dict) -> str:
    """A figure dict as JSON text, numeric numpy arrays as typed arrays, non-finite numbers as null."""
    return json.dumps(_encode(figure), separators=(",", ":"), allow_nan=False, default=_other)
