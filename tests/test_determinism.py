"""Determinism: the same input and seed give byte-identical outputs, across runs, DuckDB
thread counts (--threads 1 vs all cores) and BLAS/OpenMP thread counts of scikit-learn.

Why it holds (docs/formats.md): money and rates are summed as exact decimals, so the order
in which parallel workers add lines does not matter; customers are sorted explicitly; K-means
is seeded and scikit-learn's Lloyd iterations reduce per chunk in a fixed order; the CSV
writer prints the shortest repr of each double."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from corpus import run_cli

COMPARED = ("segments.csv", "profiles.csv", "k_selection.csv", "best_sellers.csv", "model.json")


def _outputs(directory):
    return {name: (directory / name).read_bytes() for name in COMPARED}


def test_two_runs_give_identical_bytes(tmp_path, small_shopify, capsys, monkeypatch):
    runs = []
    for name in ("a", "b"):
        code, _, err = run_cli(["run", small_shopify, "--out", tmp_path / name, "-q", "--no-report"], capsys,
                               monkeypatch)
        assert code == 0, err
        runs.append(_outputs(tmp_path / name))
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_thread_counts_do_not_change_the_segments(tmp_path, medium_shopify, capsys, monkeypatch):
    """150,000 lines (several DuckDB row groups, so every thread gets work)."""
    common = ["--k", "4", "--n-init", "3", "-q", "--no-report", "--top-products", "3"]
    code, _, err = run_cli(["run", medium_shopify, "--out", tmp_path / "all", *common], capsys, monkeypatch)
    assert code == 0, err
    with threadpool_limits(1):  # scikit-learn / OpenMP on one thread too
        code, _, err = run_cli(["run", medium_shopify, "--out", tmp_path / "one", "--threads", "1", *common],
                               capsys, monkeypatch)
    assert code == 0, err
    everything, single = _outputs(tmp_path / "all"), _outputs(tmp_path / "one")
    for name in COMPARED:
        assert everything[name] == single[name], name


def test_generic_features_with_divisions_are_stable_across_threads(tmp_path, capsys, monkeypatch):
    """avg_order_value and recency/tenure (divisions and date arithmetic) on 60,000 generic lines."""
    from custseg.sample import write_sample

    data = write_sample(tmp_path / "generic.csv", "generic", 60_000, 5)
    features = "total_spending,order_count,avg_order_value,recency_days,tenure_days"
    outputs = []
    for threads in ([], ["--threads", "1"]):
        out = tmp_path / f"out{len(outputs)}"
        code, _, err = run_cli(["run", data, "--out", out, "--features", features, "--k", "3", "-q", "--no-report",
                                *threads], capsys, monkeypatch)
        assert code == 0, err
        outputs.append((out / "segments.csv").read_bytes())
    assert outputs[0] == outputs[1]
