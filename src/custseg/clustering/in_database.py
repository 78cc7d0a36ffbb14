"""A model's scaling and nearest-centre rule as an Ibis expression, so that scoring runs where the
customer table is (a SQL database) and no customer row leaves it.

The arithmetic follows scaling.Scaling.transform and scaling.assign step by step: the signed
log1p, then (z - mean) / scale; squared distances summed feature by feature in the model's order;
the nearest centre, ties to the lower index. log1p is computed with Goldberg's formula
(ln(1 + x) * x / ((1 + x) - 1)), about as accurate as the C library's log1p; a customer exactly
halfway between two centres goes to the lower one in both scorers (tests/test_db_engine.py).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np

from .scaling import Scaling


def log1p(x: ir.FloatingValue) -> ir.FloatingValue:
    """log(1 + x) for x >= 0, accurate for small x (where 1 + x rounds)."""
    u = 1.0 + x
    return ibis.ifelse(u == 1.0, x, u.ln() * (x / (u - 1.0)))


def scaled(values: list[ir.FloatingValue], scaling: Scaling) -> list[ir.FloatingValue]:
    """Each feature as Scaling.transform gives it."""
    out = []
    for index, value in enumerate(values):
        value = value.cast("float64")
        if scaling.method.startswith("log"):
            logged = log1p(value.abs())
            value = ibis.ifelse(value < 0, -logged, logged)
        if scaling.method in ("log-standard", "standard"):
            value = (value - float(scaling.mean[index])) / float(scaling.scale[index])
        out.append(value)
    return out


def squared_distances(z: list[ir.FloatingValue], centres: np.ndarray) -> list[ir.FloatingValue]:
    """Squared distance to each centre, summed feature by feature (scaling.block_distances' order)."""
    distances = []
    for centre in np.asarray(centres, dtype=np.float64):
        total = None
        for value, c in zip(z, centre):
            diff = value - float(c)
            total = diff * diff if total is None else total + diff * diff
        distances.append(total)
    return distances


def nearest_centre(table: ir.Table, features: list[str], scaling: Scaling, centres: np.ndarray) -> ir.IntegerValue:
    """The index of the nearest centre for each row of `table` (ties to the lower index)."""
    d = squared_distances(scaled([table[name] for name in features], scaling), centres)
    k = len(d)
    if k == 1:
        return ibis.literal(0, "int64")
    cases = []
    for j in range(k - 1):
        condition = None
        for i in range(k):
            if i == j:
                continue
            # strictly nearer than every lower index, no farther than every higher one
            test = d[j] < d[i] if i < j else d[j] <= d[i]
            condition = test if condition is None else condition & test
        cases.append((condition, j))
    return ibis.cases(*cases, else_=k - 1).cast("int64")


def named(segment: ir.IntegerValue, names: list[str]) -> ir.StringValue:
    """The segment's name."""
    return ibis.cases(*[(segment == index, name) for index, name in enumerate(names)], else_=ibis.null("string"))
