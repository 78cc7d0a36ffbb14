"""The custseg command line: parse, call, print. Progress goes to stderr, results to stdout.

A user's mistake is one line on stderr and exit code 2; a traceback only with --debug.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import signals
from .errors import CustsegError
from .progress import StageDisplay

app = typer.Typer(
    name="custseg",
    help="Customer segmentation with K-means: order lines in, named segments with strategies out.\n\n"
         "Start with 'custseg demo', then 'custseg run YOUR_ORDERS.csv'.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class _State:
    debug = False
    quiet = False


def _show_progress(quiet: bool) -> bool:
    """Progress on an interactive stderr (or when CUSTSEG_PROGRESS=1), never with --quiet; a pipe or a
    log file then holds only results and errors."""
    if quiet:
        return False
    return err.is_terminal or os.environ.get("CUSTSEG_PROGRESS") == "1"


_display = StageDisplay(err)


def _progress(kind: str, message: str) -> None:
    if kind == "warn":  # shown even with --quiet
        err.print(f"custseg: warning: {message}", markup=False, highlight=False, soft_wrap=True)
        return
    if _State.quiet:
        return
    _display(kind, message)


_progress.watch_engine = _display.watch_engine  # type: ignore[attr-defined]  # see pipeline.run


def _parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise CustsegError(f"{option} {value!r}: write it as key=value (e.g. {option} customer_id=Client).")
        key, val = key.strip(), val.strip()
        if key in pairs and pairs[key] != val:  # the last would silently win
            raise CustsegError(f"{option} {key}= is given twice ({pairs[key]} and {val}); give each {key} once.")
        pairs[key] = val
    return pairs


def _print_result(result, directory: Path | None) -> None:
    s = result.summary
    out.print(f"{s['customers']:,} customers in {s['k']} segments ({s['k_reason']}).")
    table = Table(show_lines=False)
    for column in ("segment", "name", "customers", "share", "revenue"):
        table.add_column(column, overflow="fold")
    for r in result.profiles.itertuples():
        revenue = f"{r.revenue_share:.0%}" if hasattr(r, "revenue_share") else ""
        table.add_row(str(r.segment), escape(r.segment_name), f"{r.customers:,}", f"{r.customer_share:.0%}", revenue)
    out.print(table)
    for r in result.profiles.itertuples():  # names may come from a model file: printed as text, never as markup
        out.print(f"[bold]{r.segment} {escape(r.segment_name)}[/bold]: {escape(r.description)} {escape(r.strategy)}",
                  markup=True, highlight=False)
    if directory is not None:
        out.print(f"Outputs in {directory}/ (report: {directory / 'report.html'})"
                  if (directory / "report.html").exists() else f"Outputs in {directory}/")


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of any error."),
) -> None:
    _State.debug = debug


@app.command()
def run(
    inputs: list[str] = typer.Argument(..., metavar="INPUT...",
                                       help="Order lines: CSV, Parquet or .xlsx files, globs or directories."),
    out_dir: Path = typer.Option(Path("custseg-out"), "--out", "-o", help="Output directory."),
    force: bool = typer.Option(False, "--force", help="Replace an existing, non-empty output directory."),
    schema: str = typer.Option("auto", help="Input schema: auto, shopify, online-retail or generic."),
    map_: Optional[list[str]] = typer.Option(
        None, "--map", help="Map a canonical column to a source column, e.g. --map customer_id=Client "
                            "(repeat it). Canonical: customer_id, order_id, order_date, product, quantity, "
                            "returned_quantity, amount, unit_price."),
    features: Optional[str] = typer.Option(
        None, help="Comma-separated features (default per schema): products_ordered, average_return_rate, "
                   "total_spending, order_count, avg_order_value, recency_days, tenure_days."),
    scale: str = typer.Option("log", help="Feature transform: log (log1p), log-standard, standard or none."),
    k: Optional[int] = typer.Option(None, "--k", help="Number of segments (default: chosen by the elbow method)."),
    k_max: int = typer.Option(15, "--k-max", help="Largest k tried by the sweep."),
    seed: int = typer.Option(42, help="Random seed: the same input and seed give the same segments."),
    n_init: int = typer.Option(10, "--n-init", help="k-means++ starts of the final model."),
    sweep_sample: int = typer.Option(100_000, "--sweep-sample",
                                     help="Customers sampled for the k sweep (the final fit uses everyone)."),
    silhouette_sample: int = typer.Option(10_000, "--silhouette-sample", help="Customers sampled for silhouette scores (at most 20000)."),
    top_products: int = typer.Option(10, "--top-products", help="Best sellers listed per segment."),
    sheet: Optional[str] = typer.Option(None, help="Worksheet of an .xlsx input (name or 0-based index)."),
    date_format: str = typer.Option("auto", "--date-format", help="Dates: auto, iso, dmy (31/12/2024), mdy or excel (day numbers)."),
    fmt: str = typer.Option("auto", "--format", help="Format of the segments table: csv, parquet, or auto "
                                                     "(CSV up to 5,000,000 customers, Parquet above)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    figures: Optional[str] = typer.Option(
        None, "--figures", help="Also write each report figure as an image under figures/: png (needs Chrome or "
                                "Chromium; set BROWSER_PATH if it is not found)."),
    engine: str = typer.Option("duckdb", help="Engine: duckdb (embedded) or spark."),
    memory_limit: Optional[str] = typer.Option(None, "--memory-limit",
                                               help="DuckDB memory limit, e.g. 4GB (default: a tenth of the RAM, at least 1GB)."),
    temp_dir: Optional[str] = typer.Option(None, "--temp-dir", help="Where DuckDB spills when memory is short."),
    threads: Optional[int] = typer.Option(None, help="Threads for DuckDB (default: all cores)."),
    spark_master: Optional[str] = typer.Option(None, "--spark-master", help="Spark master URL (default local[*])."),
    spark_conf: Optional[list[str]] = typer.Option(None, "--spark-conf", help="Spark setting key=value (repeat)."),
    spark_local_limit: int = typer.Option(
        2_000_000, "--spark-local-limit",
        help="Spark engine: up to this many customers are collected and clustered with scikit-learn; more stay "
             "in Spark and are clustered with MLlib."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
    model: Optional[Path] = typer.Option(
        None, "--model", help="Segment with this model.json (or run directory) instead of fitting a new one: "
                              "same features, segments, names and strategies; no k sweep."),
) -> None:
    """Segment customers from order lines and write segments, profiles, model and report."""
    from .engines import EngineOptions
    from .outputs import check_target
    from .pipeline import RunOptions
    from .pipeline import run as run_pipeline

    _State.quiet = not _show_progress(quiet)
    check_target(out_dir, force)
    options = RunOptions(
        schema=schema, mapping=_parse_pairs(map_, "--map"), sheet=sheet, date_format=date_format,
        features=features, scale=scale, k=k, k_max=k_max, seed=seed, n_init=n_init, sweep_sample=sweep_sample,
        silhouette_sample=silhouette_sample, top_products=top_products,
        engine=EngineOptions(engine=engine, memory_limit=memory_limit, temp_dir=temp_dir, threads=threads,
                             spark_master=spark_master, spark_conf=_parse_pairs(spark_conf, "--spark-conf"),
                             spark_local_limit=spark_local_limit),
        command=_command_line(), model=model,
    )
    if fmt not in ("auto", "csv", "parquet"):
        raise CustsegError(f"--format {fmt!r} is unknown; use auto, csv or parquet.")
    if figures is not None:
        from .report.report import check_figures

        check_figures(figures, report=not no_report)  # before the long part: say what is missing now
    result = run_pipeline(inputs, options, _progress)
    _progress("start", "writing: outputs")
    started = time.perf_counter()
    directory = result.to_dir(out_dir, force=force, report=not no_report, segments_format=fmt, figures=figures)
    _progress("end", f"writing: done in {time.perf_counter() - started:.1f} s")
    _print_result(result, directory)


@app.command()
def sample(
    out_file: Path = typer.Argument(..., metavar="OUT", help="File to write: .csv or .parquet."),
    rows: int = typer.Option(70_000, help="Number of order lines."),
    seed: int = typer.Option(42, help="Random seed (same rows and seed, same file)."),
    schema: str = typer.Option("shopify", help="shopify, online-retail or generic (customer/date/amount)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write synthetic, realistic order lines (for trying custseg and for benchmarks)."""
    from .sample import write_sample

    if out_file.exists() and not force:
        raise CustsegError(f"{out_file}: exists; use --force to overwrite it.")
    path = write_sample(out_file, schema=schema, rows=rows, seed=seed)
    out.print(f"Wrote {rows:,} {schema} order lines to {path}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("custseg-demo"), "--out", "-o", help="Output directory (replaced)."),
    rows: int = typer.Option(70_000, help="Order lines in the built-in Shopify-like sample."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Run the whole pipeline on built-in sample data (about 25,000 customers)."""
    from .pipeline import RunOptions
    from .pipeline import run as run_pipeline
    from .sample import write_sample

    _State.quiet = not _show_progress(quiet)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "summary.json").exists():
        raise CustsegError(f"{out_dir}: exists and is not a custseg demo output; choose another --out.")
    with tempfile.TemporaryDirectory(prefix="custseg-demo-") as tmp:
        data = Path(tmp) / "shopify_orders.csv"
        _progress("start", f"sample: writing {rows:,} Shopify-like order lines")
        write_sample(data, "shopify", rows, 42)
        result = run_pipeline([str(data)], RunOptions(command=_command_line()), _progress)
    directory = result.to_dir(out_dir, force=True)
    _print_result(result, directory)
    out.print(f"Open the report: {(directory / 'report.html').resolve()}")


@app.command()
def predict(
    model: Path = typer.Argument(..., metavar="MODEL", help="model.json written by 'custseg run' (or its run directory)."),
    inputs: list[str] = typer.Argument(..., metavar="INPUT...",
                                       help="Order lines: CSV, Parquet or .xlsx files, globs or directories."),
    out_file: Path = typer.Option(..., "--out", "-o", help="File to write: .csv or .parquet."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
    schema: str = typer.Option("auto", help="Input schema: auto, shopify, online-retail or generic."),
    map_: Optional[list[str]] = typer.Option(
        None, "--map", help="Map a canonical column to a source column, e.g. --map customer_id=Client (repeat it); "
                            "give the same mapping as the run that made the model."),
    sheet: Optional[str] = typer.Option(None, help="Worksheet of an .xlsx input (name or 0-based index)."),
    date_format: str = typer.Option("auto", "--date-format", help="Dates: auto, iso, dmy (31/12/2024), mdy or excel (day numbers)."),
    engine: str = typer.Option("duckdb", help="Engine: duckdb (embedded) or spark."),
    memory_limit: Optional[str] = typer.Option(None, "--memory-limit", help="DuckDB memory limit, e.g. 4GB."),
    temp_dir: Optional[str] = typer.Option(None, "--temp-dir", help="Where DuckDB spills when memory is short."),
    threads: Optional[int] = typer.Option(None, help="Threads for DuckDB (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Score customers with a saved model: customer_id, the model's features, segment, segment_name.

    The order lines are read and cleaned as in 'custseg run'; each customer goes to the nearest
    of the model's segments (no refit). Scoring a run's own input reproduces its segments.csv.
    """
    from .engines import EngineOptions
    from .scoring import score, write_predictions

    _State.quiet = quiet
    if out_file.exists() and not force:
        raise CustsegError(f"{out_file}: exists; use --force to overwrite it or choose another --out.")
    predictions = score(
        model, inputs, schema=schema, mapping=_parse_pairs(map_, "--map"), sheet=sheet, date_format=date_format,
        engine=EngineOptions(engine=engine, memory_limit=memory_limit, temp_dir=temp_dir, threads=threads),
        progress=_progress,
    )
    path = write_predictions(predictions, out_file, force=force)
    counts = predictions.counts()
    out.print(f"{predictions.table.num_rows:,} customers scored with {model} into {len(counts)} segments:")
    for segment_id, (name, count) in enumerate(counts.items()):
        out.print(f"  {segment_id} {name}: {count:,}", markup=False, highlight=False)
    out.print(f"Wrote {path}")


@app.command()
def compare(
    old_run: Path = typer.Argument(..., metavar="OLD_RUN_DIR", help="Output directory of the earlier run."),
    new_run: Path = typer.Argument(..., metavar="NEW_RUN_DIR", help="Output directory of the later run."),
    out_dir: Path = typer.Option(Path("custseg-compare"), "--out", "-o", help="Output directory."),
    force: bool = typer.Option(False, "--force", help="Replace an existing, non-empty output directory."),
) -> None:
    """Who moved between segments from one run (period) to the next: migration.csv, movers.csv, compare.html.

    Customers are matched by id and segments by name, so the runs may use different models
    (best: run the second period with 'custseg run ... --model OLD_RUN_DIR/model.json').
    """
    from .compare import compare_runs, write_comparison
    from .outputs import check_target

    check_target(out_dir, force)
    comparison = compare_runs(old_run, new_run)
    directory = write_comparison(comparison, out_dir, force=force)
    t = comparison.totals
    out.print(f"{t['customers']:,} customers in either period: {t['stayed']:,} kept their segment, "
              f"{t['moved']:,} moved, {t['new']:,} new, {t['absent']:,} absent from the new period.")
    out.print(f"Outputs in {directory}/ (migration.csv, movers.csv, compare.html)")


def _command_line() -> str:
    return "custseg " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _exit_interrupted() -> None:
    """One line for Ctrl-C / SIGTERM; exit 130 (SIGINT) or 143 (SIGTERM)."""
    name = signal.Signals(signals.received() or signal.SIGINT).name
    err.print(f"custseg: interrupted ({name}); no complete output was written.", markup=False)
    sys.exit(signals.exit_code())


def entry() -> None:
    """Console script: run the app, turning user errors into one line and exit code 2."""
    from typer.exceptions import Abort, Exit, TyperException

    debug = "--debug" in sys.argv[1:]
    signals.install()  # SIGINT and SIGTERM -> KeyboardInterrupt, and DuckDB queries interrupted
    try:
        code = app(standalone_mode=False)  # typer turns a KeyboardInterrupt into a return value of 130
        if signals.received():
            _exit_interrupted()
        if isinstance(code, int) and code:
            sys.exit(code)
    except CustsegError as exc:
        if signals.received():  # e.g. an interrupted query reported as a read error
            _exit_interrupted()
        if debug:
            raise
        err.print(f"custseg: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, Abort):
        _exit_interrupted()
    except Exit as exc:
        sys.exit(exc.exit_code)
    except TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        if signals.received():
            _exit_interrupted()
        if hasattr(exc, "show"):
            exc.show(file=sys.stderr)
        else:
            err.print(f"custseg: error: {exc}", markup=False)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except SystemExit:
        raise
    except Exception as exc:  # anything else is a bug
        if signals.received():
            _exit_interrupted()
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(f"custseg: internal error: {type(exc).__name__}: {first} (run again with --debug for the "
                  "traceback, and please report it)", markup=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    entry()
