"""Seed resamples of many claims at once, as arrays (draws × claims): the statistics of each claim's own test on
every resample, Holm over each family, the corrected interval and the verdict the engine's rules give
(:mod:`.repeat` says what the resampling means; this module is how it is computed quickly).

Every number is computed with the same floating-point operations, in the same order, as the engine's scalar
path (:func:`.engine.measure`, :func:`.engine.judge_family`, :func:`.engine.decide` on one resample): numpy
reduces the last axis of an array row by row exactly as it reduces a one-dimensional array of that row, and the
t distribution is the same ``scipy.special`` function. So the verdicts are those of the scalar path, not close to
them; ``tests/test_claims_repeat.py`` compares the two. The variance test (Pitman-Morgan) goes through a
correlation whose BLAS product has no row-wise equivalent; it stays the scalar function, one call per resample.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..analysis.stats import IDENTICAL_TOLERANCE, pitman_morgan_arrays
from .engine import ClaimResult
from .rules import CODES, INC, SMA, WIT, verdict_rule

__all__ = ["CODES", "resample_statistics", "seed_draws", "verdict_codes"]


@dataclass
class Resamples:
    """Per draw (rows) and claim (columns): paired seeds, the mean and sd of the differences, whether they can
    be tested (two or more, not all the same), the claim's own test's p and the spreads' ratio."""
    n: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    testable: np.ndarray
    p_test: np.ndarray
    sd_ratio: np.ndarray


def seed_draws(pool: Sequence[int], draws: int, seed: int) -> np.ndarray:
    """Row i: the positions in ``pool`` of the i-th resample's seeds (one ``rng.choice`` per resample, so the
    random stream is the one the scalar path drew)."""
    rng = np.random.default_rng(seed)
    ordered = np.asarray(pool)
    return np.stack([np.searchsorted(ordered, rng.choice(pool, size=len(pool), replace=True))
                     for _ in range(draws)]).reshape(draws, len(pool))


def _side_arrays(sides: Sequence[tuple[Mapping[int, float], Mapping[int, float]]], pool: Sequence[int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A and B of every claim over the pool (NaN where a side is absent) and where both sides are present."""
    present = np.array([[s in x and s in y for s in pool] for x, y in sides], dtype=bool).reshape(len(sides), -1)
    a, b = (np.array([[side[k].get(s, math.nan) for s in pool] for side in sides], dtype=float)
            .reshape(len(sides), len(pool)) for k in (0, 1))
    return a, b, present


def resample_statistics(results: Sequence[ClaimResult],
                        sides: Sequence[tuple[Mapping[int, float], Mapping[int, float]]], pool: Sequence[int],
                        picks: np.ndarray, smallest_effect: float) -> Resamples:
    """The statistics of every claim (``results[i]`` with values ``sides[i]``) on every resample ``picks``.
    A resample keeps, in drawn order, the drawn seeds the claim has both values of."""
    a, b, present = _side_arrays(sides, pool)
    shape = (len(picks), len(results))
    out = Resamples(np.zeros(shape, dtype=int), *(np.full(shape, math.nan) for _ in range(2)),
                    np.zeros(shape, dtype=bool), *(np.full(shape, math.nan) for _ in range(2)))
    patterns: dict[bytes, list[int]] = {}
    for i, mask in enumerate(present):
        patterns.setdefault(mask.tobytes(), []).append(i)
    for members in patterns.values():
        kept = present[members[0]][picks]  # which drawn seeds this pattern has
        counts = kept.sum(axis=1)
        for n in np.unique(counts):
            rows = np.flatnonzero(counts == n)
            chosen = picks[rows][kept[rows]].reshape(len(rows), int(n))
            _fill(out, results, members, rows, a[members][:, chosen], b[members][:, chosen], smallest_effect)
    return out


def _fill(out: Resamples, results: Sequence[ClaimResult], members: list[int], rows: np.ndarray, a: np.ndarray,
          b: np.ndarray, smallest_effect: float) -> None:
    """``out`` at (rows, members) from the drawn values a, b (members × rows × n)."""
    n = a.shape[-1]
    at = np.ix_(rows, members)
    out.n[at] = n
    if n == 0:
        return
    diff = a - b
    mean = diff.mean(axis=-1)
    out.mean[at] = mean.T
    if n < 2:
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = diff.std(axis=-1, ddof=1)
        testable = (diff.max(axis=-1) - diff.min(axis=-1)) > IDENTICAL_TOLERANCE
        se = sd / math.sqrt(n)
        two_sided = 2 * special.stdtr(n - 1, -abs(mean / se))
        p = np.stack([_own_p(results[i], n, mean[k], se[k], two_sided[k], smallest_effect)
                      for k, i in enumerate(members)])
    out.sd[at], out.testable[at] = sd.T, testable.T
    out.p_test[at] = np.where(testable, p, math.nan).T
    for k, i in enumerate(members):
        if results[i].direction == "less_variable":  # Pitman-Morgan reads both samples: see the docstring
            scores = [pitman_morgan_arrays(x, y)[:2] for x, y in zip(a[k], b[k])]
            out.sd_ratio[rows, i], out.p_test[rows, i] = np.array(scores, dtype=float).reshape(-1, 2).T


def _own_p(result: ClaimResult, n: int, mean: np.ndarray, se: np.ndarray, two_sided: np.ndarray,
           smallest_effect: float) -> np.ndarray:
    """:func:`.engine.own_test_p` on arrays (its TOST and non-superiority p as :mod:`..analysis.stats` computes
    them)."""
    if result.direction == "equivalent":
        margin = float(result.margin)
        lower = special.stdtr(n - 1, -(mean + margin) / se)
        upper = special.stdtr(n - 1, (mean - margin) / se)
        return np.where(upper > lower, upper, lower)  # max(lower, upper)
    if result.direction == "not_better":
        return special.stdtr(n - 1, (mean - smallest_effect) / se)
    return two_sided


def holm_rows(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`..analysis.stats.holm` of every row of ``p`` and each row's family size (its non-NaN entries)."""
    missing = np.isnan(p)
    m = (~missing).sum(axis=1)
    order = np.argsort(np.where(missing, np.inf, p), axis=1, kind="stable")  # ties by position, as sorted() does
    ranked = np.take_along_axis(p, order, axis=1)
    with np.errstate(invalid="ignore"):
        scaled = np.minimum(1.0, (m[:, None] - np.arange(p.shape[1])) * ranked)
    running = np.maximum.accumulate(np.where(np.isnan(scaled), -np.inf, scaled), axis=1)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, running, axis=1)
    return np.where(missing, math.nan, adjusted), m


def verdict_codes(results: Sequence[ClaimResult], stats: Resamples, *, alpha: float,
                  check_paper_magnitude: bool) -> np.ndarray:
    """Draws × claims: the code (:data:`CODES`) of the verdict :func:`.engine.decide` gives each resample, after
    Holm over each family (:func:`.engine.judge_family`, without power planning)."""
    p_holm, level = np.full(stats.p_test.shape, math.nan), np.full(stats.p_test.shape, math.nan)
    for family in dict.fromkeys(r.family for r in results):
        members = [i for i, r in enumerate(results) if r.family == family]
        adjusted, m = holm_rows(stats.p_test[:, members])
        p_holm[:, members] = adjusted
        level[:, members] = (alpha / np.maximum(1, m))[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        half = special.stdtrit(stats.n - 1, 1 - level / 2) * stats.sd / np.sqrt(stats.n)
    low = np.where(stats.testable, stats.mean - half, math.nan)
    high = np.where(stats.testable, stats.mean + half, math.nan)
    codes = np.empty(stats.p_test.shape, dtype=np.int8)
    for i, r in enumerate(results):
        column = verdict_rule(r.direction, p_holm[:, i] < alpha, stats.mean[:, i], low[:, i], high[:, i],
                              stats.sd_ratio[:, i], margin=r.margin, paper_effect=r.paper_effect,
                              compare=check_paper_magnitude and r.paper_setting)
        column = np.where(np.isnan(stats.p_test[:, i]), INC, column)
        if any(f.code == "resolution" for f in r.flags):
            column = np.where(column <= SMA, WIT, column)  # a resolved verdict is withheld
        codes[:, i] = column
    return codes
