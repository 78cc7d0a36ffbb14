"""An output never lands on an input, and --force replaces only custseg's own output directories.

Every case checks the refusal (exit 2, one line) and that every file that was there before is
still there, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from conftest import TEST_DATA
from helpers import cli_in_process

SHOP = TEST_DATA / "shopify_tiny.csv"


def _tree(directory: Path) -> dict[str, str]:
    """Every file below a directory with the digest of its bytes."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _refused(capsys, *args: str, words: tuple[str, ...] = ()) -> str:
    code, out, err = cli_in_process(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("custseg: error: "), err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture()
def shop(tmp_path) -> Path:
    """A user's folder: their orders and an unrelated notes file."""
    folder = tmp_path / "shop"
    folder.mkdir()
    shutil.copy(SHOP, folder / "orders.csv")
    (folder / "notes.txt").write_text("my notes")
    return folder


def test_force_never_replaces_the_directory_that_holds_the_input(shop, capsys):
    before = _tree(shop)
    _refused(capsys, "run", str(shop / "orders.csv"), "--out", str(shop), "--force", "-q",
             words=("contains the input", "--out"))
    assert _tree(shop) == before


@pytest.mark.parametrize("make_out", [
    lambda shop: shop / "orders.csv",             # is the input
    lambda shop: shop / "sub" / "out",            # lies inside an input directory
    lambda shop: shop.parent,                     # contains the input
])
def test_out_over_an_input_directory_is_refused(shop, capsys, make_out):
    before = _tree(shop)
    _refused(capsys, "run", str(shop), "--out", str(make_out(shop)), "--force", "-q", words=("input",))
    assert _tree(shop) == before


def test_out_inside_a_globs_directory_is_refused(shop, capsys):
    before = _tree(shop)
    _refused(capsys, "run", str(shop / "*.csv"), "--out", str(shop / "out"), "-q", words=("lies inside the input",))
    assert _tree(shop) == before and not (shop / "out").exists()


def test_out_reached_through_a_symlink_is_still_the_input(shop, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(shop, target_is_directory=True)
    before = _tree(shop)
    _refused(capsys, "run", str(shop / "orders.csv"), "--out", str(link), "--force", "-q", words=("input",))
    assert _tree(shop) == before


def test_force_never_replaces_a_directory_of_the_users(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    _refused(capsys, "run", str(SHOP), "--out", str(out), "--force", "-q", words=("not a custseg output",))
    assert (out / "thesis.docx").read_text() == "years of work"


def test_force_never_replaces_the_home_directory(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export X=1")
    (home / "summary.json").write_text('{"customers": 3}')  # even one that looks like a run
    monkeypatch.setenv("HOME", str(home))
    before = _tree(home)
    _refused(capsys, "run", str(SHOP), "--out", str(home), "--force", "-q", words=("home directory",))
    assert _tree(home) == before


def test_out_dot_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    code, _, err = cli_in_process(capsys, "run", str(SHOP), "--out", str(run_dir), "--k", "2", "-q")
    assert code == 0, err
    before = _tree(run_dir)
    monkeypatch.chdir(run_dir)
    # the pipeline must not even start: a refusal comes before any reading
    import custseg.pipeline as pipeline

    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("the job ran before the refusal"))
    _refused(capsys, "run", str(SHOP), "--out", ".", "--force", "-q", words=("current directory",))
    assert _tree(run_dir) == before


def test_a_custseg_output_is_replaced_with_force(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = cli_in_process(capsys, "run", str(SHOP), "--out", str(out), "--k", "2", "-q")
    assert code == 0, err
    _refused(capsys, "run", str(SHOP), "--out", str(out), "--k", "2", "-q", words=("--force",))
    code, _, err = cli_in_process(capsys, "run", str(SHOP), "--out", str(out), "--k", "3", "--force", "-q")
    assert code == 0, err
    assert '"k": 3' in (out / "summary.json").read_text()


def test_run_with_model_never_writes_over_the_models_run(tmp_path, capsys):
    first = tmp_path / "first"
    code, _, err = cli_in_process(capsys, "run", str(SHOP), "--out", str(first), "--k", "2", "-q")
    assert code == 0, err
    before = _tree(first)
    _refused(capsys, "run", str(SHOP), "--model", str(first / "model.json"), "--out", str(first), "--force", "-q",
             words=("input",))
    assert _tree(first) == before


def test_predict_never_overwrites_its_input(shop, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = cli_in_process(capsys, "run", str(SHOP), "--out", str(run_dir), "--k", "2", "-q")
    assert code == 0, err
    before, model_before = _tree(shop), _tree(run_dir)
    _refused(capsys, "predict", str(run_dir), str(shop / "orders.csv"), "--out", str(shop / "orders.csv"),
             "--force", "-q", words=("is the input",))
    _refused(capsys, "predict", str(run_dir), str(shop / "orders.csv"), "--out", str(run_dir / "x.csv"),
             "--force", "-q", words=("input",))
    assert _tree(shop) == before and _tree(run_dir) == model_before


def test_compare_never_writes_over_a_run_it_reads(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    for target, k in ((old, "2"), (new, "3")):
        code, _, err = cli_in_process(capsys, "run", str(SHOP), "--out", str(target), "--k", k, "-q")
        assert code == 0, err
    before = _tree(old)
    _refused(capsys, "compare", str(old), str(new), "--out", str(old), "--force", words=("input",))
    assert _tree(old) == before


def test_demo_never_replaces_a_directory_of_the_users(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _refused(capsys, "demo", "--out", str(out), "-q", words=("not a custseg output",))
    assert (out / "keep.txt").read_text() == "mine"


def test_the_api_refuses_to_write_over_its_input(shop):
    import custseg
    from custseg.errors import CustsegError

    result = custseg.segment(str(shop / "orders.csv"), k=2)
    before = _tree(shop)
    with pytest.raises(CustsegError, match="input"):
        result.to_dir(shop, force=True)
    assert _tree(shop) == before
    assert os.path.exists(shop / "orders.csv")
