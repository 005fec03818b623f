"""Significance tests between methods over seeds: paired t (seeds are shared across methods, so
seed-matched differences remove the seed's variance) and Welch's t, Holm-corrected in a family."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class TestResult:
    test: str  # "paired_t" | "welch_t"
    n_a: int
    n_b: int
    mean_diff: float  # mean(a) - mean(b)
    statistic: float
    df: float
    p: float
    effect_size: float  # paired: Cohen's d_z; Welch: Cohen's d with pooled SD
    ci_low: float  # 95% CI of the difference
    ci_high: float


def paired_t(a: dict[int, float], b: dict[int, float]) -> TestResult:
    """Paired t-test of a - b over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    diff = np.array([a[s] - b[s] for s in seeds], dtype=float)
    n = len(diff)
    nan = float("nan")
    if n < 2:
        return TestResult("paired_t", n, n, float(diff.mean()) if n else nan, nan, nan, nan, nan, nan, nan)
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    df = n - 1
    if sd == 0.0:
        # Identical differences on every seed: t is infinite unless the difference is zero.
        p = 1.0 if mean == 0.0 else 0.0
        t = nan if mean == 0.0 else math.copysign(math.inf, mean)
        return TestResult("paired_t", n, n, mean, t, df, p, nan if mean == 0 else math.copysign(math.inf, mean),
                          mean, mean)
    se = sd / math.sqrt(n)
    t = mean / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.975, df)) * se
    return TestResult("paired_t", n, n, mean, t, df, p, mean / sd, mean - half, mean + half)


def welch_t(a: list[float], b: list[float]) -> TestResult:
    """Welch's unequal-variance t-test of mean(a) - mean(b)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    nan = float("nan")
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else nan
    if len(x) < 2 or len(y) < 2:
        return TestResult("welch_t", len(x), len(y), diff, nan, nan, nan, nan, nan, nan)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
    effect = diff / pooled if pooled > 0 else (nan if diff == 0 else math.copysign(math.inf, diff))
    if se == 0.0:
        p = 1.0 if diff == 0 else 0.0
        return TestResult("welch_t", len(x), len(y), diff, nan, nan, p, effect, diff, diff)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.975, df)) * se
    return TestResult("welch_t", len(x), len(y), diff, t, df, p, effect, diff - half, diff + half)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN entries stay NaN and do not count in the family)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(indexed)
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
