"""Parallelism: work side by side on the machine's cores, and native thread pools held to one."""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor


_pools = None
_pools_lock = threading.Lock()


def thread_pools():
    """The process's one threadpoolctl controller: the native thread pools (OpenMP, BLAS) of the
    loaded libraries. Creating one resolves the path of every loaded library (0.04-0.1 s with
    DuckDB, Arrow, SciPy and scikit-learn loaded), so it is created once, after scikit-learn is
    imported (runtime/preload.py creates it in the background)."""
    global _pools
    with _pools_lock:
        if _pools is None:
            from threadpoolctl import ThreadpoolController  # (scikit-learn's dependency)

            _pools = ThreadpoolController()
        return _pools


def single_threaded():
    """Native thread pools (OpenMP, BLAS) limited to one thread, within this block.

    K-means on a 100,000-row sample gains nothing from a second thread, and an OpenMP
    team whose threads share busy cores loses several-fold; with one thread per fit
    (and fits side by side, see `parallel_map`) results do not depend on the machine's
    number of cores.
    """
    return thread_pools().limit(limits=1)


def parallel_map(function, items, workers: int | None = None) -> list:
    """[function(item) for item in items], run on up to one thread per core (in order)."""
    items = list(items)
    workers = min(len(items), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="custseg-kmeans") as pool:
        return list(pool.map(function, items))


def ordered_stream(function, items, workers: int | None = None, ahead: int = 2):
    """function(item) for each item, yielded in order, computed on up to one thread per core with at
    most `ahead` results per thread waiting (memory stays bounded, whatever the number of items)."""
    items = iter(items)
    workers = workers or os.cpu_count() or 1
    if workers <= 1:
        yield from map(function, items)
        return
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="custseg-stream") as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= workers * ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # stopped early (an error, the consumer's): no more work
                future.cancel()


def in_background(function, *args) -> Future:
    """function(*args) started on a daemon thread now; its result (or exception) in the Future.

    Daemon: a run that stops early (a refusal after the work was started) does not wait for it.
    """
    future: Future = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name=f"custseg-{getattr(function, '__name__', 'work')}", daemon=True).start()
    return future
