"""The custseg command line: parse, call, print. Progress goes to stderr, results to stdout.

A user's mistake is one line on stderr and exit code 2; a traceback only with --debug.
"""

from __future__ import annotations

import gc
import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.core
from typer.exceptions import Abort, Exit, TyperException
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import options as defaults
from .errors import CustsegError
from .runtime import signals
from .runtime.progress import StageDisplay

# --help names values as click does (TEXT, INTEGER, PATH), not as Python types (<list[str]>, <int>);
# an argument or option given a metavar shows only that.
_PLAIN_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "bool": "BOOLEAN"}
_typer_display_type = typer.core.TyperOption.display_type


def _plain_display_type(self, ctx) -> str:
    if self.metavar is not None:
        return ""
    label = _typer_display_type(self, ctx).strip("<>")
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    return _PLAIN_TYPES.get(label, label.upper())


typer.core.TyperOption.display_type = _plain_display_type
typer.core.TyperArgument.display_type = _plain_display_type

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
    from .profiles.describe import share_text  # (pandas: imported with the flow)

    s = result.summary
    out.print(f"{s['customers']:,} customers in {s['k']} segments ({s['k_reason']}).")
    table = Table(show_lines=False)
    stable = "stability" in result.profiles
    for column in ("segment", "name", "customers", "share", "revenue") + (("stability",) if stable else ()):
        table.add_column(column, overflow="fold")
    for r in result.profiles.itertuples():
        revenue = share_text(r.revenue_share) if hasattr(r, "revenue_share") else ""
        stability = (f"{r.stability:.2f}" + (" UNSTABLE" if r.unstable else ""),) if stable else ()
        table.add_row(str(r.segment), escape(r.segment_name), f"{r.customers:,}", share_text(r.customer_share), revenue,
                      *stability)
    out.print(table)
    unstable = s.get("stability", {}).get("unstable_segments", [])
    if unstable:
        out.print(f"Unstable (stability below {s['stability']['unstable_below']}: not found again when resampled): "
                  f"segment {', '.join(map(str, unstable))}.", markup=False, highlight=False, soft_wrap=True)
    for r in result.profiles.itertuples():  # names may come from a model file: printed as text, never as markup
        out.print(f"[bold]{r.segment} {escape(r.segment_name)}[/bold]: {escape(r.description)} {escape(r.strategy)}",
                  markup=True, highlight=False)
    if directory is not None:
        out.print(f"Outputs in {directory}/ (report: {directory / 'report.html'})"
                  if (directory / "report.html").exists() else f"Outputs in {directory}/")


# Options that several commands share, declared once.
Inputs = Annotated[list[str], typer.Argument(
    metavar="INPUT...", help="Order lines: CSV, Parquet or .xlsx files, globs or directories; or a database URL "
                             "(postgresql://user@host/db, mysql://..., sqlite:///file.db, duckdb:///file.duckdb) "
                             "with --table or --query.")]
TableOpt = Annotated[Optional[str], typer.Option(
    "--table", help="Database input: the table of order lines, table or schema.table.")]
QueryOpt = Annotated[Optional[str], typer.Option(
    "--query", help="Database input: one SELECT giving the order lines (used as given, as a subquery).")]
WriteTable = Annotated[Optional[str], typer.Option(
    "--write-table", help="Database input: also write the segments into this table (schema.table) of the "
                          "database; it appears complete or not at all.")]
IfExists = Annotated[str, typer.Option(
    "--if-exists", help="When the --write-table exists: fail (the default) or replace.")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing, non-empty output directory.")]
Schema = Annotated[str, typer.Option(help="Input schema: auto, shopify, online-retail or generic.")]
MAP_HELP = ("Map a canonical column to a source column, e.g. --map customer_id=Client (repeat it). Canonical: "
            "customer_id, order_id, order_date, product, quantity, returned_quantity, amount, unit_price.")
Map = Annotated[Optional[list[str]], typer.Option("--map", help=MAP_HELP)]
Sheet = Annotated[Optional[str], typer.Option(help="Worksheet of an .xlsx input (name or 0-based index).")]
DateFormat = Annotated[str, typer.Option("--date-format", help="Dates: auto, iso, dmy (31/12/2024), mdy or excel (day numbers).")]
Engine = Annotated[str, typer.Option(help="Engine: duckdb (embedded) or spark.")]
MemoryLimit = Annotated[Optional[str], typer.Option(
    "--memory-limit", help="DuckDB memory limit, e.g. 4GB or 4GiB (default: a tenth of the RAM, at least 1GB).")]
TempDir = Annotated[Optional[str], typer.Option("--temp-dir", help="Where DuckDB spills when memory is short.")]
Threads = Annotated[Optional[int], typer.Option(help="Threads for DuckDB (default: all cores).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
Seed = Annotated[int, typer.Option(help="Random seed: the same input and seed give the same result.")]
Keep = Annotated[Optional[str], typer.Option(
    "--keep", metavar="COLUMNS", help="Comma-separated input columns with one value per customer (e.g. "
                                      "email,country), carried into the segments (and audiences).")]


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of any error."),
) -> None:
    _State.debug = debug


@app.command()
def run(
    inputs: Inputs,
    out_dir: Path = typer.Option(Path("custseg-out"), "--out", "-o", help="Output directory."),
    force: Force = False,
    schema: Schema = "auto",
    map_: Map = None,
    features: Optional[str] = typer.Option(
        None, help="Comma-separated features (default per schema): products_ordered, average_return_rate, "
                   "total_spending, order_count, avg_order_value, recency_days, tenure_days."),
    scale: str = typer.Option("log", help="Feature transform: log (log1p), log-standard, standard or none."),
    k: Optional[int] = typer.Option(None, "--k", help="Number of segments, at least 2 (default: chosen by the "
                                                      "elbow method)."),
    k_max: int = typer.Option(defaults.K_MAX, "--k-max", help="Largest k tried by the sweep."),
    seed: Seed = defaults.SEED,
    n_init: int = typer.Option(defaults.N_INIT, "--n-init", help="k-means++ starts of the final model."),
    sweep_sample: int = typer.Option(defaults.SWEEP_SAMPLE, "--sweep-sample",
                                     help="Customers sampled for the k sweep (the final fit uses everyone)."),
    silhouette_sample: int = typer.Option(defaults.SILHOUETTE_SAMPLE, "--silhouette-sample",
                                          help="Customers sampled for silhouette scores (at most 20000)."),
    top_products: int = typer.Option(defaults.TOP_PRODUCTS, "--top-products", help="Best sellers listed per segment."),
    sheet: Sheet = None,
    date_format: DateFormat = "auto",
    fmt: str = typer.Option("auto", "--format", help="Format of the segments table: csv, parquet, auto "
                                                     "(CSV up to 5,000,000 customers, Parquet above), or xlsx "
                                                     "(CSV and an Excel workbook segments.xlsx with the segments, "
                                                     "profiles, best sellers and k selection; up to 1,048,575 "
                                                     "customers)."),
    keep: Keep = None,
    audiences: bool = typer.Option(False, "--audiences", help="Also write audiences/: one CSV per segment "
                                                              "(customer_id and the --keep columns) for an email "
                                                              "or ad tool."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    figures: Optional[str] = typer.Option(
        None, "--figures", help="Also write each report figure as an image under figures/: png (needs Chrome or "
                                "Chromium; set BROWSER_PATH if it is not found)."),
    currency: Optional[str] = typer.Option(
        None, "--currency", help="Currency of the amounts, as an ISO code (EUR) or a symbol (€), shown with every "
                                 "money figure (default: a 'currency' column of the data, else none)."),
    engine: Engine = "duckdb",
    memory_limit: MemoryLimit = None,
    temp_dir: TempDir = None,
    threads: Threads = None,
    spark_master: Optional[str] = typer.Option(None, "--spark-master", help="Spark master URL (default local[*])."),
    spark_conf: Optional[list[str]] = typer.Option(None, "--spark-conf", help="Spark setting key=value (repeat)."),
    spark_local_limit: int = typer.Option(
        defaults.SPARK_LOCAL_LIMIT, "--spark-local-limit",
        help="Spark engine: up to this many customers are collected and clustered with scikit-learn; more stay "
             "in Spark and are clustered with MLlib."),
    quiet: Quiet = False,
    model: Optional[Path] = typer.Option(
        None, "--model", help="Segment with this model.json (or run directory) instead of fitting a new one: "
                              "same features, segments, names and strategies; no k sweep."),
    horizon: str = typer.Option(defaults.HORIZON, "--horizon",
                                help="Lifecycle horizon of expected_orders_* and expected_value_* (CLV): days, "
                                     "weeks or months, e.g. 12m, 26w, 90d."),
    holdout: Optional[str] = typer.Option(
        None, "--holdout", help="Backtest: fit segments and models on the lines before the last DURATION "
                                "(e.g. 90d, 12w, 3m), predict each customer's orders and spend in it and compare."),
    table: TableOpt = None,
    query: QueryOpt = None,
    write_table: WriteTable = None,
    if_exists: IfExists = defaults.IF_EXISTS[0],
) -> None:
    """Segment customers from order lines and write segments, profiles, model and report."""
    from .outputs.targets import check_target  # (the CLI imports the flow on use: `custseg --help` stays fast)
    from .pipeline import run as run_pipeline  # (the flow is imported on use)

    _State.quiet = not _show_progress(quiet)
    database = _database_of(inputs)
    check_target(out_dir, force, inputs=[model] if database else [*inputs, model])
    options = defaults.RunOptions(
        schema=schema, mapping=_parse_pairs(map_, "--map"), sheet=sheet, date_format=date_format,
        features=features, scale=scale, k=k, k_max=k_max, seed=seed, n_init=n_init, sweep_sample=sweep_sample,
        silhouette_sample=silhouette_sample, top_products=top_products,
        engine=defaults.EngineOptions(engine=engine, memory_limit=memory_limit, temp_dir=temp_dir, threads=threads,
                                      spark_master=spark_master, spark_conf=_parse_pairs(spark_conf, "--spark-conf"),
                                      spark_local_limit=spark_local_limit, database=database),
        command=_command_line(), model=model, currency=currency, horizon=horizon, holdout=holdout,
        table=table, query=query, write_table=write_table, if_exists=if_exists,
        keep=keep, workbook=fmt == "xlsx",
    )
    if fmt not in ("auto", "csv", "parquet", "xlsx"):
        raise CustsegError(f"--format {fmt!r} is unknown; use auto, csv, parquet or xlsx.")
    if figures is not None:
        from .outputs.report.page import check_figures  # plotly: heavy

        check_figures(figures, report=not no_report)  # before the long part: say what is missing now
    result = run_pipeline(inputs, options, _progress, watch=_display.watch_engine)
    _progress("start", "writing: outputs")
    started = time.perf_counter()
    directory = result.to_dir(out_dir, force=force, report=not no_report, segments_format=fmt, figures=figures,
                              audiences=audiences)
    _progress("end", f"writing: done in {time.perf_counter() - started:.1f} s")
    _print_result(result, directory)


@app.command()
def sample(
    out_file: Path = typer.Argument(..., metavar="OUT", help="File to write: .csv or .parquet."),
    rows: int = typer.Option(70_000, help="Number of order lines."),
    seed: Seed = defaults.SEED,
    schema: str = typer.Option("shopify", help="shopify, online-retail or generic (customer/date/amount)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write synthetic, realistic order lines (for trying custseg and for benchmarks)."""
    from .sample import write_sample  # (numpy, pyarrow: imported on use)

    if out_file.exists() and not force:
        raise CustsegError(f"{out_file}: exists; use --force to overwrite it.")
    path = write_sample(out_file, schema=schema, rows=rows, seed=seed)
    out.print(f"Wrote {rows:,} {schema} order lines to {path}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("custseg-demo"), "--out", "-o", help="Output directory (replaced)."),
    rows: int = typer.Option(70_000, help="Order lines in the built-in Shopify-like sample."),
    quiet: Quiet = False,
) -> None:
    """Run the whole pipeline on built-in sample data (about 25,000 customers)."""
    from .pipeline import run as run_pipeline  # (the flow is imported on use)
    from .outputs.targets import check_target  # (imported on use)
    from .sample import write_sample  # (numpy, pyarrow: imported on use)

    _State.quiet = not _show_progress(quiet)
    check_target(out_dir, force=True)  # replaced, but only if it is a custseg output (or empty)
    with tempfile.TemporaryDirectory(prefix="custseg-demo-") as tmp:
        data = Path(tmp) / "shopify_orders.csv"
        _progress("start", f"sample: writing {rows:,} Shopify-like order lines")
        write_sample(data, "shopify", rows, defaults.SEED)
        result = run_pipeline([str(data)], defaults.RunOptions(command=_command_line()), _progress,
                              watch=_display.watch_engine)
    directory = result.to_dir(out_dir, force=True)
    _print_result(result, directory)
    out.print(f"Open the report: {(directory / 'report.html').resolve()}")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(
        metavar="MODEL", help="model.json written by 'custseg run' (or its run directory).")],
    inputs: Inputs,
    out_file: Optional[Path] = typer.Option(
        None, "--out", "-o", help="File to write: .csv, .parquet or .xlsx (and beside it OUT.json: how these "
                                  "customers compare with the training data); needed unless --write-table is given."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
    schema: Schema = "auto",
    map_: Annotated[Optional[list[str]], typer.Option(
        "--map", help=MAP_HELP + " Give the same mapping as the run that made the model.")] = None,
    sheet: Sheet = None,
    date_format: DateFormat = "auto",
    engine: Engine = "duckdb",
    memory_limit: MemoryLimit = None,
    temp_dir: TempDir = None,
    threads: Threads = None,
    keep: Keep = None,
    quiet: Quiet = False,
    table: TableOpt = None,
    query: QueryOpt = None,
    write_table: WriteTable = None,
    if_exists: IfExists = defaults.IF_EXISTS[0],
) -> None:
    """Score customers with a saved model: customer_id, the model's features, segment, segment_name.

    The order lines are read and cleaned as in 'custseg run'; each customer goes to the nearest
    of the model's segments (no refit). Scoring a run's own input reproduces its segments.csv.
    From a database, the scoring runs in the database: with --write-table (and no --out) no
    customer row leaves it.
    """
    from .outputs.scoring import write_predictions  # (the flow is imported on use)
    from .pipeline import score  # (the flow is imported on use)
    from .outputs.targets import check_clear_of_inputs  # (imported on use)

    _State.quiet = quiet
    database = _database_of(inputs)
    if out_file is None and write_table is None:
        raise CustsegError("give --out FILE (or, for a database input, --write-table) for the scores.")
    if out_file is not None:
        check_clear_of_inputs(out_file, [model] if database else [*inputs, model])
        if out_file.exists() and not force:
            raise CustsegError(f"{out_file}: exists; use --force to overwrite it or choose another --out.")
    predictions = score(
        model, inputs, schema=schema, mapping=_parse_pairs(map_, "--map"), sheet=sheet, date_format=date_format,
        engine=defaults.EngineOptions(engine=engine, memory_limit=memory_limit, temp_dir=temp_dir, threads=threads,
                                      database=database),
        progress=_progress, table=table, query=query, write_table=write_table, if_exists=if_exists,
        fetch=out_file is not None,
        keep=keep, workbook=out_file is not None and out_file.suffix.lower() == ".xlsx",
    )
    path = write_predictions(predictions, out_file, force=force) if out_file is not None else None
    counts = predictions.counts()
    out.print(f"{predictions.customers:,} customers scored with {model} into {len(counts)} segments:")
    for segment_id, (name, count) in enumerate(counts.items()):
        out.print(f"  {segment_id} {name}: {count:,}", markup=False, highlight=False)
    if predictions.written_table is not None:
        out.print(f"Wrote table {predictions.written_table}", markup=False, highlight=False)
    if path is not None:
        out.print(f"Wrote {path}")


@app.command()
def compare(
    old_run: Path = typer.Argument(..., metavar="OLD_RUN_DIR", help="Output directory of the earlier run."),
    new_run: Path = typer.Argument(..., metavar="NEW_RUN_DIR", help="Output directory of the later run."),
    out_dir: Path = typer.Option(Path("custseg-compare"), "--out", "-o", help="Output directory."),
    force: Force = False,
) -> None:
    """Who moved between segments from one run (period) to the next: migration.csv, movers.csv, compare.html.

    Customers are matched by id and segments by name, so the runs may use different models
    (best: run the second period with 'custseg run ... --model OLD_RUN_DIR/model.json').
    """
    from .outputs.compare import compare_runs, write_comparison  # (pandas, plotly: imported on use)
    from .outputs.targets import check_target  # (imported on use)

    check_target(out_dir, force, inputs=[old_run, new_run])
    comparison = compare_runs(old_run, new_run)
    if comparison.alignment_note:
        _progress("warn", comparison.alignment_note)
    directory = write_comparison(comparison, out_dir, force=force)
    t = comparison.totals
    out.print(f"{t['customers']:,} customers in either period: {t['stayed']:,} kept their segment, "
              f"{t['moved']:,} moved, {t['new']:,} new, {t['absent']:,} absent from the new period.")
    out.print(f"Outputs in {directory}/ (migration.csv, movers.csv, compare.html)")


def _database_of(inputs: list[str]) -> str | None:
    """The database URL among the inputs (then the only input), else None."""
    from .engines import database_url_of  # (no driver is imported by this)

    return database_url_of(inputs)


@app.command()
def rename(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="Output directory of 'custseg run'."),
    names: Annotated[Optional[list[str]], typer.Argument(
        metavar="NUMBER=NAME...", help='New names by segment number, e.g. 2="Lapsed big spenders".')] = None,
    names_file: Optional[Path] = typer.Option(
        None, "--names", help="A file of NUMBER=NAME lines, or a CSV with segment and segment_name columns "
                              "(e.g. an edited profiles.csv)."),
) -> None:
    """Rename segments in every output of a run: model.json, profiles, segments, best sellers, audiences,
    workbook, summary and the report (rebuilt), all at once (the run is replaced when complete)."""
    from .outputs.rename import parse_assignments, read_names_file, rename_run, report_from_files  # (on use)

    new = read_names_file(names_file) if names_file is not None else {}
    for number, name in parse_assignments(names or []).items():
        new[number] = name
    done = rename_run(run_dir, new, rebuild_report=report_from_files)
    if not done.changes:
        out.print("The segments already have these names; nothing changed.")
        return
    for change in done.changes:
        out.print(f"segment {change['segment']}: {change['from']} -> {change['to']}", markup=False, highlight=False)
    out.print(f"Renamed in {run_dir}/ ({', '.join(done.files)}; report {done.report}).", markup=False)


def _command_line() -> str:
    return "custseg " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _exit_interrupted() -> None:
    """One line for Ctrl-C / SIGTERM; exit 130 (SIGINT) or 143 (SIGTERM)."""
    name = signal.Signals(signals.received() or signal.SIGINT).name
    err.print(f"custseg: interrupted ({name}); no complete output was written.", markup=False)
    sys.exit(signals.exit_code())


def _before_exit() -> None:
    """Freeze every object: the interpreter's exit then skips walking every object of scikit-learn,
    SciPy, pandas and Ibis in its final collections (0.3-0.4 s of a 70k-line run, measured). Nothing
    left needs the collector to be released: the run closed its engine (pipeline.run: DuckDB's
    tables and spill directory), temporary directories are removed by their `weakref.finalize`
    at exit, and what is still referenced is freed at exit as before. (A collection here took
    0.1 s more.)"""
    gc.freeze()


def entry() -> None:
    """Console script: run the app, turning user errors into one line and exit code 2."""
    debug = "--debug" in sys.argv[1:]
    signals.install()  # SIGINT and SIGTERM -> KeyboardInterrupt, and DuckDB queries interrupted
    try:
        code = app(standalone_mode=False)  # typer turns a KeyboardInterrupt into a return value of 130
        if signals.received():
            _exit_interrupted()
        if isinstance(code, int) and code:
            sys.exit(code)
        _before_exit()
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
