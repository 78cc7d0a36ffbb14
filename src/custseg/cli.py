"""The custseg command line: parse, call, print. Progress goes to stderr, results to stdout.

A user's mistake is one line on stderr and exit code 2; a traceback only with --debug.
"""

from __future__ import annotations

import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import CustsegError, Interrupted
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


_display = StageDisplay(err)


def _progress(kind: str, message: str) -> None:
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
        pairs[key.strip()] = val.strip()
    return pairs


def _print_result(result, directory: Path | None) -> None:
    s = result.summary
    out.print(f"{s['customers']:,} customers in {s['k']} segments ({s['k_reason']}).")
    table = Table(show_lines=False)
    for column in ("segment", "name", "customers", "share", "revenue"):
        table.add_column(column, overflow="fold")
    for r in result.profiles.itertuples():
        revenue = f"{r.revenue_share:.0%}" if hasattr(r, "revenue_share") else ""
        table.add_row(str(r.segment), r.segment_name, f"{r.customers:,}", f"{r.customer_share:.0%}", revenue)
    out.print(table)
    for r in result.profiles.itertuples():
        out.print(f"[bold]{r.segment} {r.segment_name}[/bold]: {r.description} {r.strategy}", markup=True,
                  highlight=False)
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
    date_format: str = typer.Option("auto", "--date-format", help="Dates: auto, iso, dmy (31/12/2024) or mdy."),
    fmt: str = typer.Option("auto", "--format", help="Format of the segments table: csv, parquet, or auto "
                                                     "(CSV up to 5,000,000 customers, Parquet above)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    engine: str = typer.Option("duckdb", help="Engine: duckdb (embedded) or spark."),
    memory_limit: Optional[str] = typer.Option(None, "--memory-limit",
                                               help="DuckDB memory limit, e.g. 4GB (default: an eighth of the RAM, at least 1GB)."),
    temp_dir: Optional[str] = typer.Option(None, "--temp-dir", help="Where DuckDB spills when memory is short."),
    threads: Optional[int] = typer.Option(None, help="Threads for DuckDB (default: all cores)."),
    spark_master: Optional[str] = typer.Option(None, "--spark-master", help="Spark master URL (default local[*])."),
    spark_conf: Optional[list[str]] = typer.Option(None, "--spark-conf", help="Spark setting key=value (repeat)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Segment customers from order lines and write segments, profiles, model and report."""
    from .engines import EngineOptions
    from .outputs import check_target
    from .pipeline import RunOptions
    from .pipeline import run as run_pipeline

    _State.quiet = quiet
    check_target(out_dir, force)
    options = RunOptions(
        schema=schema, mapping=_parse_pairs(map_, "--map"), sheet=sheet, date_format=date_format,
        features=features, scale=scale, k=k, k_max=k_max, seed=seed, n_init=n_init, sweep_sample=sweep_sample,
        silhouette_sample=silhouette_sample, top_products=top_products,
        engine=EngineOptions(engine=engine, memory_limit=memory_limit, temp_dir=temp_dir, threads=threads,
                             spark_master=spark_master, spark_conf=_parse_pairs(spark_conf, "--spark-conf")),
        command=_command_line(),
    )
    if fmt not in ("auto", "csv", "parquet"):
        raise CustsegError(f"--format {fmt!r} is unknown; use auto, csv or parquet.")
    result = run_pipeline(inputs, options, _progress)
    _progress("start", "writing: outputs")
    started = time.perf_counter()
    directory = result.to_dir(out_dir, force=force, report=not no_report, segments_format=fmt)
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

    _State.quiet = quiet
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


def _command_line() -> str:
    return "custseg " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def entry() -> None:
    """Console script: run the app, turning user errors into one line and exit code 2."""
    debug = "--debug" in sys.argv[1:]
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        app(standalone_mode=False)
    except CustsegError as exc:
        if debug:
            raise
        err.print(f"custseg: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("custseg: interrupted; no complete output was written.", markup=False)
        sys.exit(Interrupted.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors are handled below; anything else is a bug
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show(file=sys.stderr)
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            err.print("custseg: interrupted.", markup=False)
            sys.exit(130)
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(f"custseg: internal error: {type(exc).__name__}: {first} (run again with --debug for the "
                  "traceback, and please report it)", markup=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    entry()
