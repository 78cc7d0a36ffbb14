"""compare of two independent fits: align run B's segments to run A's by their centres (issue 17).

Two runs fitted separately (no `run --model`) have unrelated segment numbers and names, so
matching them by name reports customers as moved who merely got another label. Here each of B's
centres is matched to at most one of A's by an optimal assignment (the Hungarian method,
scipy.optimize.linear_sum_assignment) that minimises the sum of Euclidean distances between
matched centres, measured in run A's scaled feature space: B's centres are mapped back to shop
units with B's scaling and scaled again with A's, so two runs that scaled differently are still
compared in one space.

- The runs must use the same features (in any order); otherwise there is no common space and the
  comparison is refused, pointing at `run --model`, which scores the second period with the first
  period's model (segments then correspond by construction).
- Different k: min(k_A, k_B) pairs are made; the segments left over on either side are reported as
  unmatched (new or vanished segments), never forced onto a far centre.
- A pair is marked weak when the matched centres lie further apart than half the distance from A's
  centre to its nearest other A centre: closer to the midpoint with a neighbour than to a match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CustsegError

WEAK_FRACTION = 0.5  # a pair is weak beyond this fraction of A's centre's distance to its nearest A neighbour


@dataclass
class Pair:
    a: int              # segment number in run A
    b: int              # segment number in run B
    distance: float     # between the centres, in A's scaled feature space
    weak: bool


@dataclass
class Alignment:
    pairs: list[Pair]
    unmatched_a: list[int] = field(default_factory=list)  # A's segments no B segment matched
    unmatched_b: list[int] = field(default_factory=list)  # B's segments matched to none of A's
    same_model: bool = False

    def a_of(self, b: int) -> int | None:
        """The A segment that B's segment `b` is aligned to, or None."""
        return next((p.a for p in self.pairs if p.b == b), None)

    def note(self, names_a: list[str] | None = None, names_b: list[str] | None = None) -> str:
        """What to say at the top of the comparison."""
        if self.same_model:
            return "Both runs use the same model: segments correspond by number."
        na = (lambda i: f"{i} ({names_a[i]})") if names_a else str
        nb = (lambda i: f"{i} ({names_b[i]})") if names_b else str
        k_a = len(self.pairs) + len(self.unmatched_a)
        k_b = len(self.pairs) + len(self.unmatched_b)
        text = (f"The second run was fitted on its own (not with 'run --model'), so its {k_b} segments were "
                f"aligned to the first run's {k_a} by their centres (optimal matching on distances in the "
                "first run's scaled feature space), not by name. Matched: "
                + "; ".join(f"{nb(p.b)} -> {na(p.a)}" + (" (weak: the centres are far apart)" if p.weak else "")
                            for p in self.pairs) + ".")
        if self.unmatched_b:
            text += " New in the second run (no counterpart): " + ", ".join(nb(b) for b in self.unmatched_b) + "."
        if self.unmatched_a:
            text += " Without a counterpart in the second run: " + ", ".join(na(a) for a in self.unmatched_a) + "."
        text += " To follow the same segments over time, run the second period with --model FIRST_RUN."
        return text

    def to_dict(self) -> dict:
        return {"method": "same model" if self.same_model else "centres (optimal matching)",
                "pairs": [{"a": p.a, "b": p.b, "distance": p.distance, "weak": p.weak} for p in self.pairs],
                "unmatched_a": list(self.unmatched_a), "unmatched_b": list(self.unmatched_b)}


def match_centres(a: np.ndarray, b: np.ndarray) -> Alignment:
    """Optimal one-to-one matching of the rows of `b` to the rows of `a` (same space, same columns)."""
    from scipy.optimize import linear_sum_assignment  # scipy is heavy; only compare needs it here

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise CustsegError(f"centres of shapes {a.shape} and {b.shape} cannot be aligned.")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise CustsegError("a centre is not finite in the common feature space; the runs cannot be aligned.")
    distances = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))  # (k_a, k_b)
    rows, cols = linear_sum_assignment(distances)
    if len(a) > 1:
        between = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(axis=2))
        np.fill_diagonal(between, np.inf)
        nearest = between.min(axis=1)
    else:
        nearest = np.full(1, np.inf)
    pairs = sorted((Pair(int(i), int(j), float(distances[i, j]),
                         bool(distances[i, j] > WEAK_FRACTION * nearest[i])) for i, j in zip(rows, cols)),
                   key=lambda p: p.a)
    return Alignment(pairs=pairs, unmatched_a=sorted(set(range(len(a))) - set(map(int, rows))),
                     unmatched_b=sorted(set(range(len(b))) - set(map(int, cols))))


def same_model(model_a, model_b) -> bool:
    """Whether run B was scored with run A's model (same features, scaling and centres)."""
    return (list(model_a.features) == list(model_b.features)
            and model_a.scaling.method == model_b.scaling.method
            and np.array_equal(model_a.scaling.mean, model_b.scaling.mean)
            and np.array_equal(model_a.scaling.scale, model_b.scaling.scale)
            and np.array_equal(model_a.centers, model_b.centers))


def align_models(model_a, model_b, label_a: str = "the first run", label_b: str = "the second run") -> Alignment:
    """Align model_b's segments to model_a's (SegmentationModel, or anything with features, scaling,
    centers). Same model: identity by number. Different features: CustsegError."""
    if same_model(model_a, model_b):
        k = model_a.centers.shape[0]
        return Alignment(pairs=[Pair(i, i, 0.0, False) for i in range(k)], same_model=True)
    features_a, features_b = list(model_a.features), list(model_b.features)
    if set(features_a) != set(features_b) or len(features_a) != len(features_b):
        only_a = [f for f in features_a if f not in features_b]
        only_b = [f for f in features_b if f not in features_a]
        raise CustsegError(
            f"{label_a} and {label_b} were clustered on different features ({label_a} only: "
            f"{', '.join(only_a) or 'none'}; {label_b} only: {', '.join(only_b) or 'none'}), so their segments "
            f"cannot be aligned; run the second period with --model pointing at {label_a} to score it with the "
            "same segments.")
    order = [features_b.index(f) for f in features_a]
    with np.errstate(over="ignore", invalid="ignore"):
        raw_b = model_b.scaling.inverse_transform(np.asarray(model_b.centers, dtype=np.float64))[:, order]
        b_in_a = model_a.scaling.transform(raw_b)
    return match_centres(np.asarray(model_a.centers, dtype=np.float64), b_in_a)
