"""The CSV writer of the outputs (outputs/run.py:write_table_csv): blocks formatted side by side
and written in order give the bytes of one Arrow write, for every kind of column."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from custseg.outputs import run as outputs_run
from custseg.runtime.parallel import ordered_stream


def _one_write(path, table: pa.Table) -> bytes:
    pacsv.write_csv(outputs_run.neutralise_table(table), str(path),
                    write_options=pacsv.WriteOptions(quoting_style="needed"))
    return path.read_bytes()


def _table(n: int) -> pa.Table:
    names = pa.array(["Lapsed, big spenders", 'VIP "gold"', "=cmd|' /C calc'!A0", "line\nbreak"])
    return pa.table({
        "customer_id": pa.array([f"0{i:05d}" if i % 3 else f"+{i}" for i in range(n)]),
        "total_spending": pa.array([i * 1.1 if i % 7 else None for i in range(n)], pa.float64()),
        "segment": pa.array([i % 4 for i in range(n)], pa.int64()),
        "segment_name": pa.DictionaryArray.from_arrays(pa.array([i % 4 for i in range(n)], pa.int32()), names),
        "borderline": pa.array([i % 5 == 0 for i in range(n)]),
        "p_alive": pa.array([1 / (i + 1) for i in range(n)], pa.float64()),
    })


@pytest.mark.parametrize("rows", [0, 1, 6, 7, 8, 50])
def test_blocks_give_the_bytes_of_one_write(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(outputs_run, "CSV_BLOCK_ROWS", 7)
    table = _table(rows)
    outputs_run.write_table_csv(tmp_path / "blocks.csv", table)
    written = (tmp_path / "blocks.csv").read_bytes()
    assert written == _one_write(tmp_path / "one.csv", table)
    assert written.count(b'"customer_id"') == 1  # the header once, whatever the blocks


def test_ordered_stream_keeps_the_order_and_bounds_the_work_ahead():
    running, most = [0], [0]
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
        time.sleep(0.002 * (i % 3))  # later items may finish first
        with lock:
            running[0] -= 1
        return i * i

    started = []

    def items():
        for i in range(40):
            started.append(i)
            yield i

    out = []
    for value in ordered_stream(work, items(), workers=2, ahead=2):
        # items submitted but not yet handed over: at most workers * ahead
        most[0] = max(most[0], len(started) - len(out))
        out.append(value)
    assert out == [i * i for i in range(40)]
    assert most[0] <= 4
