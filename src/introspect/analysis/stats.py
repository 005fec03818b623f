"""Significance tests between methods over seeds: paired t (seeds are shared across methods, so
seed-matched differences remove the seed's variance) and Welch's t, Holm-corrected in a family, and the
minimum detectable effect and the seeds a difference needs, paired or unpaired, at a family's corrected level.

The tests and their intervals are scipy's (``ttest_rel``, ``ttest_ind(equal_var=False)`` and their
``confidence_interval()``), the power calculation is statsmodels'. What this module adds is the refusal to
test degenerate data: with fewer than two observations, or when every paired difference is the same number
(zero spread, so t is ±inf and scipy reports p = 0), there is no estimate of the noise and every statistic is
NaN, with the reason in ``TestResult.reason``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

NAN = float("nan")
# Accuracies are percentages of whole test images; two equal differences computed from different accuracy
# pairs can still differ by float rounding (~1e-13), which would make the spread tiny but non-zero.
IDENTICAL_TOLERANCE = 1e-9


@dataclass
class TestResult:
    test: str  # "paired_t" | "welch_t"
    n_a: int
    n_b: int
    mean_diff: float  # mean(a) - mean(b), over the pairs for the paired test
    statistic: float
    df: float
    p: float  # two-sided
    effect_size: float  # paired: Cohen's d_z; Welch: Cohen's d with pooled SD
    ci_low: float  # CI of the difference (95% unless asked otherwise)
    ci_high: float
    reason: str = ""  # why the statistics are NaN; empty when the test ran


def paired_differences(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[list[int], np.ndarray]:
    """Seeds both have, sorted, and a[seed] - b[seed] for each of them."""
    seeds = sorted(set(a) & set(b))
    return seeds, np.array([a[s] - b[s] for s in seeds], dtype=float)


def degenerate_reason(diff: np.ndarray) -> str:
    """Why a paired test of these differences cannot be computed, or "" if it can."""
    if len(diff) < 2:
        return f"n < 2 (n = {len(diff)} paired seed{'s' if len(diff) != 1 else ''})"
    if np.ptp(diff) <= IDENTICAL_TOLERANCE:
        return f"all paired differences identical ({diff[0]:+.4g} on each of {len(diff)} seeds)"
    return ""


def paired_t(a: Mapping[int, float], b: Mapping[int, float], *, confidence: float = 0.95) -> TestResult:
    """Paired t-test of a - b over the seeds both have (seeds of only one side are left out)."""
    seeds, diff = paired_differences(a, b)
    n = len(seeds)
    mean = float(diff.mean()) if n else NAN
    reason = degenerate_reason(diff)
    if reason:
        return TestResult("paired_t", n, n, mean, NAN, NAN, NAN, NAN, NAN, NAN, reason)
    result = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
    ci = result.confidence_interval(confidence_level=confidence)
    return TestResult("paired_t", n, n, mean, float(result.statistic), float(result.df), float(result.pvalue),
                      mean / float(diff.std(ddof=1)), float(ci.low), float(ci.high))


def welch_t(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> TestResult:
    """Welch's unequal-variance t-test of mean(a) - mean(b)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else NAN
    if len(x) < 2 or len(y) < 2:
        reason = f"n < 2 (n_a = {len(x)}, n_b = {len(y)})"
        return TestResult("welch_t", len(x), len(y), diff, NAN, NAN, NAN, NAN, NAN, NAN, reason)
    if np.ptp(x) <= IDENTICAL_TOLERANCE and np.ptp(y) <= IDENTICAL_TOLERANCE:
        reason = "both samples constant (no spread to test against)"
        return TestResult("welch_t", len(x), len(y), diff, NAN, NAN, NAN, NAN, NAN, NAN, reason)
    result = stats.ttest_ind(x, y, equal_var=False)
    ci = result.confidence_interval(confidence_level=confidence)
    pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
    return TestResult("welch_t", len(x), len(y), diff, float(result.statistic), float(result.df),
                      float(result.pvalue), diff / pooled, float(ci.low), float(ci.high))


def family_level(alpha: float, m: int) -> float:
    """The level one claim of a Holm family of ``m`` tests must reach to be called significant whatever the
    other claims' p-values are: alpha / m, Holm's first-step threshold. Holm's threshold at a claim's rank,
    alpha / (m − rank + 1), depends on the other claims' p-values, so power planned at it would change
    with the data of unrelated claims; alpha / m is the stable, conservative choice (one test: alpha)."""
    return alpha / max(1, m)


def _power_solver(paired: bool):
    from statsmodels.stats.power import TTestIndPower, TTestPower  # here: tables need no statsmodels

    return TTestPower() if paired else TTestIndPower()


def minimum_detectable_effect(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8,
                              paired: bool = True, n_b: int | None = None) -> float:
    """Smallest true mean difference (in the data's units) that a two-sided t-test detects at level
    ``alpha`` with probability ``power``: paired (``n`` pairs whose differences have standard deviation
    ``sd``) or unpaired (``n`` and ``n_b`` observations, ``sd`` the pooled standard deviation).
    NaN when it cannot be computed (fewer than two observations, zero or unknown spread)."""
    n_b = n if n_b is None else n_b
    if n < 2 or (not paired and n_b < 2) or not math.isfinite(sd) or sd <= 0:
        return NAN
    solver = _power_solver(paired)
    if paired:
        d = solver.solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    else:
        d = solver.solve_power(effect_size=None, nobs1=n, ratio=n_b / n, alpha=alpha, power=power,
                               alternative="two-sided")
    return float(np.asarray(d).item()) * sd


def seeds_needed(effect: float, sd: float, *, alpha: float = 0.05, power: float = 0.8, paired: bool = True,
                 limit: int = 10_000_000) -> int | None:
    """The fewest seeds (pairs, or seeds per method when unpaired) at which a two-sided t-test at level
    ``alpha`` detects a true difference ``effect`` with probability ``power``, given the spread ``sd``
    (of the paired differences, or the pooled one). None when it cannot be said (no spread estimate, no
    effect) or would exceed ``limit``. Power grows with n: doubling, then bisection on whole n. Where
    statsmodels' noncentral t gives no number (NaN, for n in the tens of thousands) the normal approximation
    it converges to is used: the t-test's power at such n is the z-test's to many digits."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or effect == 0 or sd <= 0:
        return None
    solver, d = _power_solver(paired), abs(effect) / sd

    def enough(n: int) -> bool:
        kw = {"nobs": n} if paired else {"nobs1": n, "ratio": 1.0}
        value = float(solver.power(effect_size=d, alpha=alpha, alternative="two-sided", **kw))
        if math.isnan(value):
            shift = d * math.sqrt(n if paired else n / 2)
            critical = stats.norm.isf(alpha / 2)
            value = float(stats.norm.sf(critical - shift) + stats.norm.cdf(-critical - shift))
        return value >= power

    low, high = 1, 2  # n = 1 has no spread: never enough
    while not enough(high):
        if high >= limit:
            return None
        low, high = high, min(limit, high * 2)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN entries stay NaN and do not count in the family)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(indexed)
    adjusted = [NAN] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
