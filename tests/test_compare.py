"""compare: migration between two runs, checked on hand-made runs and on two periods of the sample."""

from __future__ import annotations

import csv
import json
import re
import shutil

import pandas as pd
import pytest

import custseg
from custseg import CustsegError
from helpers import split_by_date
from custseg.outputs.compare import compare_runs, write_comparison
from helpers import cli_in_process as run_cli


def write_run_dir(directory, rows, names=None):
    """A minimal run directory: segments.csv (customer_id, segment, segment_name), and model.json when
    `names` are given (segment names by id)."""
    directory.mkdir()
    with open(directory / "segments.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["customer_id", "total_spending", "segment", "segment_name"])
        for customer, segment, name in rows:
            writer.writerow([customer, 1.0, segment, name])
    if names is not None:
        model = {
            "format": "custseg-model", "version": 1, "custseg_version": "test", "feature_definitions_version": 1,
            "schema": "generic", "features": [{"name": "total_spending", "definition": ""}],
            "scaling": {"method": "log", "mean": [0.0], "scale": [1.0]},
            "centers": [[float(i)] for i in range(len(names))],
            "segments": [{"id": i, "name": n, "description": "", "strategy": ""} for i, n in enumerate(names)],
            "training": {},
        }
        (directory / "model.json").write_text(json.dumps(model), encoding="utf-8")
    return directory


def read_csv_text(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture()
def hand_runs(tmp_path):
    # old: c1 A, c2 A, c3 B, 00123 B          new: c1 A, c2 B, c4 C, 123 A
    # hand-computed migration (rows old, columns new):
    #   A:              A 1 (c1), B 1 (c2)
    #   B:              (absent) 2 (c3, 00123)
    #   (new customer): A 1 (123), C 1 (c4)
    old = write_run_dir(tmp_path / "old", [("c1", 0, "A"), ("c2", 0, "A"), ("c3", 1, "B"), ("00123", 1, "B")],
                        names=["A", "B"])
    new = write_run_dir(tmp_path / "new", [("c1", 0, "A"), ("c2", 1, "B"), ("c4", 2, "C"), ("123", 0, "A")],
                        names=["A", "B", "C", "Empty"])
    return old, new


def test_migration_of_hand_made_runs(hand_runs, tmp_path, capsys):
    old, new = hand_runs
    out = tmp_path / "cmp"
    code, stdout, stderr = run_cli(capsys, "compare", str(old), str(new), "--out", str(out))
    assert code == 0, stderr
    migration = read_csv_text(out / "migration.csv")
    assert list(migration.columns) == ["from", "A", "B", "C", "Empty", "(absent)"]
    assert migration.values.tolist() == [
        ["A", "1", "1", "0", "0", "0"],
        ["B", "0", "0", "0", "0", "2"],
        ["(new customer)", "1", "0", "1", "0", "0"],
    ]
    movers = read_csv_text(out / "movers.csv")
    assert movers.values.tolist() == [["c2", "A", "B"]]
    assert list(movers.columns) == ["customer_id", "old_segment", "new_segment"]
    assert "6 customers in either period" in " ".join(stdout.split())
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_customer_ids_are_compared_as_text(tmp_path):
    old = write_run_dir(tmp_path / "old", [("00123", 0, "A"), ("7", 0, "A")])
    new = write_run_dir(tmp_path / "new", [("123", 0, "A"), ("7.0", 0, "A"), ("7", 1, "B")])
    comparison = compare_runs(old, new)
    assert comparison.totals == {"customers": 4, "old_period": 2, "new_period": 3, "in_both": 1, "stayed": 0,
                                 "moved": 1, "new": 2, "absent": 1}
    assert comparison.movers.values.tolist() == [["7", "A", "B"]]


def test_names_are_neutralised_in_csv_but_ids_are_not(tmp_path):
    # the same centres in both model.json files (one model renamed): segments are matched by name
    old = write_run_dir(tmp_path / "old", [("-1", 0, "=cmd()"), ("+2", 0, "=cmd()")], names=["=cmd()", "Other"])
    new = write_run_dir(tmp_path / "new", [("-1", 0, "@SUM(A1)"), ("+2", 1, "Plain")], names=["@SUM(A1)", "Plain"])
    comparison = compare_runs(old, new)
    assert comparison.alignment_note is None
    out = write_comparison(comparison, tmp_path / "cmp")
    migration = read_csv_text(out / "migration.csv")
    assert list(migration.columns) == ["from", "'@SUM(A1)", "Plain", "(absent)"]
    assert migration["from"].tolist() == ["'=cmd()", "Other", "(new customer)"]
    movers = read_csv_text(out / "movers.csv")
    # natural order (length, then text): "+2" before "-1"
    assert movers.values.tolist() == [["+2", "'=cmd()", "Plain"], ["-1", "'=cmd()", "'@SUM(A1)"]]


def test_compare_html_escapes_names_and_loads_nothing(tmp_path):
    evil = "</script><img src=x onerror=alert(1)>"
    old = write_run_dir(tmp_path / "old", [("1", 0, evil)], names=[evil])
    new = write_run_dir(tmp_path / "new", [("1", 0, "A & B")], names=["A & B"])
    page = (write_comparison(compare_runs(old, new), tmp_path / "cmp") / "compare.html").read_text(encoding="utf-8")
    assert "<img" not in page and "onerror=alert(1)>" not in page.replace("&gt;", "")
    assert page.count("</script>") == 2  # plotly.js and the figure, nothing injected
    head = page[: page.index("</head>")]
    assert "default-src 'none'" in head and "connect-src 'none'" in head
    markup = re.sub(r"<script>.*?</script>", "<script></script>", page, flags=re.S)  # the page minus scripts
    tags = re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)([^>]*)>", markup)
    assert {name.lower() for name, _ in tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p",
                                                  "code", "div", "table", "thead", "tbody", "tr", "th", "td",
                                                  "script"}
    assert not [attrs for _, attrs in tags if re.search(r"\b(src|href|action)\s*=", attrs, re.I)]
    assert "@import" not in markup and "url(" not in markup
    assert "Plotly.newPlot" in page and '"type":"sankey"' in page


@pytest.mark.browser
def test_compare_html_draws_the_sankey_under_its_csp(hand_runs, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        pytest.skip("no headless Chromium on this machine")
    page = write_comparison(compare_runs(*hand_runs), tmp_path / "cmp") / "compare.html"
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(page.as_uri())
        driver.implicitly_wait(10)
        driver.find_element("css selector", "#sankey .sankey-node")
        labels = driver.execute_script(
            "return Array.from(document.querySelectorAll('#sankey .node-label')).map(e => e.textContent)")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    assert {"A", "B", "C", "(new customer)", "(absent)"} <= set(labels)
    assert errors == []


def test_output_is_atomic_and_refuses_a_non_empty_directory(hand_runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = run_cli(capsys, "compare", str(hand_runs[0]), str(hand_runs[1]), "--out", str(out))
    assert code == 2 and "not a custseg output" in stderr and (out / "keep.txt").exists()
    code, _, stderr = run_cli(capsys, "compare", str(hand_runs[0]), str(hand_runs[1]), "--out", str(out),
                              "--force")  # --force never replaces a directory of the user's
    assert code == 2 and "not a custseg output" in stderr and (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    code, _, stderr = run_cli(capsys, "compare", str(hand_runs[0]), str(hand_runs[1]), "--out", str(out))
    assert code == 0, stderr
    code, _, stderr = run_cli(capsys, "compare", str(hand_runs[0]), str(hand_runs[1]), "--out", str(out))
    assert code == 2 and "--force" in stderr
    code, _, stderr = run_cli(capsys, "compare", str(hand_runs[0]), str(hand_runs[1]), "--out", str(out),
                              "--force")  # a comparison of custseg's own is replaced
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["compare.html", "migration.csv", "movers.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp", "new", "old"]  # no temporary directory left


@pytest.mark.parametrize("breaks,message", [
    (lambda d: shutil.rmtree(d), "no such run directory"),
    (lambda d: (d / "segments.csv").unlink(), "no segments.csv or segments.parquet"),
    (lambda d: (d / "segments.csv").write_text('"customer_id","segment","segment_name"\n"1",0,"A"\n"1",0,"A"\n'),
     "listed twice"),
    (lambda d: (d / "segments.csv").write_text('"customer_id","segment","segment_name"\n"1",5,"A"\n'),
     "do not match"),
    (lambda d: (d / "segments.csv").write_text('"id","segment"\n"1",0\n'), "no column 'customer_id'"),
    (lambda d: (d / "model.json").write_text('{"format": "custseg-model", "version": 7}'), "version 7"),
])
def test_broken_run_directories_are_refused(hand_runs, tmp_path, capsys, breaks, message):
    breaks(hand_runs[1])
    code, _, stderr = run_cli(capsys, "compare", str(hand_runs[0]), str(hand_runs[1]), "--out",
                              str(tmp_path / "cmp"))
    assert code == 2, stderr
    assert message in " ".join(stderr.split()) and "Traceback" not in stderr
    assert not (tmp_path / "cmp").exists()


def test_reserved_names_are_refused(tmp_path):
    old = write_run_dir(tmp_path / "old", [("1", 0, "(absent)")], names=["(absent)"])
    new = write_run_dir(tmp_path / "new", [("1", 0, "A")], names=["A"])
    with pytest.raises(CustsegError, match="reserves"):
        compare_runs(old, new)


# ---------------------------------------------------------------------------- two real periods


@pytest.fixture(scope="module")
def periods(small_shopify, tmp_path_factory):
    """The sample as two periods: run 1, run 2 with run 1's model, and run 2 fitted afresh (parquet)."""
    base = tmp_path_factory.mktemp("periods")
    first, second = split_by_date(small_shopify, base)
    run1 = custseg.segment(str(first), k=4, n_init=3).to_dir(base / "run1", report=False)
    reused = custseg.segment(str(second), model=run1 / "model.json").to_dir(base / "run2", report=False)
    fresh = custseg.segment(str(second), k=3, n_init=3, scale="log-standard").to_dir(
        base / "run2_fresh", report=False, segments_format="parquet")
    return run1, reused, fresh


def _independent_migration(old_segments: pd.DataFrame, new_segments: pd.DataFrame):
    old = dict(zip(old_segments.customer_id, old_segments.segment_name))
    new = dict(zip(new_segments.customer_id, new_segments.segment_name))
    cells: dict[tuple[str, str], int] = {}
    for customer in set(old) | set(new):
        key = (old.get(customer, "(new customer)"), new.get(customer, "(absent)"))
        cells[key] = cells.get(key, 0) + 1
    movers = sorted(c for c in set(old) & set(new) if old[c] != new[c])
    return cells, movers, len(set(old) | set(new))


@pytest.mark.parametrize("which", ["reused", "fresh"])
def test_two_periods_every_customer_counted_once(periods, tmp_path, capsys, which):
    run1, reused, fresh = periods
    run2 = reused if which == "reused" else fresh
    out = tmp_path / "cmp"
    code, _, stderr = run_cli(capsys, "compare", str(run1), str(run2), "--out", str(out))
    assert code == 0, stderr
    old = pd.read_csv(run1 / "segments.csv", dtype={"customer_id": str}, keep_default_na=False)
    new = (pd.read_parquet(run2 / "segments.parquet") if which == "fresh"
           else pd.read_csv(run2 / "segments.csv", dtype={"customer_id": str}, keep_default_na=False))
    migration = pd.read_csv(out / "migration.csv", keep_default_na=False)
    counts = migration.set_index("from")
    new_names = [s["name"] for s in json.loads((run2 / "model.json").read_text())["segments"]]
    if which == "fresh":
        # Two independent fits: each new segment is shown under the old segment it is aligned to
        # (or its own name). Whatever the alignment, it is one column per new segment, and the
        # counts are the independent ones under that relabelling: infer it from the columns.
        own = _independent_migration(old, new)[0]
        relabel = {}
        for name in new_names:
            column = [own.get((row, name), 0) for row in counts.index]
            matches = [c for c in counts.columns[:-1] if list(counts[c]) == column and c not in relabel.values()]
            assert matches, f"no migration column holds the customers of new segment {name!r}"
            relabel[name] = matches[0]
        assert sorted(relabel.values()) == sorted(counts.columns[:-1])  # one column per new segment
        new = new.assign(segment_name=new["segment_name"].astype(object).map(relabel))
        new_names = [relabel[n] for n in new_names]
    cells, movers, union = _independent_migration(old, new)
    assert int(counts.to_numpy().sum()) == union  # every customer of either period exactly once
    assert 0 < len(set(old.customer_id) & set(new.customer_id)) < union  # overlap, newcomers and absentees
    got = {(r, c): int(counts.loc[r, c]) for r in counts.index for c in counts.columns if counts.loc[r, c]}
    assert got == cells
    assert list(migration.columns) == ["from"] + new_names + ["(absent)"]
    assert migration["from"].iloc[-1] == "(new customer)"
    listed = pd.read_csv(out / "movers.csv", dtype=str, keep_default_na=False)
    assert sorted(listed.customer_id) == movers
    if which == "reused":  # the same model: the columns are the old segments, so stayers are on the diagonal
        assert list(migration.columns[1:-1]) == list(migration["from"].iloc[:-1])


def test_sankey_colours_flows_by_old_segment_in_the_report_palette_with_row_shares_and_dates(hand_runs):
    from custseg.outputs.compare import sankey_figure
    from custseg.outputs.report.figures import segment_colors

    old, new = hand_runs
    (old / "summary.json").write_text(json.dumps({"date_range": ["2024-01-01", "2024-06-30"]}))
    (new / "summary.json").write_text(json.dumps({"date_range": ["2024-07-01", "2024-12-31"]}))
    fig = sankey_figure(compare_runs(old, new))
    sankey = fig.data[0]
    labels = list(sankey.node.label)
    # segment order top to bottom on each side, (new customer) and (absent) last
    assert labels == ["A", "B", "(new customer)", "A", "B", "C", "Empty", "(absent)"]
    left_y = list(sankey.node.y)[:3]
    right_y = [y for y, size in zip(list(sankey.node.y)[3:], [2, 1, 1, 0, 2]) if size]
    assert left_y == sorted(left_y) and right_y == sorted(right_y)
    palette = segment_colors(4)
    assert list(sankey.node.color)[:2] == palette[:2] and list(sankey.node.color)[3:7] == palette[:4]
    # hand-made flows (see hand_runs): A->A 1, A->B 1, B->(absent) 2, new->A 1, new->C 1
    flows = {(labels[s], labels[t]): (v, c, share) for s, t, v, c, share in
             zip(sankey.link.source, sankey.link.target, sankey.link.value, sankey.link.color, sankey.link.customdata)}
    a, b = palette[0], palette[1]
    rgba = lambda h: f"rgba({int(h[1:3], 16)},{int(h[3:5], 16)},{int(h[5:7], 16)},0.35)"  # noqa: E731
    assert flows[("A", "A")] == (1, rgba(a), "50.0%") and flows[("A", "B")] == (1, rgba(a), "50.0%")
    assert flows[("B", "(absent)")] == (2, rgba(b), "100.0%")
    assert flows[("(new customer)", "C")][2] == "50.0%"
    assert "of %{source.label}" in sankey.link.hovertemplate
    title = fig.layout.title.text
    assert "2024-01-01 to 2024-06-30" in title and "2024-07-01 to 2024-12-31" in title
