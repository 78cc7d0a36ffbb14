"""--audiences: one CSV per segment, safe names, ids as read, the kept columns beside."""

from __future__ import annotations

import csv

import pyarrow as pa
import pytest

from custseg.outputs.audiences import slug, write_audiences
from custseg.errors import CustsegError


def _read(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _table() -> pa.Table:
    return pa.table({
        "customer_id": ["007", "=1+1", "3", "1e5", "x,y"],
        "segment": pa.array([2, 0, 2, 0, 2], pa.int32()),
        "email": ["a@x.com", "b@x.com", "=cmd|'/c calc'!A1", None, "e@x.com"],
        "country": ["FR", "DE", "FR", "DE", "FR"],
        "total_spending": [1.0, 2.0, 3.0, 4.0, 5.0],
    })


HOSTILE = ["../x", "a/b", "Lapsed big spenders", "..", ""]  # segment 4 has no customers


def test_one_file_per_segment_with_safe_unique_names(tmp_path):
    written = write_audiences(tmp_path, _table(), HOSTILE, ["email", "country"])
    assert written == ["audiences/0-x.csv", "audiences/1-a-b.csv", "audiences/2-lapsed-big-spenders.csv",
                       "audiences/3-segment.csv", "audiences/4-segment.csv"]
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(written)  # nothing written outside audiences/, no temporary left


def test_contents_ids_exact_and_kept_columns(tmp_path):
    write_audiences(tmp_path, _table(), HOSTILE, ["email", "country"])
    rows = _read(tmp_path / "audiences/2-lapsed-big-spenders.csv")
    assert rows == [["customer_id", "email", "country"], ["007", "a@x.com", "FR"],
                    ["3", "'=cmd|'/c calc'!A1", "FR"], ["x,y", "e@x.com", "FR"]]
    rows = _read(tmp_path / "audiences/0-x.csv")
    assert rows == [["customer_id", "email", "country"], ["=1+1", "b@x.com", "DE"], ["1e5", "", "DE"]]
    assert _read(tmp_path / "audiences/1-a-b.csv") == [["customer_id", "email", "country"]]


def test_without_keep_only_ids(tmp_path):
    write_audiences(tmp_path, _table(), {0: "A", 2: "B"})
    assert _read(tmp_path / "audiences/2-b.csv") == [["customer_id"], ["007"], ["3"], ["x,y"]]


def test_replaces_an_old_audiences_directory(tmp_path):
    (tmp_path / "audiences").mkdir()
    (tmp_path / "audiences" / "9-old.csv").write_text("old")
    write_audiences(tmp_path, _table(), {0: "A", 2: "B"})
    assert sorted(p.name for p in (tmp_path / "audiences").iterdir()) == ["0-a.csv", "2-b.csv"]


def test_unknown_keep_column_and_unnamed_segment_refused(tmp_path):
    with pytest.raises(CustsegError, match="phone"):
        write_audiences(tmp_path, _table(), HOSTILE, ["phone"])
    with pytest.raises(CustsegError, match="segment\\(s\\) 2"):
        write_audiences(tmp_path, _table(), {0: "A"})
    assert not (tmp_path / "audiences").exists()


@pytest.mark.parametrize("name,expected", [
    ("Lapsed big spenders", "lapsed-big-spenders"), ("../../etc/passwd", "etc-passwd"), ("a\\b", "a-b"),
    ("Café crème", "cafe-creme"), ("日本", "segment"), ("CON", "con"), ("  --  ", "segment"),
    ("x" * 100, "x" * 60), ("High-value (loyal, no returns)", "high-value-loyal-no-returns"),
])
def test_slug(name, expected):
    assert slug(name) == expected
