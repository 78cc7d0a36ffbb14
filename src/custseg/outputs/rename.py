"""custseg rename RUN_DIR 2="Lapsed big spenders" (or --names FILE): new segment names in every
output of a run, consistently and atomically (issue 17).

The names live in model.json (segments[i].name), profiles.csv, best_sellers.csv and the segments
table (segments.csv, segments.parquet, or Spark's Parquet part files) in the segment_name column,
in the audiences' file names and in segments.xlsx; summary.json records each rename. Everything is
written into a temporary copy of the run directory (unchanged files hard-linked where the file
system allows, else copied), which then replaces the run directory: readers see the old run or
the renamed one, never a mix. Cells are replaced by segment number, so every other byte of the
CSV files stays as it was (customer ids exactly as read).

The report shows the names too. Rebuilding it needs the report builder, which the caller passes
as `rebuild_report(directory, model) -> list of files written`; it runs on the temporary copy
before the swap. Without it the stale report (report.html, figures/) is removed and
summary.json's outputs say so, rather than leave a report that contradicts the other files.

Refused (CustsegError, nothing changed): a segment number the model does not have, an empty name,
a name longer than the model allows or with control characters, a name starting with = + - @ (a
spreadsheet would run it as a formula), compare's reserved names, and names that would collide
(case and surrounding spaces ignored) with each other or with a segment not renamed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import CustsegError
from ..profiles.explain import CUSTOMER_COLUMN_TYPES
from ..profiles.lifecycle import is_lifecycle_column

MAX_NAME = 200                                    # as model.py allows
RESERVED_NAMES = ("(new customer)", "(absent)")   # compare's row and column labels
FORMULA_STARTS = ("=", "+", "-", "@")
NAME_TABLES = ("profiles.csv", "best_sellers.csv")
REPORT_FILES = ("report.html", "figures")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ASSIGNMENT = re.compile(r"^\s*(-?\d+)\s*=(.*)$", re.S)

RebuildReport = Callable[[Path, object], Sequence[str]]


@dataclass
class Renamed:
    directory: Path
    changes: list[dict] = field(default_factory=list)   # segment, from, to
    report: str = "unchanged"                            # rebuilt, removed or unchanged (no report)
    files: list[str] = field(default_factory=list)       # files rewritten


# ---------------------------------------------------------------------------- reading the new names


def parse_assignments(items: Sequence[str]) -> dict[int, str]:
    """`2="Lapsed big spenders"` arguments (the shell has removed the quotes) as {segment: name}."""
    out: dict[int, str] = {}
    for item in items:
        match = _ASSIGNMENT.match(item)
        if not match:
            raise CustsegError(f"{item!r}: write a new name as NUMBER=NAME, e.g. 2=\"Lapsed big spenders\".")
        number, name = int(match.group(1)), match.group(2).strip()
        if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
            name = name[1:-1].strip()
        if number in out:
            raise CustsegError(f"segment {number} is given two new names ({out[number]!r} and {name!r}).")
        out[number] = name
    return out


def read_names_file(path: str | os.PathLike) -> dict[int, str]:
    """A --names file: lines NUMBER=NAME (blank lines and lines starting with # ignored), or a CSV
    with the columns segment and segment_name (such as an edited profiles.csv)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CustsegError(f"{path}: cannot be read as a names file ({getattr(exc, 'strerror', None) or exc}).") \
            from exc
    first = next((line for line in text.splitlines() if line.strip()), "")
    header = next(csv.reader([first]), [])
    if "segment" in header and "segment_name" in header:
        rows = list(csv.DictReader(io.StringIO(text)))
        items = []
        for i, row in enumerate(rows, start=2):
            number = (row.get("segment") or "").strip()
            if not re.fullmatch(r"-?\d+", number):
                raise CustsegError(f"{path}: row {i} has no segment number.")
            items.append(f"{number}={row.get('segment_name') or ''}")
        return parse_assignments(items)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        return parse_assignments(lines)
    except CustsegError as exc:
        raise CustsegError(f"{path}: {exc}") from exc


def check_names(current: Sequence[str], new: Mapping[int, str]) -> list[str]:
    """All segment names after the rename (by segment number), or CustsegError."""
    k = len(current)
    if not new:
        raise CustsegError("no new names given; write NUMBER=NAME, e.g. 2=\"Lapsed big spenders\".")
    for number, name in new.items():
        if not 0 <= number < k:
            raise CustsegError(f"segment {number} does not exist; this run's segments are 0 to {k - 1} "
                               f"({', '.join(f'{i}={n}' for i, n in enumerate(current))}).")
        if not name.strip():
            raise CustsegError(f"segment {number}: the new name is empty.")
        if len(name) > MAX_NAME or _CONTROL.search(name):
            raise CustsegError(f"segment {number}: a name is one line of at most {MAX_NAME} characters.")
        if name.startswith(FORMULA_STARTS):
            raise CustsegError(f"segment {number}: a name may not start with {name[0]!r}, which a spreadsheet "
                               "would take for a formula.")
        if name in RESERVED_NAMES:
            raise CustsegError(f"segment {number}: {name!r} is reserved by 'custseg compare'; choose another name.")
    names = [new.get(i, n) for i, n in enumerate(current)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = name.strip().casefold()
        if key in seen:
            raise CustsegError(f"segments {seen[key]} and {i} would both be called {name!r}; names must differ.")
        seen[key] = i
    return names


# ---------------------------------------------------------------------------- rewriting a run


def rename_run(run_dir: str | os.PathLike, new: Mapping[int, str],
               rebuild_report: RebuildReport | None = None) -> Renamed:
    """Give the segments of the run in `run_dir` the names in `new` ({segment number: name})."""
    from ..model import SegmentationModel  # the validating loader (model.json's format)

    run_dir = Path(run_dir)
    model_path, summary_path = run_dir / "model.json", run_dir / "summary.json"
    if not run_dir.is_dir() or not model_path.is_file() or not summary_path.is_file():
        raise CustsegError(f"{run_dir}: not a complete run directory (model.json and summary.json are written "
                           "by 'custseg run').")
    model_text = model_path.read_text(encoding="utf-8")
    model = SegmentationModel.from_json(model_text, str(model_path))
    old_names = model.segment_names
    names = check_names(old_names, new)
    changes = [{"segment": i, "from": old, "to": now} for i, (old, now) in enumerate(zip(old_names, names))
               if old != now]
    result = Renamed(directory=run_dir, changes=changes)
    if not changes:
        return result
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CustsegError(f"{summary_path}: not valid JSON ({exc}).") from exc

    tmp = run_dir.parent / f".{run_dir.name}.rename-{os.getpid()}"
    old = run_dir.parent / f".{run_dir.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _link_copy(run_dir, tmp)
        # model.json: only the names change; numbers are written back as they were read (repr).
        data = json.loads(model_text)
        for i, name in enumerate(names):
            data["segments"][i]["name"] = name
        text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False)
        renamed_model = SegmentationModel.from_json(text, str(model_path))
        _replace_file(tmp / "model.json", text + "\n")
        result.files.append("model.json")
        for table in NAME_TABLES:
            if (tmp / table).is_file():
                _rename_in_pandas_csv(tmp / table, names)
                result.files.append(table)
        result.files += _rename_segments(tmp, names, model.features)
        result.files += _rename_audiences(tmp, old_names, names)
        if (tmp / "segments.xlsx").is_file():
            _rebuild_workbook(tmp, model.features)
            result.files.append("segments.xlsx")
        outputs = list(summary.get("outputs") or [])
        if (tmp / "report.html").exists():
            for stale in REPORT_FILES:
                _remove(tmp / stale)
            if rebuild_report is not None:
                written = list(rebuild_report(tmp, renamed_model))
                result.report = "rebuilt"
                result.files += written
                outputs = [f for f in outputs if f not in REPORT_FILES and not f.startswith("figures/")]
                outputs[-1:-1] = [f for f in written if f not in outputs]
            else:
                result.report = "removed"
                outputs = [f for f in outputs if f not in REPORT_FILES and not f.startswith("figures/")]
        summary["outputs"] = outputs
        summary["renamed"] = list(summary.get("renamed") or []) + changes
        _replace_file(tmp / "summary.json",
                      json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n")
        result.files.append("summary.json")
        # the swap: the old directory aside, the new one in, the old one removed
        shutil.rmtree(old, ignore_errors=True)
        os.replace(run_dir, old)
        try:
            os.replace(tmp, run_dir)
        except BaseException:
            os.replace(old, run_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CustsegError(f"{run_dir}: cannot rename the segments ({exc.strerror or exc}); the run is "
                           "unchanged.") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _link_copy(src: Path, dst: Path) -> None:
    """A copy of the run directory whose files are hard links where possible. A file that is
    rewritten is replaced (a new inode), never written through the link."""
    shutil.copytree(src, dst, copy_function=_link_or_copy, symlinks=True)


def _replace_file(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)  # break the hard link to the original
    path.write_text(text, encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _rename_in_pandas_csv(path: Path, names: list[str]) -> None:
    """Replace segment_name by segment number in a CSV written by pandas (minimal quoting): every
    other cell is written back as read."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or "segment" not in rows[0] or "segment_name" not in rows[0]:
        raise CustsegError(f"{path}: has no segment and segment_name columns; is it from 'custseg run'?")
    seg, col = rows[0].index("segment"), rows[0].index("segment_name")
    for i, row in enumerate(rows[1:], start=2):
        try:
            row[col] = names[int(row[seg])]
        except (ValueError, IndexError) as exc:
            raise CustsegError(f"{path}: row {i} has segment {row[seg] if seg < len(row) else ''!r}, which "
                               f"model.json does not have; the directory mixes two runs.") from exc
    path.unlink()
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)


def _names_column(segment: pa.Array, like: pa.DataType, names: list[str]) -> pa.Array:
    indices = segment.cast(pa.int32())
    if pc.any(pc.or_(pc.less(indices, 0),
                                     pc.greater_equal(indices, len(names)))).as_py():
        raise CustsegError("the segments table holds a segment number model.json does not have; the directory "
                           "mixes two runs.")
    dictionary = pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string()))
    return dictionary if pa.types.is_dictionary(like) else dictionary.cast(like)


def _renamed_batch(batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    columns = list(batch.columns)
    where = batch.schema.get_field_index("segment_name")
    columns[where] = _names_column(batch.column(batch.schema.get_field_index("segment")), batch.schema.field(where).type,
                                   names)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _rename_segments(tmp: Path, names: list[str], features: list[str]) -> list[str]:
    written = []
    for name in ("segments.csv", "segments.parquet"):
        path = tmp / name
        if path.is_file():
            (_rewrite_csv if name.endswith(".csv") else _rewrite_parquet)(path, names, features)
            written.append(name)
        elif path.is_dir():
            if name.endswith(".csv"):
                raise CustsegError(f"{path}: Spark's CSV part files cannot be renamed in place; rerun with "
                                   "--format parquet or rename with the model (run --model).")
            for part in sorted(path.glob("*.parquet")):
                _rewrite_parquet(part, names, features)
            written.append(name)
    return written


def _check_columns(path: Path, columns: list[str]) -> None:
    if "segment" not in columns or "segment_name" not in columns:
        raise CustsegError(f"{path}: has no segment and segment_name columns; is it from 'custseg run'?")


def _rewrite_parquet(path: Path, names: list[str], features: list[str]) -> None:
    source = pq.ParquetFile(path)
    _check_columns(path, source.schema_arrow.names)
    out = path.with_name(path.name + ".renamed")
    with pq.ParquetWriter(out, source.schema_arrow, compression="zstd") as writer:
        for batch in source.iter_batches(batch_size=1 << 16):
            writer.write_batch(_renamed_batch(batch, names))
    source.close()
    os.replace(out, path)  # replaces the hard link, not the original


def _rewrite_csv(path: Path, names: list[str], features: list[str]) -> None:
    """segments.csv as Arrow wrote it (strings quoted, numbers not): read with the types it was
    written from (ids and text as text, features as float64, segment as an integer), streamed."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
    _check_columns(path, header)
    types = {c: pa.string() for c in header}
    types.update({f: pa.float64() for f in features if f in types})
    types.update({c: pa.float64() for c in header if is_lifecycle_column(c)})  # numbers, written unquoted
    types["segment"] = pa.int64()
    types.update({c: t for c, t in CUSTOMER_COLUMN_TYPES.items() if c in types})  # RFM and margins
    source = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24),
                            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                                 quoted_strings_can_be_null=False))
    out = path.with_name(path.name + ".renamed")
    with pacsv.CSVWriter(out, source.schema, write_options=pacsv.WriteOptions(quoting_style="needed")) as writer:
        for batch in source:
            writer.write_batch(_renamed_batch(batch, names))
    os.replace(out, path)


def _rename_audiences(tmp: Path, old_names: list[str], names: list[str]) -> list[str]:
    from .audiences import AUDIENCES_DIR, audience_file_name

    directory = tmp / AUDIENCES_DIR
    if not directory.is_dir():
        return []
    moved = []
    for i, (old, now) in enumerate(zip(old_names, names)):
        before, after = directory / audience_file_name(i, old), directory / audience_file_name(i, now)
        if before != after and before.is_file():
            os.replace(before, after)
            moved.append(f"{AUDIENCES_DIR}/{after.name}")
    return moved


def read_segments(tmp: Path, features: list[str]) -> pa.Table | None:
    """The run's segments table read back with the types it was written from (None: no table, or
    Spark's CSV part files)."""
    path = tmp / "segments.parquet"
    if path.is_file() or (path.is_dir() and any(path.glob("*.parquet"))):
        return pq.read_table(path)
    if (tmp / "segments.csv").is_file():
        with open(tmp / "segments.csv", encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
        types = {c: pa.string() for c in header}
        types.update({f: pa.float64() for f in features if f in types})
        types.update({c: pa.float64() for c in header if is_lifecycle_column(c)})  # numbers, written unquoted
        types.update({c: t for c, t in CUSTOMER_COLUMN_TYPES.items() if c in types})  # RFM and margins
        types["segment"] = pa.int64()
        return pacsv.read_csv(tmp / "segments.csv", convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False))
    return None


def report_from_files(directory: Path, model) -> Sequence[str]:
    """A `rebuild_report` hook: report.html written again from the run's own files (segments table,
    profiles, best sellers, k selection, data quality, summary) and the renamed model. The segments
    table holds the clustering features only, so the rebuilt report shows those (the features that
    were computed but not clustered on are left out of its distributions)."""
    import pandas as pd

    from .result import SegmentationResult  # the report reads a result; built here from the files
    from .report.page import write_report  # plotly and jinja2: heavy

    directory = Path(directory)
    segments = read_segments(directory, list(model.features))
    if segments is None:
        raise CustsegError(f"{directory}: the segments table cannot be read back to rebuild the report.")
    summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))

    def frame(name: str, text: tuple[str, ...] = ()) -> pd.DataFrame:
        path = directory / name
        return pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False, na_values=[""]) \
            if path.is_file() else pd.DataFrame()

    quality_path = directory / "data_quality.json"
    result = SegmentationResult(
        segments_table=segments, profiles=frame("profiles.csv", ("segment_name", "description", "strategy")),
        k_selection=frame("k_selection.csv"),
        best_sellers=frame("best_sellers.csv", ("segment_name", "product", "product_name")),
        data_quality=json.loads(quality_path.read_text(encoding="utf-8")) if quality_path.is_file() else {},
        summary=summary, model=model, features=list(model.features),
        all_features=segments.select(["customer_id", *model.features]))
    return write_report(result, directory)


def _rebuild_workbook(tmp: Path, features: list[str]) -> None:
    """segments.xlsx again, from the renamed tables."""
    import pandas as pd

    from .workbook import run_sheets, write_workbook

    segments = read_segments(tmp, features)

    def frame(name: str, text: tuple[str, ...]):
        path = tmp / name
        if not path.is_file():
            return None
        return pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False, na_values=[""])

    sheets = run_sheets(segments, frame("profiles.csv", ("segment_name", "description", "strategy")),
                        frame("best_sellers.csv", ("segment_name", "product", "product_name")),
                        frame("k_selection.csv", ()))
    (tmp / "segments.xlsx").unlink()
    write_workbook(tmp / "segments.xlsx", sheets)
