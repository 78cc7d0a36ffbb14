"""The flow, once: sources -> cleaning -> features -> clustering -> profiles -> result; and scoring
with a saved model (the same sources and cleaning, the model's features, every customer to the
nearest of its centres, no refit: scoring a run's own input reproduces its segments.csv)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa

from . import __version__
from .cleaning.dropped import describe_drops, refuse_if_nothing_used
from .cleaning.returns import cancellations, revenue_basis
from .cleaning.reread import cache_reading
from .cleaning.rules import clean, data_quality, worth_caching
from .clustering.checks import all_finite, check_matrix
from .clustering.in_database import named, nearest_centre
from .clustering.scaling import assign
from .engines import Engine, connect, engine_of, translate_read_errors
from .cleaning.parse_failures import refuse_if_mostly_unparsed
from .errors import CustsegError
from .features import (LIFECYCLE_COLUMNS, available, check_features, customer_columns, customer_features,
                       customer_products, customer_totals, in_natural_order, lifecycle_missing, natural_order,
                       parse_features)
from .options import SEED, EngineOptions, RunOptions, check_workbook_rows, normalize_currency
from .runtime import preload
from .runtime.stages import ProgressCallback, Stages
from .outputs.result import SegmentationResult
from .sources.keep import attach, kept_table, parse_keep
from .sources.read import SourceSpec, is_table_like, read_source, read_source_database, read_source_table

# The stages after the features (and the model file) use pandas, SciPy and scikit-learn: 1 s and more
# of imports. They are imported where they are used, by which time runtime/preload.py has imported
# them in the background while the engine read the data (its MODULES list them).
if TYPE_CHECKING:
    import pandas as pd

    from .model import SegmentationModel
    from .profiles.explain import Explanation
    from .profiles.lifecycle import Begun


def _versions() -> dict[str, str]:
    import duckdb  # (imported by the engine already; only their versions are read here)
    import pandas as pd  # (preloaded while the engine reads)
    import sklearn  # scikit-learn: heavy (preloaded while the engine reads)

    return {
        "custseg": __version__, "python": platform.python_version(), "duckdb": duckdb.__version__,
        "ibis": ibis.__version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__,
        "pandas": pd.__version__, "pyarrow": pa.__version__,
    }


def _input_as_spec(data, options: RunOptions) -> SourceSpec:
    inputs = [data] if is_table_like(data) or not isinstance(data, (list, tuple)) else data
    return SourceSpec(inputs=list(inputs), schema=options.schema, mapping=dict(options.mapping),
                      sheet=options.sheet, date_format=options.date_format, keep=parse_keep(options.keep))


@translate_read_errors
def compute_features(engine: Engine, data, options: RunOptions, stages: Stages,
                     feature_names: list[str] | None = None, model: SegmentationModel | None = None,
                     model_name: str = "the model", lazy_only: bool = False) -> "Features":
    """Read, clean and compute every available feature per customer (materialized as Arrow).

    With a model, its features are computed and the data must provide the columns they need.
    With `lazy_only`, the customer table stays an expression of the engine (Features.lazy)."""
    spec = _input_as_spec(data, options)
    with stages.stage("read", "reading and checking the columns"):
        source = read_dataframe_or_files(engine, data, spec)
        for warning in source.warnings:
            stages.warn(warning)
        if model is not None:
            model.check_columns(source.provided, source.files[0] if source.files else "the data", model_name)
            feature_names = list(model.features)
        names = feature_names or parse_features(options.features, source.schema)
        check_features(names, source.provided, source.files[0] if source.files else "the data")
        computed = list(dict.fromkeys(names + [f for f in available(source.provided) if f not in names]))
        cleaned = clean(source)
    with stages.stage("clean", "counting the cleaning rules"):
        if worth_caching(engine, source):
            source, cleaned = cache_reading(engine, spec, source, cleaned, stages.note)
        counted = cleaned.counts.to_pyarrow().to_pydict()
        counts = dict(zip(map(int, counted["drop_reason"]), map(int, counted["rows"])))
        quality = data_quality(cleaned, counts)
        dropped_summary = describe_drops(engine, source, cleaned, spec, quality)
        kept = [i for i, r in enumerate(counted["drop_reason"]) if r == 0]
        if kept:
            first, last = counted["first_date"][kept[0]], counted["last_date"][kept[0]]
            quality["date_range"] = [first.isoformat(), last.isoformat()] if first and last else None
        if quality["rows_read"] == 0:
            raise CustsegError(f"{source.files[0] if source.files else 'the data'}: no order lines to read "
                               "(only a header?); export the order lines again.")
        refuse_if_nothing_used(source, quality)
        refuse_if_mostly_unparsed(engine, source, quality)  # > 20% unreadable values (parse_failures.py)
        cancelled = cancellations(cleaned.lines, source.schema)
        if cancelled is not None:
            quality["cancellations"] = cancelled
        holdout = None
        if options.holdout is not None:  # the run sees only the lines before the holdout
            from .profiles.holdout import split as split_holdout  # pandas: heavy (preloaded)

            cleaned, holdout = split_holdout(cleaned, quality.get("date_range"), options.holdout, source.provided)
            quality["holdout"] = holdout.info()
        for line in dropped_summary:
            stages.warn(line)
        stages.note(f"{quality['rows_read']:,} lines read, {quality['rows_used']:,} used")
    if lazy_only:  # the caller computes with the customer table where it is (scoring in a database)
        return Features(source=source, cleaned=cleaned, quality=quality, table=None, names=names, engine=engine,
                        lazy=customer_features(cleaned.lines, names, source.return_rate_level))
    with stages.stage("features", f"computing {', '.join(names)} per customer"):
        summary = None  # the lifecycle summary, when the customer table's query gives it
        if engine.may_keep_customers:
            from .clustering.spark import materialize_customers  # PySpark is optional (custseg[spark])

            feats, frame, customers = materialize_customers(
                engine, customer_features(cleaned.lines, computed, source.return_rate_level),
                options.engine.spark_local_limit, options.sweep_sample, options.seed)
            products = None
        else:
            products = keep_customer_products(engine, cleaned, source.provided)
            with_summary = lifecycle_in_query(engine, source)
            totals = customer_totals(cleaned.lines, computed, source.return_rate_level, products,
                                     lifecycle=with_summary)
            feats = fetch_customers(engine, totals, lambda table, joined: customer_columns(
                table, computed, text_ids=False, lifecycle=with_summary, joined_reference=joined))
            if with_summary:
                summary = feats.select(list(LIFECYCLE_COLUMNS))
                feats = feats.drop_columns(list(LIFECYCLE_COLUMNS))
            frame, customers = None, None
        stages.note(f"{customers or feats.num_rows:,} customers")
        if engine.transfer_note():
            stages.note(engine.transfer_note())
        if options.workbook:
            check_workbook_rows(customers or feats.num_rows)
        kept = None
        if spec.keep:
            if frame is not None:
                raise CustsegError(f"--keep needs the customer table in memory: {customers:,} customers is above "
                                   "--spark-local-limit; raise the limit or run without --keep.")
            kept = kept_table(source.kept, spec.keep)
    return Features(source=source, cleaned=cleaned, quality=quality, table=feats, names=names,
                    frame=frame, customers=customers, engine=engine, products=products, holdout=holdout,
                    kept=kept, lifecycle_summary=summary)


def lifecycle_in_query(engine: Engine, source) -> bool:
    """Whether the customer table's query also summarises each customer's orders for the lifecycle
    models (features.LIFECYCLE_COLUMNS): with dates and amounts, on an engine whose aggregates take
    an order (elsewhere the lifecycle step queries its summary itself, profiles/lifecycle.py)."""
    return engine.ordered_first and not lifecycle_missing(source.provided)


def keep_customer_products(engine: Engine, cleaned, provided: set[str]):
    """features.customer_products as the engine's temporary table (None without products, or when the
    engine keeps no tables).

    products_ordered and the best sellers both need purchases per (customer, product);
    kept once, neither groups the order lines again (nor parses a CSV or Parquet file again).
    """
    if "product" not in provided or not engine.caches_lines:
        return None
    _, stored = engine.keep(customer_products(cleaned.lines, with_names=not cleaned.name_is_product),
                            "custseg_customer_products")
    if cleaned.name_is_product:  # Shopify: the product type is its own name, stored once
        stored = stored.mutate(product_name=stored.product).select(
            "customer_id", "product", "product_name", "quantity", "amount")
    return stored


def fetch_customers(engine: Engine, totals, columns: Callable[[Any, bool], Any]) -> pa.Table:
    """The customer table (features.customer_features: `columns(table, joined_reference)` of
    customer_totals) in natural order, as one-piece Arrow columns with the ids as text (integer ids
    are sorted and carried as integers, and made text by Arrow). An engine that stores the table
    first stores the totals and computes the columns from them (the data's last date by one
    aggregate of the stored table, not a window over it)."""
    if engine.stores_customers:
        # ordered here, not by the engine: DuckDB's ORDER BY sorts every column with the ids (its
        # ordered fetch took 15.5 s at 37M customers, the unordered one 5.3 s); numpy sorts the ids
        # alone and the columns follow, two at a time (features.in_natural_order)
        fetched = engine.fetch_customers(totals, lambda stored: columns(stored, True))
        schema, parts = fetched.schema, dict(zip(fetched.column_names, fetched.columns))
        del fetched  # (the columns replaced in parts are then freed one by one)
        in_natural_order(parts)
        fetched = pa.Table.from_arrays(list(parts.values()), schema=schema)
    else:
        fetched = engine.fetch_customers(columns(totals, False), natural_order)
    return contiguous(ids_as_text(fetched))


def ids_as_text(table: pa.Table) -> pa.Table:
    """The customer_id column as text (the customer table's ids are text, whatever the lines had)."""
    ids = table.column("customer_id")
    if pa.types.is_string(ids.type):
        return table
    return table.set_column(table.schema.get_field_index("customer_id"), "customer_id", ids.cast(pa.string()))


def contiguous(table: pa.Table) -> pa.Table:
    """The table with each column in one piece, so that numpy views it without copying.

    The engine hands over record batches; a float column in many chunks is copied by every
    to_numpy(). Columns are joined one at a time (peak: the table plus one column).
    """
    for name in table.column_names:
        column = table.column(name)
        if column.num_chunks > 1:
            table = table.set_column(table.schema.get_field_index(name), name, column.combine_chunks())
    return table


def read_dataframe_or_files(engine: Engine, data, spec: SourceSpec):
    if engine.reads_database and not is_table_like(data):  # --table / --query, opened by engine.prepare
        return read_source_database(engine, spec)
    if is_table_like(data):
        return read_source_table(engine, data, spec)
    # CSV files read by an engine that caches lines (cleaning.worth_caching): a typed reading can fall back.
    return read_source(engine, spec, typed=engine.reads_typed_csv)


@dataclass
class Clustering:
    """The outcome of the clustering step, whatever produced it (a fresh fit or a given model)."""

    labels: np.ndarray
    centers: np.ndarray
    scaling: Any
    k: int
    k_method: str
    k_reason: str
    k_selection: pd.DataFrame
    inertia: float
    backend: str = "scikit-learn"
    segment_names: list[str] | None = None  # fixed names (a reused model); None: derive from profiles
    model: SegmentationModel | None = None  # the reused model (run --model): its strategies and file are kept
    assignments: Any = None  # Spark-resident runs: Ibis table of customer_id, features, segment (labels: sample's)


@dataclass
class Features:
    """What the lazy part of the flow produced."""

    source: Any
    cleaned: Any
    quality: dict[str, Any]
    table: pa.Table           # customer_id and every computed feature, in natural customer order
    names: list[str]          # the clustering features
    frame: Any = None         # Spark DataFrame of every customer when too many to collect (table: a sample)
    customers: int | None = None  # number of customers when `table` is a sample
    engine: Any = None        # the Engine that computed them
    products: Any = None      # features.customer_products, kept by the engine (None: not computed)
    holdout: Any = None       # profiles.holdout.Holdout of a --holdout run (the lines above stop at its cutoff)
    lazy: Any = None          # the customer table as the engine's expression (compute_features(lazy_only=True))
    kept: pa.Table | None = None  # --keep: customer_id and the kept columns, one row per customer
    lifecycle_summary: pa.Table | None = None  # features.LIFECYCLE_COLUMNS, row for row with `table`

    def matrix(self) -> np.ndarray:
        # column_stack makes the one new array (float64 columns give float64; no second copy)
        return np.asarray(np.column_stack(
            [self.table.column(n).to_numpy(zero_copy_only=False) for n in self.names]), dtype=np.float64)


def cluster(X: np.ndarray, options: RunOptions, stages: Stages) -> Clustering:
    """Scale, sweep k, choose k and fit K-means with scikit-learn."""
    import pandas as pd  # (preloaded while the engine reads)

    from .clustering.estimator import CustomerSegmenter  # scikit-learn: heavy (preloaded while the engine reads)

    with stages.stage("clustering", f"choosing k and fitting K-means on {len(X):,} customers"):
        segmenter = CustomerSegmenter(
            n_clusters=options.k, k_max=options.k_max, scale=options.scale, n_init=options.n_init,
            max_iter=options.max_iter, random_state=options.seed, sweep_sample=options.sweep_sample,
            silhouette_sample=options.silhouette_sample, copy_x=False,  # X is scaled in place: no copy
        ).fit(X)
        stages.note(f"k = {segmenter.n_clusters_}: {segmenter.k_choice_.reason}")
    k_selection = pd.DataFrame(segmenter.k_selection_) if segmenter.k_selection_ else pd.DataFrame(
        columns=["k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin"])
    return Clustering(
        labels=segmenter.labels_, centers=segmenter.cluster_centers_, scaling=segmenter.scaling_,
        k=segmenter.n_clusters_, k_method=segmenter.k_choice_.method, k_reason=segmenter.k_choice_.reason,
        k_selection=k_selection, inertia=segmenter.inertia_,
    )


def reuse_model(model: SegmentationModel, label: str, X: np.ndarray, features: Features,
                stages: Stages) -> Clustering:
    """The clustering step with a fixed model: every customer to the nearest of its centres (no refit)."""
    import pandas as pd  # (preloaded while the engine reads)

    from .profiles.drift import TrainingReference, check_drift  # pandas: heavy (preloaded)

    where = _where(features.source)
    if len(X) == 0:
        raise CustsegError(f"{where}: no customer with orders after cleaning; there is nothing to segment.")
    if not all_finite(X):  # cannot happen after cleaning; a guard against NaN in any output
        raise CustsegError(f"{where}: a feature is not a finite number; please report this input.")
    with stages.stage("clustering", f"assigning {len(X):,} customers to the {model.k} segments of {label}"):
        labels, inertia = assign(model.scaling.transform(X), model.centers, with_inertia=True)
    if model.reference is not None:  # customers unlike the training data: said as predict says it
        for line in check_drift(TrainingReference.from_dict(model.reference, model.segment_names),
                                {name: X[:, j] for j, name in enumerate(model.features)}, labels,
                                schema=features.source.schema).warnings:
            stages.warn(line)
    elif model.schema != features.source.schema:
        stages.note(f"the model was trained on {model.schema} data; this data is {features.source.schema}")
    trained = model.training.get("k_reason")
    reason = f"{label} was reused: k = {model.k} and the segments are fixed, no k sweep and no refit"
    if isinstance(trained, str) and trained:
        reason += f" (when it was trained: {trained})"
    return Clustering(
        labels=labels, centers=model.centers, scaling=model.scaling, k=model.k, k_method="model", k_reason=reason,
        k_selection=pd.DataFrame(columns=["k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin"]),
        inertia=inertia, backend="custseg model", segment_names=model.segment_names, model=model,
    )


def cluster_spark(engine, features: Features, options: RunOptions, stages: Stages) -> Clustering:
    """The clustering step with Spark MLlib, on a customer table that stays in Spark."""
    from .clustering.spark import fit_mllib  # PySpark is optional (custseg[spark])

    with stages.stage("clustering", f"choosing k and fitting MLlib K-means on {features.customers:,} customers"):
        fit = fit_mllib(features.frame, features.names, k=options.k, k_max=options.k_max, scale=options.scale,
                        seed=options.seed, max_iter=options.max_iter, sweep_sample=options.sweep_sample,
                        silhouette_sample=options.silhouette_sample, customers=features.customers)
        stages.note(f"k = {fit.choice.k}: {fit.choice.reason}")
    return Clustering(
        labels=assign(fit.scaling.transform(features.matrix()), fit.centers), centers=fit.centers,
        scaling=fit.scaling, k=fit.choice.k, k_method=fit.choice.method, k_reason=fit.choice.reason,
        k_selection=fit.k_selection, inertia=fit.inertia, backend="spark-mllib",
        assignments=engine.table(fit.assigned, "custseg_segments"),
    )


def profile(features: Features, clustering: Clustering, options: RunOptions, stages: Stages,
            explanation: Explanation | None = None):
    """Profiles (names, strategies, statistics, stability, RFM composition) and best sellers,
    computed by the engine."""
    import pandas as pd  # (preloaded while the engine reads)

    from .profiles.best_sellers import COLUMNS as BEST_SELLER_COLUMNS, best_sellers  # pandas: heavy (preloaded)
    from .profiles.explain import add_segment_columns, data_facts, table_facts
    from .profiles.stats import build_profiles

    with stages.stage("profiles", "profiling segments and finding best sellers"):
        feats, labels, k = features.table, clustering.labels, clustering.k
        all_names = [c for c in feats.column_names if c != "customer_id"]
        with_segments = feats.append_column("segment", pa.array(labels, pa.int64()))
        feature_arrays = {n: feats.column(n).to_numpy(zero_copy_only=False) for n in all_names}
        spark_resident = clustering.assignments is not None
        customers = clustering.assignments if spark_resident else ibis.memtable(with_segments)
        dates = features.quality.get("date_range")
        facts = (table_facts(customers, all_names, dates) if spark_resident
                 else data_facts(feature_arrays, dates))
        profiles = build_profiles(customers, feature_arrays, labels, k, features.names, facts,
                                  in_engine=spark_resident, currency=run_currency(options, features))
        profiles = add_segment_columns(profiles, explanation)
        if explanation is not None:
            explanation.facts = facts
        if clustering.segment_names is not None:  # a reused model's names: its words are not this data's
            profiles["segment_name"] = list(clustering.segment_names)
            profiles["name_words"], profiles["name_evidence"] = "", ""
        if clustering.model is not None:  # descriptions describe this data; strategies stay the model's
            profiles["strategy"] = clustering.model.strategies
        if "product" in features.source.provided:
            if spark_resident:
                assignment = customers.select("customer_id", "segment")
            else:
                assignment = ibis.memtable(_assignment(with_segments, features.cleaned.lines, k))
            # (customer, product) sums add up to the same numbers as the order lines, from far fewer rows
            kept = features.products is not None
            bought = features.products if kept else features.cleaned.lines
            sellers = best_sellers(bought, assignment, options.top_products, per_customer=kept).to_pandas()
            sellers["segment"] = sellers["segment"].astype("int64")
        else:
            sellers = pd.DataFrame(columns=list(BEST_SELLER_COLUMNS))
        name_of = dict(zip(profiles.segment, profiles.segment_name))
        sellers.insert(1, "segment_name", sellers["segment"].map(name_of))
    return profiles, sellers


def _assignment(with_segments: pa.Table, lines, k: int) -> pa.Table:
    """customer_id -> segment, with ids of the type the order lines have (integers stay integers)
    and the segment in the smallest integer type that holds k: the best sellers' join builds its
    hash table from this (37M customers under DuckDB's lowered share: 10.0 s with int64 segments,
    8.0 s with int8, measured on the join alone)."""
    assignment = with_segments.select(["customer_id", "segment"])
    if lines.customer_id.type().is_integer():
        ids = assignment.column("customer_id").cast(lines.customer_id.type().to_pyarrow())
        assignment = assignment.set_column(0, "customer_id", ids)
    narrow = pa.int8() if k <= 127 else pa.int16() if k <= 32767 else pa.int32()
    return assignment.set_column(1, "segment", assignment.column("segment").cast(narrow))


def run(data, options: RunOptions, progress: ProgressCallback | None = None,
        watch: Callable[[Callable[[], float | None]], None] | None = None) -> SegmentationResult:
    """The whole flow with explicit options; `watch` (a progress display's) is given the engine's
    query progress function, when the engine has one."""
    options = with_database(options, data)
    options.validate()
    stages = Stages(progress)
    started = time.perf_counter()
    preload.start()  # pandas, SciPy, scikit-learn ... imported while the engine reads
    # Closed when the run returns, not when the garbage collector finds it: DuckDB's spill directory
    # goes with it, and the CLI's exit need not collect (the result holds Arrow tables, nothing of it).
    with contextlib.closing(connect(options.engine)) as engine:
        return _segment(engine, data, options, stages, started, watch)


def _segment(engine: Engine, data, options: RunOptions, stages: Stages, started: float,
             watch: Callable[[Callable[[], float | None]], None] | None) -> SegmentationResult:
    engine.prepare(data, options.table, options.query, options.write_table, options.if_exists)
    query_progress = engine.query_progress() if watch is not None else None
    if query_progress is not None:
        watch(query_progress)
    model, label = None, "the model"
    if options.model is not None:
        from .model import as_model, model_label  # SciPy (its lifecycle models): heavy

        model, label = as_model(options.model), model_label(options.model)
    with engine.translating():
        features = compute_features(engine, data, options, stages, model=model, model_name=label)
    # While Python holds the customer table and the matrix, DuckDB's share shrinks by their size
    # (it evicts its cached tables to disk): the two together stay near the limit. It is lowered
    # before the matrix is built.
    matrix_bytes = features.table.num_rows * len(features.names) * 8
    begun = start_lifecycle(features, model, options, stages)
    features.lifecycle_summary = None  # in `begun` now, in its own types (0.7 GB of Arrow at 37M customers)
    with engine.memory_beside(features.table.nbytes + matrix_bytes):
        X = features.matrix()
        if model is not None:
            if features.frame is not None:
                raise CustsegError(
                    f"--model with --engine spark needs the customer table in memory: {features.customers:,} "
                    "customers is above --spark-local-limit; raise the limit or score with 'custseg predict'."
                )
            clustering = reuse_model(model, label, X, features, stages)
        else:
            check_matrix(X, _where(features.source), features.names, features.quality, options.k)
            if features.frame is not None:
                clustering = cluster_spark(engine, features, options, stages)
            else:
                clustering = cluster(X, options, stages)
        del X  # scaled in place by cluster(); not needed any more (it is large: customers x features)
        explanation = explain_segments(features, clustering, options, stages)
        with engine.translating():
            profiles, sellers = profile(features, clustering, options, stages, explanation)
    result = assemble(features, clustering, profiles, sellers, options, stages, started, explanation)
    lifecycle(result, features, clustering, options, stages, begun)
    # --keep columns last, after the lifecycle columns (as in predict)
    result.segments_table = attach(result.segments_table, features.kept)
    if options.write_table is not None:
        with stages.stage("write-table", f"writing the segments into {options.write_table}"):
            result.summary["write_table"] = engine.write_segments(
                result.segments_table, options.write_table, options.if_exists)
    return result


def explain_segments(features: Features, clustering: Clustering, options: RunOptions, stages: Stages
                     ) -> Explanation:
    """Stability at the chosen k, margins to the centres and RFM (profiles/explain.py) of the
    customers in memory (a Spark-resident run: its sample's stability and RFM composition, and no
    per-customer columns)."""
    from .profiles.explain import explain  # pandas, scikit-learn: heavy (preloaded)

    with stages.stage("evidence", "stability, margins to the centres and RFM scores"):
        table = features.table
        columns = {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names
                   if n != "customer_id"}
        Z = clustering.scaling.transform(features.matrix(), copy=False)
        explanation = explain(columns, Z, clustering.centers, clustering.labels, clustering.k, options.seed,
                              per_customer=clustering.assignments is None)
        if "stability" in explanation.seconds:
            stages.note(f"stability: {explanation.seconds['stability']:.1f} s")
    return explanation


def run_currency(options: RunOptions, features: Features) -> str | None:
    """--currency, else the currency the data names, else None (amounts without a symbol)."""
    return normalize_currency(options.currency) or getattr(features.source, "currency", None)




def lifecycle_cutoff(features: Features):
    """The end of the lifecycle models' history: the holdout's start, else the day after the last order."""
    from .profiles.lifecycle import end_of  # pandas, SciPy: heavy (preloaded)

    dates = features.quality.get("date_range")
    return features.holdout.cutoff if features.holdout is not None else (end_of(dates[1]) if dates else None)


def start_lifecycle(features: Features, model: SegmentationModel | None, options: RunOptions, stages: Stages) -> Begun | None:
    """The lifecycle summary by the engine now, its fit in the background while K-means runs
    (profiles/lifecycle.py); None when the customers stay in Spark (scored there, after the clustering)."""
    from .profiles.lifecycle import begin as begin_lifecycle  # pandas, SciPy: heavy (preloaded)

    if features.frame is not None:
        return None
    with stages.stage("lifecycle", "summarising each customer's orders for the lifecycle models"):
        return begin_lifecycle(features.cleaned.lines, features.source.provided, lifecycle_cutoff(features),
                               features.table.column("customer_id"), options.horizon, options.seed,
                               fitted=model.lifecycle if model is not None else None,
                               spend=features.table.column("total_spending")
                               if "total_spending" in features.table.column_names else None,
                               computed=features.lifecycle_summary)


def lifecycle(result: SegmentationResult, features: Features, clustering: Clustering, options: RunOptions,
              stages: Stages, begun: Begun | None) -> None:
    """P(alive), expected orders and value per customer and segment (profiles/lifecycle.py); with
    --holdout, the backtest (profiles/holdout.py).  Its time in summary.json is what it adds to the
    flow: the summary before the clustering and this stage (the fit's own time is in "lifecycle")."""
    from .profiles.holdout import evaluate as evaluate_holdout  # pandas, SciPy: heavy (preloaded)
    from .profiles.lifecycle import attach as attach_lifecycle, finish as finish_lifecycle, run_lifecycle_spark

    before = stages.seconds.get("lifecycle", 0.0) if begun is not None else 0.0
    with stages.stage("lifecycle", "fitting the lifecycle models and scoring every customer"):
        if features.frame is not None and features.holdout is not None:
            raise CustsegError(f"--holdout {options.holdout} needs the customer table in memory: raise "
                               "--spark-local-limit above the number of customers (or use --engine duckdb).")
        if begun is None:  # customers kept in Spark: scored there, joined to the segments there
            outcome, result.segments_frame = run_lifecycle_spark(
                features.engine, features.cleaned.lines, features.source.provided, lifecycle_cutoff(features),
                result.segments_frame, clustering.k, options.horizon, options.seed,
                fitted=clustering.model.lifecycle if clustering.model is not None else None)
        else:
            outcome = finish_lifecycle(begun)
        backtest = None
        if features.holdout is not None and outcome.model is not None:
            names = np.asarray(result.profiles.segment_name, dtype=object)[clustering.labels]
            backtest = evaluate_holdout(features.holdout, outcome.model, features.table.column("customer_id"), names)
        elif features.holdout is not None:
            raise CustsegError(f"--holdout {options.holdout}: {outcome.info.get('reason')}")
        attach_lifecycle(result, outcome, clustering.labels, clustering.k, backtest)
    seconds = result.summary["seconds"]
    seconds["lifecycle"] = round(before + stages.seconds["lifecycle"], 3)
    seconds["total"] = round(seconds["total"] + stages.seconds["lifecycle"], 3)


def with_database(options: RunOptions, data) -> RunOptions:
    """The options with the engine of a database input (a URL or an Ibis table expression) set."""
    if options.engine.database is not None:
        return options
    database = engine_of(data).get("database")
    if database is None:
        return options
    return dataclasses.replace(options, engine=dataclasses.replace(options.engine, database=database))


def assemble(features: Features, clustering: Clustering, profiles: pd.DataFrame, sellers: pd.DataFrame,
             options: RunOptions, stages: Stages, started: float,
             explanation: Explanation | None = None) -> SegmentationResult:
    """The result object: segments table, summary and model."""
    from .model import SegmentationModel  # SciPy (its lifecycle models): heavy (preloaded)
    from .profiles.drift import TrainingReference

    feats, names, labels, k = features.table, features.names, clustering.labels, clustering.k
    source, quality = features.source, dict(features.quality)
    n_customers = features.customers if features.customers is not None else feats.num_rows
    name_of = dict(zip(profiles.segment, profiles.segment_name))
    segment_names = pa.array([name_of[i] for i in range(k)])
    segments_table = pa.table(
        {"customer_id": feats.column("customer_id"),
         **{n: feats.column(n) for n in names},
         "segment": pa.array(labels, pa.int64()),
         # Dictionary-encoded: k names, not one string per customer (a GB at 37M customers);
         # written as plain text in CSV, as a dictionary in Parquet; pandas sees a category.
         "segment_name": pa.DictionaryArray.from_arrays(pa.array(labels, pa.int32()), segment_names),
         **(explanation.customers if explanation is not None else {})}
    )
    dates = quality.get("date_range")
    summary = {
        "custseg_version": __version__,
        "k": k,
        "k_method": clustering.k_method,
        "k_reason": clustering.k_reason,
        "customers": n_customers,
        "rows_read": quality["rows_read"],
        "rows_used": quality["rows_used"],
        "features": names,
        "scale": clustering.scaling.method,
        "seed": options.seed,
        "n_init": options.n_init,
        "max_iter": options.max_iter,
        "k_max": options.k_max,
        "sweep_sample": min(options.sweep_sample, n_customers),
        "silhouette_sample": min(options.silhouette_sample, n_customers),
        "inertia": clustering.inertia,
        "schema": source.schema,
        "date_format": source.date_format,
        "inputs": source.files,
        "engine": features.engine.name if options.engine.database is not None else options.engine.engine,
        "clustering_backend": clustering.backend,
        "date_range": dates,
        "currency": run_currency(options, features),
        **({"stability": explanation.summary()} if explanation is not None and explanation.stability is not None
           else {}),
        **({"naming_facts": explanation.facts_summary()} if explanation is not None else {}),
        "seconds": {**stages.seconds, "total": round(time.perf_counter() - started, 3)},
        "versions": _versions(),
        "command": features.engine.mask(options.command or " ".join(sys.argv)),
        "revenue": revenue_basis(source.schema),
    }
    if features.kept is not None:
        summary["keep"] = [c for c in features.kept.column_names if c != "customer_id"]
    quality["customers_kept"] = n_customers
    model = clustering.model or SegmentationModel(
        features=names, scaling=clustering.scaling, centers=clustering.centers,
        segments=[{"id": int(r.segment), "name": r.segment_name, "description": r.description,
                   "strategy": r.strategy} for r in profiles.itertuples()],
        schema=source.schema, custseg_version=__version__,
        training={"customers": n_customers, "rows_used": quality["rows_used"], "k_reason": clustering.k_reason,
                  "inertia": clustering.inertia, "seed": options.seed, "inputs": source.files,
                  "date_range": dates, "date_format": source.date_format, "mapping": dict(options.mapping)},
        reference=TrainingReference.from_profiles(profiles, names, source.schema).to_dict(),
    )
    return SegmentationResult(
        segments_table=segments_table, profiles=profiles, k_selection=clustering.k_selection,
        best_sellers=sellers, data_quality=quality, summary=summary, model=model, features=names,
        all_features=feats,
        segments_frame=features.engine.segments_frame(clustering.assignments, ["customer_id", *names],
                                                      [name_of[i] for i in range(k)])
        if clustering.assignments is not None else None,
    )


def _where(source) -> str:
    return source.files[0] if len(source.files) == 1 else (f"{len(source.files)} input files" if source.files
                                                           else "the data")


# ---------------------------------------------------------------------------- scoring with a model


@dataclass
class Predictions:
    """Scored customers: customer_id, the model's features, segment, segment_name (and --keep columns)."""

    table: pa.Table | None  # None: scored in the database and not fetched (written with write_table)
    model: SegmentationModel
    data_quality: dict[str, Any]
    lifecycle: dict[str, Any] | None = None  # how p_alive and CLV were scored, or why not
    segment_counts: list[int] | None = None  # customers per segment, when counted by the database
    written_table: str | None = None         # the database table the scores were written into
    # How these customers compare with the training data (profiles/drift.py): warnings and metadata;
    # None when the model holds no training reference (a version-1 model.json).
    drift: Any = None

    @property
    def frame(self) -> pd.DataFrame:
        return self.table.to_pandas()

    @property
    def customers(self) -> int:
        return int(sum(self.segment_counts)) if self.segment_counts is not None else self.table.num_rows

    def counts(self) -> dict[str, int]:
        """Customers per segment name, in segment order (empty segments included)."""
        counts = self.segment_counts if self.segment_counts is not None else \
            np.bincount(self.table.column("segment").to_numpy(), minlength=self.model.k)
        return {name: int(c) for name, c in zip(self.model.segment_names, counts)}

    def metadata(self) -> dict[str, Any]:
        """What is written beside the predictions (<out>.json): the model, the data quality and the drift check."""
        return {"model_segments": self.model.segment_names, "customers": self.table.num_rows,
                "data_quality": self.data_quality,
                "drift": self.drift.metadata if self.drift is not None else
                {"checked": False, "reason": "the model file holds no training reference (model.json version 1); "
                                             "train it again with this custseg to have predictions checked"}}


def score(model: SegmentationModel | str | os.PathLike, data, *, schema: str = "auto",
          mapping: dict[str, str] | None = None, sheet: str | None = None, date_format: str = "auto",
          engine: EngineOptions | None = None, progress: ProgressCallback | None = None,
          table: str | None = None, query: str | None = None, write_table: str | None = None,
          if_exists: str = "fail", fetch: bool = True, keep: list[str] | str | None = None,
          workbook: bool = False) -> Predictions:
    """Read order lines (paths, globs or a DataFrame), compute the model's features and assign segments;
    customers unlike the training data are reported through `progress` ("warn") and in `drift`.

    From a database (a URL with `table` or `query`, or an Ibis table expression), the features, the
    scaling and the nearest centre are one query that runs in the database (clustering/in_database.py):
    with `write_table` its result is written there; only with `fetch` do the scored customers come back."""
    from .model import as_model, model_label  # SciPy, pandas: heavy (imported on use)

    label = model_label(model)
    model = as_model(model)
    options = with_database(RunOptions(schema=schema, mapping=dict(mapping or {}), sheet=sheet,
                                       date_format=date_format, engine=engine or EngineOptions(), table=table,
                                       query=query, write_table=write_table, if_exists=if_exists,
                                       keep=keep, workbook=workbook), data)
    options.validate()
    stages = Stages(progress)
    with contextlib.closing(connect(options.engine)) as engine:  # (as in run: the predictions hold Arrow tables)
        return _score(engine, model, label, data, options, stages, fetch)


def _score(engine: Engine, model: SegmentationModel, label: str, data, options: RunOptions, stages: Stages,
           fetch: bool) -> Predictions:
    from .profiles.drift import TrainingReference, check_drift  # pandas: heavy (imported on use)
    from .profiles.explain import explain
    from .profiles.lifecycle import add_to_table, for_new_customers

    engine.prepare(data, options.table, options.query, options.write_table, options.if_exists)
    if engine.reads_database:
        with engine.translating():
            return score_in_database(engine, model, label, data, options, stages, fetch)
    features = compute_features(engine, data, options, stages, model=model, model_name=label)
    if features.table.num_rows == 0:
        where = features.source.files[0] if features.source.files else "the data"
        raise CustsegError(f"{where}: no customer with orders after cleaning; there is nothing to score.")
    with stages.stage("scoring", f"assigning {features.table.num_rows:,} customers to the {model.k} segments"):
        labels = model.predict(features.matrix())
        # the run's per-customer columns (RFM among the scored customers, margins to the model's centres)
        columns = {n: features.table.column(n).to_numpy(zero_copy_only=False)
                   for n in features.table.column_names if n != "customer_id"}
        why = explain(columns, model.scaling.transform(features.matrix(), copy=False), model.centers, labels,
                      model.k, SEED, stability=False)
    table = pa.table({
        "customer_id": features.table.column("customer_id"),
        **{name: features.table.column(name) for name in model.features},
        "segment": pa.array(labels, pa.int64()),
        "segment_name": pa.array(model.segment_names, pa.string()).take(pa.array(labels)),
        **why.customers,
    })
    with stages.stage("lifecycle", "scoring P(alive), expected orders and value"):
        outcome = for_new_customers(model, features.cleaned.lines, features.source.provided,
                                    features.quality.get("date_range"), table.column("customer_id"), SEED)
        if outcome.scores:
            table = add_to_table(table, outcome)
        else:
            stages.warn(outcome.info["reason"])
    table = attach(table, features.kept)
    quality = dict(features.quality)
    quality["customers_kept"] = table.num_rows
    drift = None
    if model.reference is not None:
        drift = check_drift(TrainingReference.from_dict(model.reference, model.segment_names),
                            {name: features.table.column(name).to_numpy(zero_copy_only=False)
                             for name in model.features}, labels, schema=features.source.schema)
        for line in drift.warnings:
            stages.warn(line)
    return Predictions(table=table, model=model, data_quality=quality, lifecycle=outcome.info, drift=drift)


def score_in_database(engine: Engine, model: SegmentationModel, label: str, data, options: RunOptions,
                      stages: Stages, fetch: bool) -> Predictions:
    """score() where the order lines are: a database computes the features and the segments."""
    features = compute_features(engine, data, options, stages, model=model, model_name=label, lazy_only=True)
    customers = features.lazy
    segment = nearest_centre(customers, model.features, model.scaling, model.centers)
    scored = customers.mutate(segment=segment)
    scored = scored.mutate(segment_name=named(scored.segment, model.segment_names)).select(
        "customer_id", *model.features, "segment", "segment_name")
    written = None
    if options.write_table is not None:
        with stages.stage("write-table", f"scoring in the database into {options.write_table}"):
            written = engine.write_segments(scored, options.write_table, options.if_exists)
    with stages.stage("scoring", f"counting the customers of the {model.k} segments"):
        counted = engine.execute(scored.group_by("segment").aggregate(customers=scored.count()))
        per_segment = dict(zip(map(int, counted["segment"]), map(int, counted["customers"])))
        segment_counts = [per_segment.get(index, 0) for index in range(model.k)]
    if sum(segment_counts) == 0:
        raise CustsegError(f"{_where(features.source)}: no customer with orders after cleaning; there is "
                           "nothing to score.")
    table = None
    if fetch:
        table = engine.fetch_customers(scored, natural_order)
        table = table.set_column(table.schema.get_field_index("segment"), "segment",
                                 table.column("segment").cast(pa.int64()))
    if engine.transfer_note():
        stages.note(engine.transfer_note())
    quality = dict(features.quality)
    quality["customers_kept"] = sum(segment_counts)
    return Predictions(table=table, model=model, data_quality=quality, segment_counts=segment_counts,
                       written_table=written)
