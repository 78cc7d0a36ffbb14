"""custseg rename: new names in every output of a real run, atomically; refusals leave the run as it was."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from custseg.errors import CustsegError
from custseg.model import load_model
from custseg.outputs.rename import parse_assignments, read_names_file, rename_run

from helpers import cli

DATA = Path(__file__).parent / "data" / "shopify_tiny.csv"
NEW = "Lapsed big spenders"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for fmt in ("csv", "parquet"):
        done = cli("run", DATA, "--out", base / fmt, "--k", "2", "--format", fmt)
        assert done.returncode == 0, done.stderr
        out[fmt] = base / fmt
    return out


@pytest.fixture()
def run(runs, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(runs["csv"], target)
    return target


def _rows(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _digest(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_round_trip_on_a_real_run(run, runs):
    before = {name: (run / name).read_text(encoding="utf-8") for name in ("segments.csv", "model.json")}
    old = load_model(run).segment_names
    profiles_before, sellers_before = _rows(run / "profiles.csv"), _rows(run / "best_sellers.csv")

    result = rename_run(run, {1: NEW})

    assert result.changes == [{"segment": 1, "from": old[1], "to": NEW}] and result.report == "removed"
    assert load_model(run).segment_names == [old[0], NEW]
    # model.json: only the name changed, every number byte for byte
    assert (run / "model.json").read_text(encoding="utf-8") == \
        before["model.json"].replace(json.dumps(old[1], ensure_ascii=False), json.dumps(NEW))
    # segments.csv: only the name cells changed (ids and numbers exactly as written)
    assert (run / "segments.csv").read_text(encoding="utf-8") == \
        before["segments.csv"].replace(f'"{old[1]}"', f'"{NEW}"')
    for name, rows_before in (("profiles.csv", profiles_before), ("best_sellers.csv", sellers_before)):
        rows = _rows(run / name)
        col, seg = rows[0].index("segment_name"), rows[0].index("segment")
        expected = [r[:col] + [NEW if r[seg] == "1" else r[col]] + r[col + 1:] for r in rows_before[1:]]
        assert rows[1:] == expected and rows[0] == rows_before[0]
        assert any(r[seg] == "1" for r in rows[1:])
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["renamed"] == result.changes
    assert "report.html" not in summary["outputs"] and not (run / "report.html").exists()
    assert summary["outputs"][-1] == "summary.json"
    # unchanged files unchanged; nothing left beside the run
    assert (run / "k_selection.csv").read_bytes() == (runs["csv"] / "k_selection.csv").read_bytes()
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]
    # the original run (hard links) untouched
    assert load_model(runs["csv"]).segment_names == old


def test_renamed_model_predicts_with_the_new_name(run, tmp_path):
    rename_run(run, {0: "Firsts"})
    done = cli("predict", run, DATA, "--out", tmp_path / "scored.csv")
    assert done.returncode == 0, done.stderr
    scored = _rows(tmp_path / "scored.csv")
    name = scored[0].index("segment_name")
    rows = _rows(run / "segments.csv")
    at = rows[0].index("segment_name")  # (RFM, margin and lifecycle columns follow it)
    segments = {r[0]: r for r in rows[1:]}
    assert {r[name] for r in scored[1:]} <= set(load_model(run).segment_names)
    assert all(r[name] == segments[r[0]][at] for r in scored[1:])
    assert "Firsts" in {r[at] for r in segments.values()}


def test_parquet_run(runs, tmp_path):
    run = tmp_path / "p"
    shutil.copytree(runs["parquet"], run)
    before = pq.read_table(run / "segments.parquet")
    rename_run(run, {0: "Firsts", 1: "Seconds"})
    after = pq.read_table(run / "segments.parquet")
    assert after.schema == before.schema
    assert after.column("segment_name").cast("string").to_pylist() == \
        [["Firsts", "Seconds"][s] for s in before.column("segment").to_pylist()]
    assert after.drop_columns("segment_name").equals(before.drop_columns("segment_name"))


def test_report_hook_runs_on_the_new_directory(run):
    seen = {}

    def rebuild(directory, model):
        seen["names"] = model.segment_names
        seen["was_tmp"] = directory != run
        (directory / "report.html").write_text("<p>" + model.segment_names[1] + "</p>")
        return ["report.html"]

    result = rename_run(run, {1: NEW}, rebuild_report=rebuild)
    assert result.report == "rebuilt" and seen["was_tmp"] and seen["names"][1] == NEW
    assert (run / "report.html").read_text() == f"<p>{NEW}</p>"
    outputs = json.loads((run / "summary.json").read_text())["outputs"]
    assert "report.html" in outputs and outputs[-1] == "summary.json"


def test_audiences_and_workbook_follow(run):
    import fastexcel
    import pyarrow.csv as pacsv
    import pyarrow as pa

    from custseg.outputs.audiences import write_audiences
    from custseg.outputs.workbook import write_workbook

    segments = pacsv.read_csv(run / "segments.csv", convert_options=pacsv.ConvertOptions(
        column_types={"customer_id": pa.string()}))
    old = load_model(run).segment_names
    write_audiences(run, segments, old)
    write_workbook(run / "segments.xlsx", {"segments": segments})
    rename_run(run, {1: NEW})
    assert sorted(p.name for p in (run / "audiences").iterdir()) == sorted(
        [f"0-{'-'.join(old[0].lower().replace('(', '').replace(')', '').replace(',', '').split())}.csv",
         "1-lapsed-big-spenders.csv"])
    sheet = fastexcel.read_excel(str(run / "segments.xlsx")).load_sheet("segments").to_arrow().to_pylist()
    assert {r["segment_name"] for r in sheet if r["segment"] == 1.0} == {NEW}
    assert [r["customer_id"] for r in sheet] == segments.column("customer_id").to_pylist()


@pytest.mark.parametrize("new,message", [
    ({5: "X"}, r"segment 5 does not exist; this run's segments are 0 to 1"),
    ({0: "   "}, "empty"),
    ({0: "=HYPERLINK()"}, "formula"),
    ({0: "a\nb"}, "one line"),
    ({0: "(absent)"}, "reserved"),
    ({0: "Same", 1: " same "}, "segments 0 and 1 would both be called"),
])
def test_refusals_leave_the_run_untouched(run, new, message):
    before = _digest(run)
    with pytest.raises(CustsegError, match=message):
        rename_run(run, new)
    assert _digest(run) == before and sorted(p.name for p in run.parent.iterdir()) == ["run"]


def test_name_of_another_segment_refused(run):
    other = load_model(run).segment_names[1]
    with pytest.raises(CustsegError, match="would both be called"):
        rename_run(run, {0: other})


def test_not_a_run(tmp_path):
    with pytest.raises(CustsegError, match="not a complete run directory"):
        rename_run(tmp_path, {0: "X"})


def test_parse_assignments_and_names_files(tmp_path):
    assert parse_assignments(['2=Lapsed big spenders', ' 0 = "Loyal" ', "1=a=b"]) == \
        {2: "Lapsed big spenders", 0: "Loyal", 1: "a=b"}
    for bad in ("Lapsed", "x=Y"):
        with pytest.raises(CustsegError, match="NUMBER=NAME"):
            parse_assignments([bad])
    with pytest.raises(CustsegError, match="two new names"):
        parse_assignments(["1=a", "1=b"])
    lines = tmp_path / "names.txt"
    lines.write_text("# new names\n\n0=Loyal\n1 = Lapsed, big spenders\n", encoding="utf-8")
    assert read_names_file(lines) == {0: "Loyal", 1: "Lapsed, big spenders"}
    table = tmp_path / "names.csv"
    table.write_text('segment,segment_name,customers\n0,Loyal,3\n1,"Lapsed, big",2\n', encoding="utf-8")
    assert read_names_file(table) == {0: "Loyal", 1: "Lapsed, big"}
