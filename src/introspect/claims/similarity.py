"""Class-similarity claims (direction ``similar_pairs``): Figure 2(b), "the two classes in each class pair
{(0,6),(1,7),(3,5),(4,9)} are more similar to each other than other class pairs".

The data is the figure's own: the cosine distance between the explanations of every two classes, averaged over
the test set (``figures/<figure>.csv``, the panel of the claim's model and method). The test is exact: under the
null that the named pairs are no more similar than any others, they are k pairs drawn at random from the
C(K, 2) unordered pairs of K classes, so the p-value is the share of all k-subsets whose mean distance is at most
the named pairs' mean (lower tail: more similar); its upper tail would say they are less similar.

- replicated    lower-tail p (Holm-adjusted in its family) < alpha;
- contradicted  upper-tail p < alpha: the named pairs are less similar than the others;
- otherwise inconclusive.

Limits, stated in every result: the figure is one trained model (the config's first seed), so the test's
randomness is the choice of pairs, not the training; no seed can be resampled, so the claim has no repeat
probability. Effect: the mean distance of the other pairs minus the named pairs' (positive: the named pairs
are closer).
"""
from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..analysis.stats import NAN
from ..config.claim import Claim
from ..io import FileRefused, read_text
from ..runs.record import ResultsLayout, RunFileError
from .engine import CONTRADICTED, INCONCLUSIVE, REPLICATED, ClaimResult

MAX_SUBSETS = 5_000_000  # exact enumeration up to this many k-subsets (45 pairs, k = 4: 148,995)


def pair_distances(frame: pd.DataFrame, panel: str) -> dict[frozenset[str], float]:
    """Unordered class pair -> cosine distance of one panel (the mean of its two directions)."""
    rows = frame[frame.panel == panel]
    table: dict[frozenset[str], list[float]] = {}
    for a, b, d in zip(rows.class_a.astype(str), rows.class_b.astype(str), rows.cosine_distance.astype(float)):
        if a != b:
            table.setdefault(frozenset((a, b)), []).append(d)
    return {pair: float(np.mean(values)) for pair, values in table.items()}


def subset_p_values(distances: Sequence[float], named: Sequence[int]) -> tuple[float, float]:
    """Exact (lower, upper) tail p-values of the named indices' mean among all subsets of their size."""
    values, k = np.asarray(distances, dtype=float), len(named)
    observed = float(values[list(named)].mean())
    if math.comb(len(values), k) > MAX_SUBSETS:
        raise ValueError(f"{math.comb(len(values), k)} subsets: too many to enumerate")
    means = np.array([values[list(c)].mean() for c in itertools.combinations(range(len(values)), k)])
    tolerance = 1e-12
    return float(np.mean(means <= observed + tolerance)), float(np.mean(means >= observed - tolerance))


def similarity_result(spec: Claim, layout: ResultsLayout, *, alpha: float = 0.05) -> ClaimResult:
    """The verdict on one similar_pairs claim from its figure's CSV (alone in its Holm family unless others
    share it: the caller adjusts)."""
    path = layout.figure(spec.view, "csv")
    try:
        frame = pd.read_csv(io.StringIO(read_text(path, "csv")))
    except (OSError, ValueError, pd.errors.ParserError, FileRefused) as error:
        raise RunFileError(f"{path}: cannot read it ({' '.join(str(error).split())}); build {spec.view} first") \
            from None
    distances = pair_distances(frame, spec.group)
    pairs = list(distances)
    named = [frozenset(p) for p in spec.pairs]
    missing = [sorted(p) for p in named if p not in distances]
    result = ClaimResult(
        name=spec.name, family=spec.family, model=spec.values_key, dataset=spec.dataset or "",
        method_a=spec.method_a, method_b=spec.method_b, direction=spec.direction, paper_effect=NAN, margin=NAN,
        n_pairs=len(named), n_unpaired=0, unpaired_seeds="", effect=NAN, ci_low=NAN, ci_high=NAN, sd_diff=NAN,
        t=NAN, df=NAN, p=NAN, test="exact subset test of class-pair distances", text=spec.text,
        paper_setting=False)
    if missing or not named:
        return _with(result, INCONCLUSIVE, f"pairs {missing} are not in {path.name}'s panel {spec.group!r}")
    index = [pairs.index(p) for p in named]
    values = [distances[p] for p in pairs]
    lower, upper = subset_p_values(values, index)
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = ", ".join(f"({'/'.join(sorted(pairs[i]))}) {order.index(i) + 1}" for i in index)
    others = [v for i, v in enumerate(values) if i not in index]
    effect = float(np.mean(others) - np.mean([values[i] for i in index]))
    result.effect, result.p, result.p_test, result.p_holm = effect, lower, lower, lower
    result.family_size, result.alpha_family = 1, alpha
    why = (f"named pairs' similarity ranks among {len(values)} pairs: {ranks}; exact p = {lower:.3g} (more similar), "
           f"{upper:.3g} (less similar); one model of the first seed: no seeds to resample, no repeat probability")
    if lower < alpha:
        return _with(result, REPLICATED, why)
    if upper < alpha:
        return _with(result, CONTRADICTED, why)
    return _with(result, INCONCLUSIVE, why)


def _with(result: ClaimResult, verdict: str, reason: str) -> ClaimResult:
    result.verdict, result.reason = verdict, reason
    return result
