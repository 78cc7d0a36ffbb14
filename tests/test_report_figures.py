"""Each figure builder on small, hand-made data: the figure carries exactly the numbers it should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg.outputs.report import figures


class _Checked:
    """`figures`, each *_figure builder's result checked by plotly.py (every property and value is one
    plotly accepts: it raises otherwise) and returned as a plotly Figure, whose properties the tests read."""

    def __getattr__(self, name):
        attr = getattr(figures, name)
        if not name.endswith("_figure"):
            return attr

        def build(*args, **kwargs):
            return attr(*args, **kwargs).to_plotly()
        return build


F = _Checked()


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


# ---------------------------------------------------------------------------- colours and text


def test_segment_colors_are_stable_distinct_and_start_with_okabe_ito():
    assert F.segment_colors(3) == F.segment_colors(10)[:3]
    assert F.segment_colors(8) == list(F.OKABE_ITO)
    colors = F.segment_colors(len(F.PALETTE))
    assert len(set(c.lower() for c in colors)) == len(colors)
    assert F.segment_colors(len(F.PALETTE) + 2)[-2:] == colors[:2]  # beyond the palette: cycles, never fails


def test_label_escapes_markup_plotly_would_read():
    assert F.label("</script><b>x</b> & y") == "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt; &amp; y"
    assert F.label('"quoted"') == '"quoted"'
    assert F.label(12) == "12"


def test_sample_note_says_how_many_points_are_drawn():
    assert F.sample_note(812, 812) == "all 812 customers"
    assert F.sample_note(5000, 2_400_000) == "a uniform sample of 5,000 of 2,400,000 customers"


# ---------------------------------------------------------------------------- choosing k

K_SELECTION = pd.DataFrame({
    "k": [1, 2, 3, 4, 5, 6],
    "inertia": [1000.0, 500.0, 200.0, 150.0, 120.0, 100.0],
    "silhouette": [np.nan, 0.41, 0.58, 0.52, 0.47, 0.44],
    "calinski_harabasz": [np.nan, 800.0, 1500.0, 1400.0, 1300.0, 1250.0],
    "davies_bouldin": [np.nan, 0.9, 0.6, 0.7, 0.75, 0.8],
})


def test_elbow_marks_the_chosen_k_on_the_curve():
    fig = F.elbow_figure(K_SELECTION, 3)
    curve, marker = fig.data[0], fig.data[1]
    assert list(curve.x) == [1, 2, 3, 4, 5, 6]
    assert list(curve.y) == [1000.0, 500.0, 200.0, 150.0, 120.0, 100.0]
    assert list(marker.x) == [3] and list(marker.y) == [200.0]
    assert "k = 3" in marker.name
    assert any(a.x == 3 and "k = 3" in a.text for a in fig.layout.annotations)


def test_elbow_without_the_chosen_k_in_the_sweep_has_no_marker():
    fig = F.elbow_figure(K_SELECTION, 9)
    assert len(fig.data) == 1


def test_k_scores_has_the_three_indices_from_k2_with_the_chosen_k_marked():
    fig = F.k_scores_figure(K_SELECTION, 4)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in lines] == ["silhouette", "calinski_harabasz", "davies_bouldin"]
    for t in lines:
        assert list(t.x) == [2, 3, 4, 5, 6]
    assert list(lines[0].y) == [0.41, 0.58, 0.52, 0.47, 0.44]
    assert [list(m.x) for m in markers] == [[4], [4], [4]]
    assert [m.y[0] for m in markers] == [0.52, 1400.0, 0.7]
    # each index sits in its own subplot
    assert len({t.xaxis for t in lines}) == 3


def test_silhouette_plot_draws_every_value_sorted_within_its_segment():
    values = np.array([0.5, 0.1, 0.9, -0.2, 0.3, 0.7])
    labels = np.array([0, 0, 1, 1, 1, 0])
    fig = F.silhouette_figure(values, labels, ["A", "B"], ["#000000", "#ffffff"], total=600)
    a, b = fig.data
    assert list(a.x[1:-1]) == [0.7, 0.5, 0.1]          # segment 0, descending
    assert list(b.x[1:-1]) == [0.9, 0.3, -0.2]
    assert a.x[0] == 0 and a.x[-1] == 0                 # closed shape from the zero line
    assert a.fillcolor == "#000000" and b.fillcolor == "#ffffff"
    assert fig.layout.shapes[0].x0 == pytest.approx(values.mean())
    assert "6 of 600" in fig.layout.title.subtitle.text


# ---------------------------------------------------------------------------- segments


PROFILES = pd.DataFrame({
    "segment": [0, 1, 2],
    "segment_name": ["Low <one>", "Middle", "High & mighty"],
    "customers": [600, 300, 100],
    "customer_share": [0.6, 0.3, 0.1],
    "revenue_share": [0.1, 0.3, 0.6],
})


def test_sizes_counts_per_segment_equal_the_profile_sizes():
    colors = F.segment_colors(3)
    fig = F.sizes_figure(PROFILES, colors)
    customers = next(t for t in fig.data if t.name == "customers")
    assert list(customers.x) == [600, 300, 100]
    assert list(customers.y) == ["Low &lt;one&gt;", "Middle", "High &amp; mighty"]
    assert list(customers.marker.color) == colors
    shares = {t.name: list(t.x) for t in fig.data if t.name != "customers"}
    assert shares == {"share of customers (hatched)": [0.6, 0.3, 0.1], "share of revenue (solid)": [0.1, 0.3, 0.6]}


def test_sizes_labels_a_tiny_negative_revenue_share_as_zero_and_a_tiny_share_as_below_one_percent():
    # a segment of returners: -0.02 of 54,294,250.29 of revenue (the 1M benchmark's segment 1), and
    # 4 customers of 1,000 (0.4%)
    profiles = PROFILES.assign(customers=[600, 396, 4], customer_share=[0.6, 0.396, 0.004],
                               revenue_share=[-0.02 / 54_294_250.29, 0.3, 0.7 + 0.02 / 54_294_250.29])
    fig = F.sizes_figure(profiles, F.segment_colors(3))
    text = {t.name: list(t.text) for t in fig.data if t.name != "customers"}
    assert text == {"share of customers (hatched)": ["60%", "40%", "<1%"],
                    "share of revenue (solid)": ["0%", "30%", "70%"]}
    hover = {t.name: list(t.customdata) for t in fig.data if t.name != "customers"}
    assert hover == {"share of customers (hatched)": ["60.0%", "39.6%", "0.4%"],
                     "share of revenue (solid)": ["0.0%", "30.0%", "70.0%"]}


def test_share_text_rounds_without_a_negative_zero():
    from custseg.profiles.describe import number_text, share_text

    assert [share_text(v) for v in (0.46, 0.004, 0.0, -3.7e-10, -0.004, -0.03, 1.0)] == \
        ["46%", "<1%", "0%", "0%", "0%", "-3%", "100%"]
    assert [share_text(v, 1) for v in (0.0004, 0.004, -0.0004, -0.004)] == ["<0.1%", "0.4%", "0.0%", "-0.4%"]
    assert share_text(None) == share_text(float("nan")) == "–"
    assert [number_text(v) for v in (-0.001, -0.004, -0.4, -12.3)] == ["0.00", "0.00", "-0.40", "-12.3"]
    assert number_text(-0.4, 0) == "0" and number_text(-0.6, 0) == "-1"


def test_sizes_without_revenue_has_only_the_counts():
    fig = F.sizes_figure(PROFILES.drop(columns="revenue_share"), F.segment_colors(3))
    assert [t.name for t in fig.data] == ["customers"]


def _blobs(n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0] * n_features, [5.0] * n_features, [0.0] * (n_features - 1) + [9.0]])
    labels = np.repeat([0, 1, 2], [40, 30, 20])
    Z = centers[labels] + rng.normal(0, 0.5, (len(labels), n_features))
    X = np.expm1(np.abs(Z))
    return Z, X, labels, centers


def test_scatter_3d_with_three_features_colours_by_segment_and_marks_centres():
    Z, X, labels, centers = _blobs(3)
    colors = F.segment_colors(3)
    fig = F.segments_scatter_figure(Z, X, labels, ["a", "b", "c"], centers, ["S0", "S1", "S2"], colors, "log",
                                    total=1000, customer_ids=[f"id{i}" for i in range(len(labels))])
    points, centre = fig.data[:3], fig.data[3]
    assert all(t.type == "scatter3d" for t in fig.data)
    assert [len(t.x) for t in points] == [40, 30, 20]
    for s, t in enumerate(points):
        np.testing.assert_array_equal(np.column_stack([t.x, t.y, t.z]), Z[labels == s])
        np.testing.assert_array_equal(np.asarray(t.customdata), X[labels == s])  # hover: original units
        assert t.marker.color == colors[s]
    np.testing.assert_array_equal(np.column_stack([centre.x, centre.y, centre.z]), centers)
    assert centre.marker.symbol == "diamond"
    assert "90 of 1,000" in fig.layout.title.subtitle.text
    assert "id0" in points[0].text


def test_scatter_with_more_features_shows_the_first_two_principal_components():
    from sklearn.decomposition import PCA

    Z, X, labels, centers = _blobs(5)
    fig = F.segments_scatter_figure(Z, X, labels, list("abcde"), centers, ["S0", "S1", "S2"],
                                    F.segment_colors(3), "log", total=90)
    assert all(t.type == "scatter" for t in fig.data)
    expected = PCA(n_components=2).fit(Z)
    projected = expected.transform(Z)
    got = np.zeros_like(projected)
    for s, t in enumerate(fig.data[:3]):
        got[labels == s] = np.column_stack([t.x, t.y])
    for j in range(2):  # principal axes are defined up to their sign
        sign = np.sign(np.dot(got[:, j], projected[:, j]))
        np.testing.assert_allclose(got[:, j], sign * projected[:, j], atol=1e-9)
    assert f"{expected.explained_variance_ratio_[0]:.0%}" in fig.layout.xaxis.title.text


def test_scatter_with_two_features_plots_them_directly():
    Z, X, labels, centers = _blobs(2)
    fig = F.segments_scatter_figure(Z, X, labels, ["a", "b"], centers, ["S0", "S1", "S2"], F.segment_colors(3),
                                    "log", total=90)
    np.testing.assert_array_equal(np.column_stack([fig.data[1].x, fig.data[1].y]), Z[labels == 1])
    assert fig.layout.xaxis.title.text == "log(1 + a)"


def test_scatter_matrix_has_every_pair_once_with_each_segment():
    Z, _, labels, _ = _blobs(4)
    fig = F.scatter_matrix_figure(Z, labels, list("abcd"), ["S0", "S1", "S2"], F.segment_colors(3), "none",
                                  total=90)
    assert len(fig.data) == 6 * 3  # 4 features: 6 pairs, 3 segments each
    pairs = set()
    for t in fig.data:
        s = ["S0", "S1", "S2"].index(t.name)
        x, y = np.asarray(t.x), np.asarray(t.y)
        columns = [next(j for j in range(4) if np.array_equal(Z[labels == s, j], v)) for v in (x, y)]
        pairs.add(tuple(columns))
    assert pairs == {(j, i) for i in range(4) for j in range(i)}
    assert sum(1 for t in fig.data if t.showlegend) == 3


def test_standardized_means_match_a_hand_computation():
    values = np.array([0.0, 1.0, 3.0, 7.0])  # log1p: 0, ln2, ln4, ln8
    labels = np.array([0, 0, 1, 1])
    logged = np.log1p(values)
    mu, sd = logged.mean(), logged.std()
    z = F.standardized_means({"x": values}, labels, 2)
    assert z.loc[0, "x"] == pytest.approx((np.log(2) / 2 - mu) / sd)
    assert z.loc[1, "x"] == pytest.approx(((np.log(4) + np.log(8)) / 2 - mu) / sd)


def test_profile_heatmap_shows_the_z_values_with_zero_at_the_centre_colour():
    z = pd.DataFrame({"total_spending": [-1.0, 0.5], "order_count": [2.0, -0.2]})
    fig = F.profile_heatmap_figure(z, ["A", "B<"], ["total_spending"])
    heat = fig.data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), [[-1.0, 2.0], [0.5, -0.2]])
    assert heat.zmid == 0 and heat.zmin == -2.0 and heat.zmax == 2.0
    assert list(heat.y) == ["A", "B&lt;"]
    assert heat.x[0].endswith("*") and not heat.x[1].endswith("*")  # clustering features are marked


def test_box_stats_quartiles_and_tukey_whiskers_by_hand():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0, 10.0, 10.0])
    labels = np.array([0, 0, 0, 0, 0, 1, 1])
    stats = F.box_stats(values, labels, 3)
    first = stats.iloc[0]
    assert (first["q1"], first["median"], first["q3"]) == (2.0, 3.0, 4.0)
    assert first.lowerfence == 1.0 and first.upperfence == 4.0  # 100 is beyond q3 + 1.5 IQR = 7
    assert first["mean"] == pytest.approx(22.0) and first["count"] == 5
    assert stats.iloc[1].q1 == 10.0 and stats.iloc[1].upperfence == 10.0
    assert stats.iloc[2]["count"] == 0


@pytest.mark.parametrize("grouped", [False, True])
def test_box_stats_agree_with_numpy_percentiles_on_random_data(grouped):
    rng = np.random.default_rng(3)
    values, labels = rng.lognormal(3, 1, 5000), rng.integers(0, 5, 5000)
    labels[labels == 4] = 0  # segment 4 is empty
    stats = F.box_stats(values, labels, 5, F.SegmentGroups(labels, 5) if grouped else None)
    assert stats.loc[4, "count"] == 0
    for s in range(4):
        mine = values[labels == s]
        np.testing.assert_allclose(stats.loc[s, ["q1", "median", "q3"]].to_numpy(float),
                                   np.percentile(mine, [25, 50, 75]))
        q1, q3 = np.percentile(mine, [25, 75])
        inside = mine[(mine >= q1 - 1.5 * (q3 - q1)) & (mine <= q3 + 1.5 * (q3 - q1))]
        assert stats.loc[s, "upperfence"] == inside.max() and stats.loc[s, "lowerfence"] == inside.min()


def test_box_figure_draws_the_given_statistics_per_segment_and_feature():
    labels = np.array([0, 0, 1, 1, 1])
    stats = {"a": F.box_stats(np.array([1.0, 2, 3, 4, 5]), labels, 2),
             "b": F.box_stats(np.array([5.0, 4, 3, 2, 1]), labels, 2)}
    fig = F.box_figure(stats, ["S0", "S1"], F.segment_colors(2), ["a"], total=5)
    assert len(fig.data) == 4
    assert [t.q1[0] for t in fig.data] == [stats["a"].q1[0], stats["a"].q1[1], stats["b"].q1[0], stats["b"].q1[1]]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    assert fig.data[0].boxpoints is False


def test_histogram_counts_everyone_up_to_the_cut():
    values = np.concatenate([np.linspace(0.0, 10.0, 990), np.full(10, 1000.0)])
    h = F.histogram(values, bins=20, clip_quantile=0.99)
    assert h["counts"].sum() + h["beyond"] == len(values)
    assert h["beyond"] == 10 and len(h["edges"]) == 21
    whole = F.histogram(np.array([1, 1, 2, 5, 5, 5], float), clip_quantile=None)
    assert list(whole["edges"]) == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]  # one bin per whole number
    assert list(whole["counts"]) == [2, 1, 0, 0, 3]


def test_distributions_have_before_and_after_for_each_feature():
    before = {"a": F.histogram(np.arange(10.0)), "b": F.histogram(np.arange(5.0))}
    after = {"a": F.histogram(np.log1p(np.arange(10.0)), clip_quantile=None),
             "b": F.histogram(np.log1p(np.arange(5.0)), clip_quantile=None)}
    fig = F.distributions_figure(before, after, "log", total=10)
    assert [t.name for t in fig.data] == ["before", "before", "after", "after"]
    assert sum(fig.data[0].y) + before["a"]["beyond"] == 10
    assert sum(fig.data[2].y) == 10
    titles = [a.text for a in fig.layout.annotations]
    assert "log(1 + a)" in titles and "a" in titles


def test_best_sellers_in_rank_order_with_names_escaped():
    sellers = pd.DataFrame({
        "segment": [0] * 4, "by": ["quantity", "quantity", "quantity", "revenue"],
        "rank": [2, 1, 3, 1], "product": ["p2", "p1", "p3", "p1"],
        "product_name": ["<b>Shoes</b>", "Dresses", "Dresses", "Dresses"],
        "quantity": [50, 80, 10, 80], "revenue": [500.0, 400.0, 100.0, 400.0],
    })
    fig = F.best_sellers_figure(sellers, "#0072B2", by="quantity", segment_name="VIP")
    bar = fig.data[0]
    assert list(bar.x) == [80, 50, 10]
    # two products share the name "Dresses": they are told apart by id
    assert list(bar.y) == ["Dresses (p1)", "&lt;b&gt;Shoes&lt;/b&gt; (p2)", "Dresses (p3)"]
    by_revenue = F.best_sellers_figure(sellers, "#0072B2", by="revenue")
    assert list(by_revenue.data[0].x) == [400.0]


def test_scatter_with_one_feature_spreads_the_points_by_segment():
    Z = np.array([[0.0], [0.1], [2.0], [2.2]])
    labels = np.array([0, 0, 1, 1])
    fig = F.segments_scatter_figure(Z, np.expm1(Z), labels, ["a"], np.array([[0.05], [2.1]]), ["S0", "S1"],
                                    F.segment_colors(2), "log", total=4)
    first, second, centres = fig.data
    assert first.type == "scatter"
    assert np.all(np.abs(np.asarray(first.y) - 0) <= 0.3) and np.all(np.abs(np.asarray(second.y) - 1) <= 0.3)
    assert list(centres.y) == [0, 1]


# ---------------------------------------------------------------------------- axes in the shop's units


def test_nice_values_are_round_numbers_in_range_and_shares_for_rates():
    assert F.nice_values(1, 14) == [1, 2, 5, 10]
    assert F.nice_values(0, 1, "rate") == [0, 0.1, 0.25, 0.5, 0.75, 1]
    assert F.nice_values(-0.01, 60) == [0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50]
    assert F.nice_values(-30, 3) == [-20, -10, -5, -2, -1, 0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]


def test_axis_ticks_keep_at_most_seven_spread_along_the_axis():
    values = F.nice_values(0, 100_000)
    positions = np.log1p(values)
    vals, text = F.axis_ticks(values, positions, [str(v) for v in values])
    assert 2 <= len(vals) <= 7 and vals == sorted(vals)
    assert np.all(np.diff(vals) >= (positions.max() - positions.min()) / 8 - 1e-12)
    assert text[0] == "0.0"


def test_tick_labels_in_the_shop_units():
    assert F.tick_label(0.25, "rate") == "25%"
    assert F.tick_label(1000, "money", "EUR") == "€1,000"
    assert F.tick_label(1000, "money") == "1,000"
    assert F.tick_label(1000, "money", "CHF") == "1,000 CHF"
    assert F.tick_label(5, "products") == "5"


def test_profile_heatmap_colour_is_neutral_and_says_what_high_means_per_feature():
    z = pd.DataFrame({"recency_days": [2.0, -1.0], "total_spending": [-2.0, 1.0]})
    heat = F.profile_heatmap_figure(z, ["Lapsed", "Loyal"], ["recency_days"]).data[0]
    scale = [c for _, c in heat.colorscale]
    red = [c for c in scale if c.startswith("rgb(") and _is_red(c)]
    assert not red  # no red for "above average": a lapsed segment's recency does not glow as alarm or success
    assert list(heat.colorbar.ticktext) == ["below", "average", "above"]
    assert heat.text[0][0] == "high: " + F.HIGH_MEANS["recency_days"] and "lapsing" in heat.text[0][0]
    assert "%{text}" in heat.hovertemplate


def _is_red(rgb: str) -> bool:
    r, g, b = (int(v) for v in rgb[4:-1].split(","))
    return r > 150 and g < 110 and b < 110


def test_a_feature_that_is_zero_for_everyone_is_said_so_not_drawn_on_a_minus_one_to_one_axis():
    labels = np.array([0, 0, 1, 1, 1])
    stats = {"average_return_rate": F.box_stats(np.zeros(5), labels, 2),
             "total_spending": F.box_stats(np.array([1.0, 2, 3, 4, 5]), labels, 2)}
    fig = F.box_figure(stats, ["A", "B"], ["#000000", "#111111"], ["total_spending"], 5, currency="EUR")
    layout = fig.layout.to_plotly_json()
    assert layout["yaxis"]["range"][0] >= -0.05 and layout["yaxis"]["range"][1] > 0  # not -1..1
    notes = [a["text"] for a in layout["annotations"] if "every" in a["text"]]
    assert notes == ["0.0% for every<br>customer"]
    assert "range" not in layout["yaxis2"] and layout["yaxis2"]["tickprefix"] == "€"


def test_static_exports_do_not_ask_to_drag():
    Z = np.random.default_rng(0).normal(size=(30, 3))
    fig = F.segments_scatter_figure(Z, Z, np.arange(30) % 2, ["a", "b", "c"], Z[:2], ["A", "B"], ["#000000", "#111111"],
                                    "log", 30)
    assert "drag" not in fig.layout.title.text.lower()
