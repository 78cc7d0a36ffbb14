"""What a run imports, and when (runtime/preload.py, pipeline.py).

The flow imports only what reading, cleaning and the features need before the engine starts;
pandas, SciPy, scikit-learn and plotly are imported in the background meanwhile, and again (a
no-op, or a wait) where each stage uses them. These tests run fresh interpreters: the test
process itself has imported everything long ago.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from custseg.runtime import preload

HEAVY = ("pandas", "scipy", "sklearn", "plotly", "kneed", "jinja2")


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_flow_starts_without_the_heavy_libraries():
    out = _fresh("import sys, json\nimport custseg.cli, custseg.pipeline\n"
                 f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_help_imports_no_data_library():
    out = _fresh("import sys, json\nsys.argv = ['custseg', '--help']\nfrom custseg.cli import entry\n"
                 "try:\n    entry()\nexcept SystemExit:\n    pass\n"
                 "print(json.dumps([m for m in ('pandas', 'pyarrow', 'ibis', 'duckdb', 'numpy') + "
                 f"{HEAVY!r} if m in sys.modules]))")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_every_preloaded_module_exists():
    # a misspelt name would be skipped silently by the preload thread (and stop it there)
    for name in preload.MODULES:
        if name != preload.THREAD_POOLS:  # (not a module: the clustering's thread pools, found once)
            importlib.import_module(name)


def test_a_run_without_the_preload_thread_is_the_same(tmp_path, small_shopify):
    """Every stage imports what it uses: a run whose background imports never happen writes the
    same segments as a normal run."""
    outs = {}
    for mode in ("off", "on"):
        out = tmp_path / mode
        code = ("import sys\n"
                + ("import custseg.runtime.preload as p\np.start = lambda: None\n" if mode == "off" else "")
                + f"sys.argv = ['custseg', 'run', {str(small_shopify)!r}, '--out', {str(out)!r}, "
                  "'--quiet', '--no-report']\n"
                  "from custseg.cli import entry\nentry()\n")
        done = _fresh(code)
        assert done.returncode == 0, done.stderr
        outs[mode] = (out / "segments.csv").read_bytes()
    assert outs["off"] == outs["on"]
    assert outs["off"].count(b"\n") > 10


def test_single_threaded_limits_every_native_pool_and_restores_them():
    """runtime/parallel.single_threaded (one controller for the process): inside the block every
    OpenMP and BLAS pool that scikit-learn and numpy loaded runs one thread; after it, as before."""
    import sklearn.cluster  # noqa: F401 - loads the OpenMP runtime the K-means uses
    from threadpoolctl import threadpool_info

    from custseg.runtime.parallel import single_threaded

    before = {(p["internal_api"], p["filepath"]): p["num_threads"] for p in threadpool_info()}
    assert any(api == "openmp" for api, _ in before)
    with single_threaded():
        inside = {(p["internal_api"], p["filepath"]): p["num_threads"] for p in threadpool_info()}
    after = {(p["internal_api"], p["filepath"]): p["num_threads"] for p in threadpool_info()}
    assert inside.keys() == before.keys() and set(inside.values()) == {1}
    assert after == before
