"""Faults: Ctrl-C and SIGTERM during a run, an unwritable or full --out, a tiny memory limit.

An interrupted or failed run leaves no output directory (nor its temporary sibling) and says
so in one line; a finished directory always ends with summary.json."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import custseg
from corpus import run_cli

CUSTSEG = [sys.executable, "-c", "import sys; from custseg.cli import entry; sys.argv[0] = 'custseg'; entry()"]


def _start(args: list, cwd: Path) -> tuple[subprocess.Popen, list[str], threading.Event]:
    """Start `custseg ARGS`; stderr lines are collected as they come."""
    process = subprocess.Popen(CUSTSEG + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200", "CUSTSEG_PROGRESS": "1"})
    lines: list[str] = []
    seen = threading.Event()

    def read():
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            seen.set()

    threading.Thread(target=read, daemon=True).start()
    return process, lines, seen


def _wait_for(lines: list[str], seen: threading.Event, text: str, process: subprocess.Popen) -> None:
    while not any(text in line for line in lines):
        assert process.poll() is None, f"the run ended before {text!r}: {lines}"
        seen.wait(1)
        seen.clear()


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.slow
@pytest.mark.parametrize("sig, stage, code", [
    (signal.SIGINT, "features:", 130),      # inside a DuckDB query
    (signal.SIGTERM, "clean:", 143),        # inside a DuckDB query
    (signal.SIGINT, "clustering:", 130),    # inside scikit-learn
    (signal.SIGTERM, "clustering:", 143),
])
def test_a_signal_stops_the_run_and_leaves_no_output(tmp_path, medium_shopify, sig, stage, code):
    out = tmp_path / "out"
    process, lines, seen = _start(["run", medium_shopify, "--out", out], tmp_path)
    _wait_for(lines, seen, stage, process)
    process.send_signal(sig)
    try:
        process.wait(timeout=60)  # a guard against a hang, not a timing requirement
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"custseg did not stop after {signal.Signals(sig).name}: {lines}")
    threading.Event().wait(0.2)  # let the reader thread take the last line
    assert process.returncode == code, lines
    assert lines[-1] == f"custseg: interrupted ({signal.Signals(sig).name}); no complete output was written.", lines
    assert not any("Traceback" in line for line in lines), lines
    assert not out.exists()
    assert _leftovers(tmp_path, "out") == []


def test_an_interrupt_while_writing_removes_the_temporary_directory(tmp_path, small_shopify, monkeypatch):
    from custseg.outputs import run as outputs

    result = custseg.segment(str(small_shopify), k=3)
    written = []
    original = outputs.write_json

    def interrupted_write(path, value):
        written.append(path.name)
        if path.name == "model.json" or len(written) == 2:
            raise KeyboardInterrupt
        original(path, value)

    monkeypatch.setattr(outputs, "write_json", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        result.to_dir(tmp_path / "out")
    assert written  # the interrupt came in the middle of writing
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path, "out") == []


def test_an_interrupt_keeps_a_previous_output_whole(tmp_path, small_shopify, monkeypatch):
    from custseg.outputs import run as outputs

    result = custseg.segment(str(small_shopify), k=3)
    target = result.to_dir(tmp_path / "out")
    before = sorted(p.name for p in target.iterdir())
    monkeypatch.setattr(outputs, "write_json", lambda path, value: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        result.to_dir(target, force=True)
    assert sorted(p.name for p in target.iterdir()) == before
    assert (target / "summary.json").exists()
    assert _leftovers(tmp_path, "out") == []


def test_a_full_disk_gives_one_line_and_no_output(tmp_path, small_shopify, capsys, monkeypatch):
    """ENOSPC in the middle of writing (simulated): a clear error, nothing half-written."""
    from custseg.outputs import run as outputs

    original = outputs.write_frame_csv

    def full(path, *args, **kwargs):
        if path.name == "best_sellers.csv":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(outputs, "write_frame_csv", full)
    out = tmp_path / "out"
    code, _, err = run_cli(["run", small_shopify, "--out", out, "--k", "3", "-q"], capsys, monkeypatch)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"custseg: error: {out}: the disk is full"), err
    assert "Traceback" not in err
    assert not out.exists() and _leftovers(tmp_path, "out") == []


def _mount_tiny_tmpfs(directory: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    directory.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(directory)], capture_output=True)
    return done.returncode == 0


def test_a_really_full_disk(tmp_path, small_shopify, capsys, monkeypatch):
    """On a 96 KB tmpfs (needs root and mount; skipped otherwise) the outputs do not fit."""
    disk = tmp_path / "tiny"
    if not _mount_tiny_tmpfs(disk):
        pytest.skip("cannot mount a tiny tmpfs here (needs root)")
    try:
        out = disk / "out"
        code, _, err = run_cli(["run", small_shopify, "--out", out, "--k", "3", "-q"], capsys, monkeypatch)
        assert code == 2, err
        assert "the disk is full" in err.strip().splitlines()[-1], err
        assert list(disk.iterdir()) == []  # neither the output nor its temporary directory
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_an_unwritable_out_is_refused_before_the_run(tmp_path, small_shopify, capsys, monkeypatch):
    """A directory we cannot write into (chmod for a normal user; root ignores it, so the write
    itself is made to fail) is refused at once, before any reading."""
    from custseg import pipeline

    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    if os.geteuid() == 0:
        import tempfile

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(parent))

        monkeypatch.setattr(tempfile, "mkdtemp", denied)
    monkeypatch.setattr(pipeline, "compute_features", lambda *a, **k: pytest.fail("the run started"))
    try:
        code, _, err = run_cli(["run", small_shopify, "--out", parent / "out", "-q"], capsys, monkeypatch)
    finally:
        parent.chmod(0o755)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("custseg: error:") and str(parent) in line and "--out" in line, err
    assert not (parent / "out").exists()


def test_an_out_on_a_read_only_filesystem(tmp_path, small_shopify, capsys, monkeypatch):
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    code, _, err = run_cli(["run", small_shopify, "--out", "/proc/custseg-out", "-q"], capsys, monkeypatch)
    assert code == 2 and err.strip().splitlines()[-1].startswith("custseg: error: /proc"), err


@pytest.mark.slow
def test_a_tiny_memory_limit_spills_instead_of_failing(tmp_path, medium_shopify):
    """64 MB for 150,000 lines: the features equal those computed without a limit."""
    from custseg.engines import connect
    from custseg.options import EngineOptions, RunOptions
    from custseg.pipeline import compute_features
    from custseg.runtime.stages import Stages

    def features(**engine):
        options = RunOptions(engine=EngineOptions(**engine))
        return compute_features(connect(options.engine), [str(medium_shopify)], options, Stages()).table

    tight = features(memory_limit="64MB", temp_dir=str(tmp_path / "spill"))
    assert tight.equals(features())


def test_a_run_closes_its_engine_when_it_returns(small_shopify, monkeypatch):
    """pipeline.run and pipeline.score close the DuckDB database they opened when they return, without
    the garbage collector (the CLI's exit does not collect): its tables and spill directory go then."""
    import gc

    import duckdb

    from custseg.engines.duckdb import DuckDBEngine
    from custseg.options import RunOptions
    from custseg.pipeline import run, score

    engines = []
    init = DuckDBEngine.__init__

    def recorded(self, *args, **kwargs):
        init(self, *args, **kwargs)
        engines.append(self)
    monkeypatch.setattr(DuckDBEngine, "__init__", recorded)
    gc.disable()
    try:
        result = run([str(small_shopify)], RunOptions(k=3))
        predictions = score(result.model, [str(small_shopify)])
        assert len(engines) == 2
        for engine in engines:
            with pytest.raises(duckdb.ConnectionException):
                engine.con.execute("SELECT 1")
    finally:
        gc.enable()
    assert result.summary["customers"] > 0 and result.segments_table.num_rows == result.summary["customers"]
    assert predictions.table.column("segment").to_pylist() == result.segments_table.column("segment").to_pylist()
