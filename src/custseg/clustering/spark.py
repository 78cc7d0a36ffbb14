"""Clustering on Spark MLlib, for customer tables too large to collect.

The same step as clustering.py (scale, sweep k, choose k at the elbow, fit, number the
segments by their centres), run where the customer table lives:

* scaling: signed log1p and/or standardisation as Spark column expressions, the mean and
  (population) standard deviation computed by Spark;
* sweep: MLlib KMeans (k-means|| initialisation, the run's seed and max_iter) for
  k = 2..k_max on a uniform sample, inertia = training cost (k = 1: the total sum of
  squares); Calinski-Harabasz follows exactly from the costs; silhouette comes from
  MLlib's ClusteringEvaluator (squared Euclidean, as MLlib defines it) and Davies-Bouldin
  from scikit-learn, both on a sample of at most `silhouette_sample` rows;
* choice: `clustering.choose_k`, as for scikit-learn;
* final model: MLlib KMeans on every customer. MLlib has no n_init: k-means|| is its
  (parallel) way to a good start.

Segments are numbered by ascending centre (first feature first), as CustomerSegmenter does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import davies_bouldin_score

from ..options import SCALES
from .choose_k import KChoice, choose_k
from .scaling import Scaling
from ..engines.spark import spark_to_arrow
from ..errors import CustsegError
from ..features import natural_order_indices

VECTOR = "custseg_vector"
PREDICTION = "custseg_prediction"


@dataclass
class SparkKMeans:
    """What the MLlib fit produced; `assigned` is the input frame with an integer `segment` column."""

    assigned: Any            # Spark DataFrame
    centers: np.ndarray      # sorted, in the scaled space
    scaling: Scaling
    choice: KChoice
    k_selection: pd.DataFrame
    inertia: float


def materialize_customers(engine, customers, local_limit: int, sample_size: int, seed: int):
    """The customer table (an Ibis expression on Spark), collected when small enough.

    Returns (arrow, frame, count): below `local_limit` rows, every customer in natural
    order as Arrow and (None, None); above it, a uniform sample of about `sample_size`
    customers (for checks and the report's drawings), the persisted Spark DataFrame of
    everyone, and the number of customers.
    """
    frame = engine.frame(customers).persist()
    n = frame.count()
    schema = customers.schema()
    if n <= local_limit:
        arrow = natural_order_arrow(spark_to_arrow(frame, schema))
        frame.unpersist()
        return arrow, None, None
    sample = frame.sample(False, min(1.0, sample_size / n), seed)
    return natural_order_arrow(spark_to_arrow(sample, schema)), frame, n


def natural_order_arrow(table: pa.Table) -> pa.Table:
    """features.natural_order on a collected table."""
    return table.take(natural_order_indices(table.column("customer_id")))


def _scaled(frame, names: list[str], scaling: Scaling):
    """Columns of the scaled features (signed log1p, then standardisation), as Spark expressions."""
    from pyspark.sql import functions as F  # optional (custseg[spark])

    out = []
    for i, name in enumerate(names):
        col = F.col(name).cast("double")
        if scaling.method.startswith("log"):
            col = F.signum(col) * F.log1p(F.abs(col))
        if scaling.method in ("log-standard", "standard"):
            col = (col - F.lit(float(scaling.mean[i]))) / F.lit(float(scaling.scale[i]))
        out.append(col.alias(f"custseg_z{i}"))
    return out


def fit_scaling(frame, names: list[str], method: str) -> Scaling:
    """Scaling.fit computed by Spark (population standard deviation, like numpy)."""
    from pyspark.sql import functions as F  # optional (custseg[spark])

    if method not in SCALES:
        raise CustsegError(f"--scale {method!r} is unknown; use one of: {', '.join(SCALES)}.")
    n = len(names)
    mean, scale = np.zeros(n), np.ones(n)
    if method in ("log-standard", "standard"):
        logged = _scaled(frame, names, Scaling("log" if method == "log-standard" else "none", mean, scale))
        row = frame.select(*logged).agg(
            *[F.avg(c) for c in [f"custseg_z{i}" for i in range(n)]],
            *[F.stddev_pop(c) for c in [f"custseg_z{i}" for i in range(n)]],
        ).first()
        mean = np.array([float(v) for v in row[:n]])
        std = np.array([float(v) for v in row[n:]])
        scale = np.where(std > 0, std, 1.0)
    return Scaling(method, mean, scale)


def _vectors(frame, names: list[str], scaling: Scaling, keep: list[str]):
    from pyspark.ml.feature import VectorAssembler  # optional (custseg[spark])

    z = [f"custseg_z{i}" for i in range(len(names))]
    scaled = frame.select(*keep, *_scaled(frame, names, scaling))
    return VectorAssembler(inputCols=z, outputCol=VECTOR).transform(scaled).select(*keep, VECTOR)


def _kmeans(k: int, seed: int, max_iter: int):
    from pyspark.ml.clustering import KMeans  # optional (custseg[spark])

    return KMeans(featuresCol=VECTOR, predictionCol=PREDICTION, k=k, initMode="k-means||", initSteps=2,
                  maxIter=max_iter, tol=1e-4, seed=seed, distanceMeasure="euclidean")


def _total_sum_of_squares(vectors, n_features: int) -> float:
    """Inertia of k = 1 (MLlib needs k >= 2): the sum of squared distances to the mean."""
    from pyspark.ml.functions import vector_to_array  # optional (custseg[spark])
    from pyspark.sql import functions as F  # optional (custseg[spark])

    arr = vectors.select(vector_to_array(VECTOR).alias("v"))
    parts = [F.var_pop(F.col("v")[i]) * F.count(F.lit(1)) for i in range(n_features)]
    row = arr.agg(*parts).first()
    return float(sum(float(v or 0.0) for v in row))


def sweep_k_spark(vectors, n_features: int, k_max: int, seed: int, silhouette_sample: int,
                  max_iter: int) -> dict[str, list]:
    """k, inertia, silhouette, calinski_harabasz, davies_bouldin for k = 1..k_max (MLlib)."""
    from pyspark.ml.evaluation import ClusteringEvaluator  # optional (custseg[spark])
    from pyspark.ml.functions import vector_to_array  # optional (custseg[spark])

    n = vectors.count()
    rows: dict[str, list] = {"k": [1], "inertia": [], "silhouette": [np.nan], "calinski_harabasz": [np.nan],
                             "davies_bouldin": [np.nan]}
    total = _total_sum_of_squares(vectors, n_features)
    rows["inertia"].append(total)
    fraction = min(1.0, silhouette_sample / max(n, 1))
    sil = (vectors if fraction >= 1.0 else vectors.sample(False, fraction, seed)).cache()
    sil_points = np.array(sil.select(vector_to_array(VECTOR).alias("v")).toPandas()["v"].tolist(), dtype=float)
    evaluator = ClusteringEvaluator(featuresCol=VECTOR, predictionCol=PREDICTION, metricName="silhouette",
                                    distanceMeasure="squaredEuclidean")
    for k in range(2, min(k_max, n - 1) + 1):
        model = _kmeans(k, seed, max_iter).fit(vectors)
        cost = float(model.summary.trainingCost)
        found = len(model.clusterCenters())
        rows["k"].append(k)
        rows["inertia"].append(cost)
        rows["calinski_harabasz"].append((total - cost) / (k - 1) / (cost / (n - k)) if cost > 0 else np.nan)
        predicted = model.transform(sil)
        labels = np.array(predicted.select(PREDICTION).toPandas()[PREDICTION], dtype=np.int64)
        if found >= 2 and len(np.unique(labels)) >= 2:
            rows["silhouette"].append(float(evaluator.evaluate(predicted)))
            rows["davies_bouldin"].append(float(davies_bouldin_score(sil_points, labels)))
        else:
            rows["silhouette"].append(np.nan)
            rows["davies_bouldin"].append(np.nan)
        if found < k:  # fewer distinct points than k: larger k cannot do better
            break
    sil.unpersist()
    return rows


def fit_mllib(frame, names: list[str], *, k: int | None, k_max: int, scale: str, seed: int, max_iter: int,
              sweep_sample: int, silhouette_sample: int, customers: int | None = None) -> SparkKMeans:
    """Scale, sweep, choose k and fit MLlib KMeans on a Spark DataFrame of customers (customer_id + features)."""
    from pyspark.sql import functions as F  # optional (custseg[spark])

    keep = list(frame.columns)
    scaling = fit_scaling(frame, names, scale)
    vectors = _vectors(frame, names, scaling, keep).persist()
    try:
        n = customers if customers is not None else vectors.count()
        if k is None:
            fraction = min(1.0, sweep_sample / max(n, 1))
            # The sample is small (<= sweep_sample rows): one partition saves a task per partition
            # and per iteration of each of the k_max fits.
            sample = (vectors if fraction >= 1.0 else vectors.sample(False, fraction, seed)).select(VECTOR) \
                .coalesce(1).cache()
            try:
                table = sweep_k_spark(sample, len(names), k_max, seed, silhouette_sample, max_iter)
            finally:
                sample.unpersist()
            choice = choose_k(table["k"], table["inertia"], table["silhouette"])
            k_selection = pd.DataFrame(table)
        else:
            choice = KChoice(int(k), "given", f"k = {int(k)} was given")
            k_selection = pd.DataFrame(columns=["k", "inertia", "silhouette", "calinski_harabasz",
                                                "davies_bouldin"])
        if choice.k == 1:
            raise CustsegError("k = 1 puts every customer in one segment; give --k 2 or more.")
        model = _kmeans(choice.k, seed, max_iter).fit(vectors)
        centres = np.array([np.asarray(c, dtype=float) for c in model.clusterCenters()])
        # Number segments by ascending centre, first feature first (as CustomerSegmenter).
        order = np.lexsort(tuple(centres[:, j] for j in reversed(range(centres.shape[1]))))
        new_id = np.empty(len(order), dtype=np.int64)
        new_id[order] = np.arange(len(order))
        mapping = F.array(*[F.lit(int(v)) for v in new_id])
        assigned = model.transform(vectors).select(
            *keep, F.element_at(mapping, F.col(PREDICTION) + 1).cast("long").alias("segment"))
        assigned = assigned.persist()
        assigned.count()  # materialise before the vectors are released
        vectors.unpersist()
        if len(centres) < choice.k:  # fewer distinct customers than k
            choice = KChoice(len(centres), choice.method, choice.reason + f"; only {len(centres)} distinct centres")
        return SparkKMeans(assigned=assigned, centers=centres[order], scaling=scaling, choice=choice,
                           k_selection=k_selection, inertia=float(model.summary.trainingCost))
    except Exception:
        vectors.unpersist()
        raise
