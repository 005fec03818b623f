"""Significance tests between methods over seeds: paired t (seeds are shared across methods, so
seed-matched differences remove the seed's variance) and Welch's t, Holm-corrected in a family, and the
minimum detectable effect of a paired design.

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


def minimum_detectable_effect(sd_diff: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference (in the data's units) that a two-sided paired t-test of n pairs whose
    differences have standard deviation ``sd_diff`` detects at level ``alpha`` with probability ``power``.
    NaN when it cannot be computed (n < 2, zero or unknown spread)."""
    if n < 2 or not math.isfinite(sd_diff) or sd_diff <= 0:
        return NAN
    from statsmodels.stats.power import TTestPower  # here: tables import this module and need no statsmodels

    d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(np.asarray(d).item()) * sd_diff


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
