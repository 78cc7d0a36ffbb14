"""Writing a run's outputs: into a temporary directory beside the target, renamed into place
when complete (summary.json last), so an output directory is either whole or absent."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import CustsegError
from ..model import json_ready
from ..runtime.parallel import ordered_stream
from .atomic import atomic_directory
from .audiences import neutralised_column, write_audiences
from .targets import check_target, write_error
from .workbook import check_sheets, run_sheets, write_workbook

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SEGMENT_FORMATS = ("auto", "csv", "parquet", "xlsx")
PARQUET_FROM = 5_000_000  # customers from which --format auto writes segments.parquet


def neutralise(text: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(text, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(json_ready(value), indent=2, allow_nan=False, ensure_ascii=False) + "\n",
                    encoding="utf-8")


# Cells written exactly as read, never neutralised: users join on them (docs/formats.md).
VERBATIM_COLUMNS = ("customer_id",)


def neutralise_table(table: pa.Table) -> pa.Table:
    """Every text cell but the ids (VERBATIM_COLUMNS) that a spreadsheet would run as a formula
    gets a leading apostrophe: the one neutraliser of every CSV output (names, descriptions,
    strategies, products, whatever their origin: the data, a model file)."""
    def text(dtype):
        return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)

    def fixed(values):
        risky = pc.starts_with(values, FORMULA_STARTS[0])
        for start in FORMULA_STARTS[1:]:
            risky = pc.or_(risky, pc.starts_with(values, start))
        if not pc.any(risky).as_py():
            return values
        return pc.if_else(risky, pc.binary_join_element_wise("'", values, ""), values)

    for index, name in enumerate(table.column_names):
        column = table.column(name)
        if name in VERBATIM_COLUMNS:
            continue
        if pa.types.is_dictionary(column.type) and text(column.type.value_type):
            # segment names: a few distinct values, neutralised once each
            chunks = [pa.DictionaryArray.from_arrays(chunk.indices, fixed(chunk.dictionary)) for chunk in column.chunks]
            table = table.set_column(index, name, pa.chunked_array(chunks, type=column.type))
        elif text(column.type):
            table = table.set_column(index, name, fixed(column))
    return table


#: Rows formatted at a time by write_table_csv (a block of segments.csv is ~20 MB), and the most
#: threads formatting (with two blocks each waiting: at most ~160 MB of text in memory).
CSV_BLOCK_ROWS = 1 << 17
CSV_THREADS = 4


def write_table_csv(path: Path, table: pa.Table) -> None:
    """The table as CSV (text cells neutralised, quoted where needed). Arrow formats a block of rows
    without holding Python's lock: blocks are formatted side by side, one per core, and written in
    order (the same bytes as one write_csv; 3.7M customers: 1.5 s instead of 2.4 s)."""
    table = neutralise_table(table)

    def block(start: int) -> pa.Buffer:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table.slice(start, CSV_BLOCK_ROWS), sink, write_options=pacsv.WriteOptions(
            quoting_style="needed", include_header=start == 0))
        return sink.getvalue()

    with open(path, "wb") as out:
        for text in ordered_stream(block, range(0, max(table.num_rows, 1), CSV_BLOCK_ROWS),
                                   workers=min(os.cpu_count() or 1, CSV_THREADS)):
            out.write(text)


def write_frame_csv(path: Path, frame: pd.DataFrame, text_columns: tuple[str, ...] = ()) -> None:
    """A frame as CSV; every text column but the ids neutralised (`text_columns`: kept for callers,
    the neutraliser covers every text column anyway)."""
    frame = frame.copy()
    for column in frame.columns:
        if column not in VERBATIM_COLUMNS and (frame[column].dtype == object or pd.api.types.is_string_dtype(
                frame[column].dtype)):
            frame[column] = frame[column].map(neutralise)
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")


def write_segments(directory: Path, table: pa.Table, fmt: str) -> str:
    if fmt == "parquet":
        pq.write_table(table, directory / "segments.parquet", compression="zstd")
        return "segments.parquet"
    write_table_csv(directory / "segments.csv", table)
    return "segments.csv"


def _kept_neutralised(result) -> pa.Table:
    """The segments table for CSV: --keep text a spreadsheet would run as a formula gets an apostrophe."""
    table = result.segments_table
    for name in result.summary.get("keep") or []:
        where = table.schema.get_field_index(name)
        table = table.set_column(where, name, neutralised_column(table.column(name)))
    return table


def write_segments_spark(directory: Path, frame, fmt: str) -> str:
    """Segments that stayed in Spark, written by Spark as a directory of part files."""
    name = f"segments.{fmt}"
    if fmt == "csv":  # the same neutraliser as neutralise_table, as a Spark expression
        from pyspark.sql import functions as F  # optional dependency

        for column, dtype in frame.dtypes:
            if dtype == "string" and column not in VERBATIM_COLUMNS:
                value = F.col(column)
                frame = frame.withColumn(column, F.when(value.rlike("^[=+\\-@\t\r]"), F.concat(F.lit("'"), value))
                                         .otherwise(value))
    writer = frame.write.mode("error")
    if fmt == "parquet":
        writer.option("compression", "zstd").parquet(str(directory / name))
    else:
        writer.option("header", True).option("quoteAll", False).csv(str(directory / name))
    return name


def segments_format_for(requested: str | None, customers: int, in_spark: bool = False) -> tuple[str, str]:
    """The segments table's format and why: auto is CSV up to PARQUET_FROM customers, Parquet above
    (and always Parquet when the segments stay in Spark)."""
    requested = requested or "auto"
    if requested not in SEGMENT_FORMATS:
        raise CustsegError(f"--format {requested!r} is unknown; use auto, csv, parquet or xlsx.")
    if requested == "xlsx":  # the workbook comes beside the segments table, which is CSV
        return "csv", "CSV, with the workbook segments.xlsx beside it (--format xlsx)"
    if requested != "auto":
        return requested, f"--format {requested}"
    if in_spark:
        return "parquet", "a Parquet directory written by Spark, as the segments stay in Spark"
    if customers > PARQUET_FROM:
        return "parquet", (f"Parquet, as there are more than {PARQUET_FROM:,} customers (a CSV file would be "
                           "large and slow to open); use --format csv for CSV")
    return "csv", f"CSV, as there are at most {PARQUET_FROM:,} customers"


def write_run(result, path: str | os.PathLike, force: bool = False, report: bool = True,
              segments_format: str | None = "auto", figures: str | None = None, audiences: bool = False) -> Path:
    """Write all outputs of a SegmentationResult into `path`."""
    segments_format_for(segments_format, 0)  # refuse an unknown format before any work
    extras = _check_extras(result, segments_format == "xlsx", audiences)
    target = check_target(path, force, inputs=result.summary.get("inputs") or ())
    with atomic_directory(target, lambda exc: write_error(target, exc)) as tmp:
        write_into(result, tmp, report=report, segments_format=segments_format, figures=figures, extras=extras)
    return target


def _check_extras(result, workbook: bool, audiences: bool) -> dict[str, bool]:
    """segments.xlsx and audiences/ need every customer in memory (and the workbook, a sheet that holds them)."""
    if (workbook or audiences) and getattr(result, "segments_frame", None) is not None:
        raise CustsegError(f"{'--format xlsx' if workbook else '--audiences'} needs the customer table in memory; "
                           "the segments stayed in Spark (above --spark-local-limit).")
    if workbook:
        check_sheets({"segments": result.segments_table})  # refused before anything is written
    return {"workbook": workbook, "audiences": audiences}


def write_into(result, directory: Path, report: bool = True, segments_format: str | None = "auto",
               figures: str | None = None, extras: dict[str, bool] | None = None) -> None:
    frame = getattr(result, "segments_frame", None)
    fmt, why = segments_format_for(segments_format, result.segments_table.num_rows, in_spark=frame is not None)
    extras = extras or {}
    if frame is not None:  # Spark's part files, written by Spark
        files = [write_segments_spark(directory, frame, fmt)]
        files += _write_rest(result, directory, report, figures)
        files += write_extras(result, directory, **extras)
    else:
        # Arrow writes the CSV or Parquet without holding Python's lock: a thread does it while the
        # report is built (37M customers: segments.parquet, 9.4 s, beside the report: the writing
        # 24 -> 18.6 s, its peak 7.39 GiB by memory_by_stage.py, was 7.35, under the evidence step's
        # 8.8). Leaving the block waits for it, also on an error or Ctrl-C, so nothing writes into the
        # directory once this returns or raises.
        table = _kept_neutralised(result) if fmt == "csv" else result.segments_table
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="custseg-write") as pool:
            segments = pool.submit(write_segments, directory, table, fmt)
            rest = _write_rest(result, directory, report, figures)
        files = [segments.result(), *rest]
        files += write_extras(result, directory, **extras)
    summary = dict(result.summary)
    summary["outputs"] = files + ["summary.json"]
    summary["segments_format"] = {"file": files[0], "reason": why}
    write_json(directory / "summary.json", summary)  # last: its presence means the run is complete


def write_extras(result, directory: Path, workbook: bool = False, audiences: bool = False) -> list[str]:
    """segments.xlsx (--format xlsx) and audiences/ (--audiences); returns the files written."""
    files = []
    if workbook:
        write_workbook(directory / "segments.xlsx", run_sheets(result.segments_table, result.profiles,
                                                               result.best_sellers, result.k_selection))
        files.append("segments.xlsx")
    if audiences:
        keep = list(result.summary.get("keep") or [])
        files += write_audiences(directory, result.segments_table, list(result.model.segment_names), keep)
    return files


def _write_rest(result, directory: Path, report: bool, figures: str | None) -> list[str]:
    """Every output but the segments table and summary.json; returns their file names."""
    write_frame_csv(directory / "profiles.csv", result.profiles, ("segment_name", "description", "strategy"))
    write_frame_csv(directory / "k_selection.csv", result.k_selection)
    write_frame_csv(directory / "best_sellers.csv", result.best_sellers, ("segment_name", "product", "product_name"))
    write_json(directory / "data_quality.json", result.data_quality)
    result.model.save(directory / "model.json")
    files = ["profiles.csv", "k_selection.csv", "best_sellers.csv", "data_quality.json", "model.json"]
    if report:
        from .report.page import write_report  # plotly: heavy, only with a report

        files += write_report(result, directory, figures=figures)
    return files
