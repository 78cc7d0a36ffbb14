"""outputs/report/plot.py: figures written as plotly.js JSON without plotly.py's object model, checked
against plotly.py itself (a second implementation): the same grid layout as make_subplots, the same
typed arrays as plotly.py's encoder, the same meaning of the update operations."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from custseg.outputs.report import plot

go = pytest.importorskip("plotly.graph_objects")
make_subplots = pytest.importorskip("plotly.subplots").make_subplots


@pytest.mark.parametrize("rows, cols, kwargs", [
    (1, 1, {}),
    (1, 3, {"horizontal_spacing": 0.08, "subplot_titles": ["a", "b<br>c", "d"]}),
    (1, 2, {"horizontal_spacing": 0.06, "shared_yaxes": True, "subplot_titles": ["x", "y"]}),
    (2, 2, {"horizontal_spacing": 0.06, "shared_yaxes": True}),
    (4, 4, {"horizontal_spacing": 0.04, "vertical_spacing": 0.05}),
    (3, 2, {"subplot_titles": ["a", "b"]}),
    (3, 3, {"vertical_spacing": 0.12 / 3 ** 0.5, "horizontal_spacing": 0.07, "subplot_titles": list("abcdefg")}),
    (2, 5, {"vertical_spacing": 0.2, "horizontal_spacing": 0.06, "subplot_titles": list("abcdefghij")}),
])
def test_subplots_lays_out_the_grid_exactly_as_make_subplots(rows, cols, kwargs):
    ours = plot.subplots(rows, cols, **kwargs).to_dict()["layout"]
    theirs = make_subplots(rows=rows, cols=cols, **kwargs).to_plotly_json()["layout"]
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)  # every float to the last bit


def test_traces_in_cells_and_axis_updates_mean_what_they_mean_in_plotly():
    ours, theirs = plot.subplots(2, 3, horizontal_spacing=0.05, subplot_titles=["a", "b"]), make_subplots(
        rows=2, cols=3, horizontal_spacing=0.05, subplot_titles=["a", "b"])
    for fig, scatter in ((ours, lambda **p: plot.trace("scatter", **p)), (theirs, lambda **p: go.Scatter(**p))):
        fig.add_trace(scatter(x=[1, 2], y=[3, 4], name="one"), row=2, col=3)
        fig.add_trace(scatter(x=[1], y=[2], name="two", text=None), row=1, col=1)
        fig.update_xaxes(title="k", dtick=2, row=2, col=3)
        fig.update_yaxes(title="customers", col=1)
        fig.update_xaxes(gridcolor="#eeeeee")
        fig.update_xaxes(range=None, row=1, col=2)
        fig.update_layout(title={"text": "t", "pad": {"l": 8}}, height=300)
        fig.update_layout(title={"pad": {"b": 10}, "font": {"size": 13}})
        fig.add_annotation(text="note", x=0.5, y=0.5, showarrow=False)
        fig.update_annotations(font={"size": 12})
    theirs_json = json.loads(theirs.to_json())
    ours_json = json.loads(ours.to_json())
    assert ours_json == theirs_json


def test_a_plain_figure_gets_its_axes_on_first_update_as_in_plotly():
    ours, theirs = plot.Figure(plot.trace("bar", x=[1.5], y=["a"], orientation="h")), go.Figure(
        go.Bar(x=[1.5], y=["a"], orientation="h"))
    for fig in (ours, theirs):
        fig.update_yaxes(autorange="reversed", showgrid=False)
        fig.update_xaxes(title="units", range=[0, 2])
    ours.add_vline(x=0.25, line={"color": "#111111", "dash": "dash"}, annotation_text="mean")
    theirs.add_vline(x=0.25, line={"color": "#111111", "dash": "dash"}, annotation_text="mean",
                     annotation_position="top")
    ours.add_vline(x=1.0, line={"color": "#888"})
    theirs.add_vline(x=1.0, line={"color": "#888"})
    assert json.loads(ours.to_json()) == json.loads(theirs.to_json())


def _decode(spec: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))


def test_numeric_arrays_are_typed_arrays_in_the_smallest_integer_type_that_holds_them():
    cases = {
        "i1": np.array([-128, 0, 127]), "i2": np.array([1, 300]), "i4": np.array([-70_000, 5]),
        "u1": np.array([0, 255], dtype=np.uint64), "u2": np.array([0, 65_535], dtype=np.uint64),
        "f8": np.array([0.5, -1.25, 1e300]), "f4": np.array([0.5], dtype=np.float32),
    }
    for dtype, values in cases.items():
        spec = plot.typed_array(values)
        assert spec["dtype"] == dtype and "shape" not in spec
        np.testing.assert_array_equal(_decode(spec), values)
    too_big = plot.typed_array(np.array([0, 2 ** 40]))  # plotly.js has no 64-bit integers: a plain list
    assert too_big == [0, 2 ** 40]
    matrix = plot.typed_array(np.arange(6, dtype=float).reshape(2, 3)[:, ::-1])  # not contiguous
    assert matrix["shape"] == "2, 3"
    np.testing.assert_array_equal(_decode(matrix).reshape(2, 3), [[2, 1, 0], [5, 4, 3]])
    assert plot.typed_array(np.array(["a", "b"])) == ["a", "b"] and plot.typed_array(np.array([])) == []


def test_json_matches_plotly_encoder_for_every_kind_of_value():
    values = {"x": np.array([1, 2, 3]), "y": np.array([0.5, np.nan]), "text": np.array(["<a>", "b"], dtype=object),
              "customdata": np.array([[1.0, 2.0], [3.0, 4.0]]), "marker": {"color": ["#000000", "#ffffff"],
                                                                          "size": np.float64(4.0)}}
    ours = plot.Figure(plot.trace("scatter", **values))
    ours.update_xaxes(range=np.array([0.0, 1.0]), tickvals=[np.float64(0.5)])
    ours.add_annotation(x=np.float64(np.nan), y=1, text="nan is null")
    theirs = go.Figure(go.Scatter(**values))
    theirs.update_xaxes(range=np.array([0.0, 1.0]), tickvals=[np.float64(0.5)])
    theirs.add_annotation(x=np.float64(np.nan), y=1, text="nan is null")
    assert json.loads(ours.to_json()) == json.loads(theirs.to_json())


def test_named_colorscales_are_expanded_as_plotly_does():
    for name in plot.COLORSCALES:
        theirs = go.Heatmap(z=[[1]], colorscale=name).to_plotly_json()["colorscale"]
        assert plot.colorscale(name) == [list(stop) for stop in theirs]


def test_dates_and_decimals_are_written_as_plotly_writes_them():
    import datetime
    from decimal import Decimal

    days = [datetime.date(2024, 1, 31), datetime.datetime(2024, 2, 1, 12, 30)]
    for x in (days, np.array(["2024-01-31", "2024-02-01"], dtype="datetime64[D]"),
              np.array(["2024-01-31T12:30", "2024-02-01"], dtype="datetime64[ns]")):
        ours = plot.Figure(plot.trace("scatter", x=x, y=[Decimal("1.5"), 2]))
        theirs = go.Figure(go.Scatter(x=x, y=[Decimal("1.5"), 2]))
        assert json.loads(ours.to_json())["data"] == json.loads(theirs.to_json())["data"]
