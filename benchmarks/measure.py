"""Run a command and measure it: wall-clock time, CPU time and peak memory of its process tree.

Peak RSS is the largest sum of the resident set sizes of the command and all its descendants,
polled every 50 ms with psutil (a short-lived peak between two polls can be missed, so the
kernel's own high-water mark of the largest single process, from wait4, is kept too and the
larger of the two is reported). CPU time is user + system of the command and the children it
waited for, from wait4.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass

import psutil


@dataclass
class Measurement:
    command: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    tree_peak_rss_mb: float     # psutil polling of the whole process tree
    kernel_peak_rss_mb: float   # ru_maxrss of the largest single process (wait4)

    def to_dict(self) -> dict:
        return asdict(self)


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        procs = [process] + process.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(command: list[str], stdout=None, stderr=None, env: dict | None = None,
            interval: float = 0.05) -> Measurement:
    """Run `command` to completion and return what it cost."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        try:
            proc = psutil.Process(child.pid)
        except psutil.Error:
            return
        while not done.is_set():
            peak = max(peak, _tree_rss(proc))
            done.wait(interval)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    kernel_peak = usage.ru_maxrss * 1024  # KiB on Linux
    return Measurement(
        command=[str(c) for c in command], returncode=child.returncode, wall_s=round(wall, 2),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
        peak_rss_mb=round(max(peak, kernel_peak) / 2**20, 1),
        tree_peak_rss_mb=round(peak / 2**20, 1), kernel_peak_rss_mb=round(kernel_peak / 2**20, 1),
    )
