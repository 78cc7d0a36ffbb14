"""Hostile content and side effects: names a spreadsheet would run as formulas are neutralised in
CSV outputs (customer ids stay as they are, so they stay joinable); the input is never modified
and nothing is written outside --out (and the private temporary directories, removed at exit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from corpus import HEADER, fingerprint, order_rows, run_cli, write_csv

HOSTILE = ['=HYPERLINK("http://example.invalid","click")', "+1", "-2", "@SUM(A1:A9)", "\t=cmd|' /C calc'!A0",
           "\r=1+1", "<script>alert(1)</script>"]
CUSTSEG = [sys.executable, "-c", "import sys; from custseg.cli import entry; sys.argv[0] = 'custseg'; entry()"]


def _hostile_orders(tmp_path: Path) -> Path:
    rows = []
    for i, r in enumerate(order_rows(90, customers=30)):
        customer, day, amount = r.split(",")
        customer = {0: "=1+1", 1: "-5", 2: "+7", 3: "@me"}.get(i % 30, customer)
        product = HOSTILE[i % len(HOSTILE)]
        quoted = '"' + product.replace('"', '""') + '"'
        rows.append(f"{customer},{day},{amount},{quoted}")
    return write_csv(tmp_path / "hostile.csv", HEADER + ",product", rows)


def test_formula_names_are_neutralised_and_ids_stay_joinable(tmp_path, capsys, monkeypatch):
    data = _hostile_orders(tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(["run", data, "--out", out, "--k", "3", "-q"], capsys, monkeypatch)
    assert code == 0, err
    sellers = pd.read_csv(out / "best_sellers.csv", dtype=str, keep_default_na=False)
    names = set(sellers["product_name"]) | set(sellers["product"])
    for cell in names:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), repr(cell)
    # Each hostile name is present, prefixed with an apostrophe (leading blanks are trimmed on reading).
    assert "'" + HOSTILE[0] in names and "'+1" in names and "'-2" in names and "'@SUM(A1:A9)" in names
    assert "'=cmd|' /C calc'!A0" in names and "'=1+1" in names
    # Customer ids are not changed: they join back to the input.
    segments = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    source = pd.read_csv(data, dtype={"customer_id": str})
    assert {"=1+1", "-5", "+7", "@me"} <= set(segments.customer_id)
    assert set(segments.customer_id) == set(source.customer_id)
    # Names in the HTML report are escaped.
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in report


def test_input_and_working_directory_are_untouched(tmp_path):
    """Checksums, sizes and mtimes of the (read-only) input directory and of the working
    directory before and after a run; the private temporary directory is empty afterwards.
    (A permission check alone would prove nothing when the tests run as root.)"""
    inputs, cwd, private_tmp, outputs = (tmp_path / n for n in ("inputs", "cwd", "tmp", "outputs"))
    for d in (inputs, cwd, private_tmp, outputs):
        d.mkdir()
    write_csv(inputs / "orders.csv", HEADER + ",product", [r + ",shirt" for r in order_rows(200, 40)])
    cp1252 = [r + ",“Smart” €" for r in order_rows(200, 40)]
    cp1252[7] += ",extra"  # a malformed line, to exercise the rejects tables
    write_csv(inputs / "windows.csv", HEADER + ",product", cp1252, encoding="cp1252")
    (cwd / "notes.txt").write_text("keep me")
    for path in inputs.iterdir():
        path.chmod(0o444)
    inputs.chmod(0o555)
    before_inputs, before_cwd = fingerprint(inputs), fingerprint(cwd)
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    try:
        for name in ("orders.csv", "windows.csv"):
            done = subprocess.run(CUSTSEG + ["run", str(inputs / name), "--out", str(outputs / name), "--k", "3",
                                             "--memory-limit", "64MB", "-q"],
                                  cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            assert (outputs / name / "summary.json").exists()
    finally:
        inputs.chmod(0o755)
    assert fingerprint(inputs) == before_inputs
    assert fingerprint(cwd) == before_cwd
    assert sorted(p.name for p in outputs.iterdir()) == ["orders.csv", "windows.csv"]
    assert list(private_tmp.iterdir()) == []
