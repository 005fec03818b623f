"""Significance tests between methods over seeds: paired t (seeds are shared across methods, so
seed-matched differences remove the seed's variance) and Welch's t, Holm-corrected in a family, and the
minimum detectable effect and the seeds a difference needs, paired or unpaired, at a family's corrected level.

The tests and their intervals are scipy's (``ttest_rel``, ``ttest_ind(equal_var=False)`` and their
``confidence_interval()``). Power is computed here: the t-test's from the noncentral t (upper tails only,
where scipy is stable), the paired TOST's by exact integration over the sample spread, each solved for the MDE
with a bracketing root finder (statsmodels' solver returns NaN power at large noncentrality and stops early:
at n = 5 and alpha = 0.05 / 14 it reported an MDE of 3.08 sd where 80% power needs 3.44).
``tools/verify_claims.py`` checks these by simulation. What this module adds to scipy is the refusal to
test degenerate data: with fewer than two observations, or when every paired difference is the same number
(zero spread, so t is ±inf and scipy reports p = 0), there is no estimate of the noise and every statistic is
NaN, with the reason in ``TestResult.reason``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

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


ALTERNATIVES = ("two-sided", "greater")


def _tail(critical: float, df: float, nc: float) -> float:
    """P(T > critical) for T ~ noncentral t(df, nc). scipy's upper tail is stable where its lower one is not
    (``nct.cdf`` is NaN far in the tail at large nc: why statsmodels' solver stopped early). Should it still
    give no number: for nc <= 0 the tail is below P(T > 0) = Phi(nc) and is returned as that bound; for nc > 0
    the normal limit P(Z > critical − nc) of large df is used."""
    value = float(stats.nct.sf(critical, df, nc))
    if math.isfinite(value):
        return value
    return float(stats.norm.cdf(nc)) if nc <= 0 else float(stats.norm.sf(critical - nc))


@functools.lru_cache(maxsize=1 << 16)  # the MDE solves and seed searches of claims at one level repeat it
def t_power(d: float, n: int, *, alpha: float = 0.05, alternative: str = "two-sided", paired: bool = True,
            n_b: int | None = None) -> float:
    """Power of a t-test at level ``alpha`` when the true difference is ``d`` standard deviations: a one-sample
    (paired) test of ``n`` differences, or Student's two-sample test of ``n`` and ``n_b`` observations (``d`` in
    pooled standard deviations). ``alternative``: "two-sided", or "greater" (one-sided, rejecting for large t).
    Computed from the noncentral t as upper tails only: P(T < −c | nc) = P(T > c | −nc)."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}")
    n_b = n if n_b is None else n_b
    df = n - 1 if paired else n + n_b - 2
    if df < 1:
        return NAN
    nc = d * math.sqrt(n if paired else n * n_b / (n + n_b))
    if alternative == "greater":
        return _tail(stats.t.isf(alpha, df), df, nc)
    critical = stats.t.isf(alpha / 2, df)
    return _tail(critical, df, nc) + _tail(critical, df, -nc)


@functools.lru_cache(maxsize=1 << 16)  # claims with equal n and corrected level ask for the same integrals
def tost_power(difference: float, margin: float, n: int, *, alpha: float = 0.05) -> float:
    """Power of the paired TOST (two one-sided t-tests, each at level ``alpha``) to establish
    |mean difference| < ``margin`` from ``n`` differences whose true mean is ``difference``; both in standard
    deviations of the differences. Exact: given the sample sd s, the test passes when the sample mean lies in
    (−margin + c·s/√n, margin − c·s/√n), a normal probability; that is integrated over the chi-square law of
    (n − 1)s²/σ². (The two noncentral t tails are dependent through s; their product is not the power.)"""
    df = n - 1
    if df < 1 or margin <= 0:
        return NAN if df < 1 else 0.0
    critical, root_n = stats.t.isf(alpha, df), math.sqrt(n)
    top = df * (margin * root_n / critical) ** 2  # chi-square value beyond which the interval is empty
    low, high = stats.chi2.ppf(1e-15, df), min(top, stats.chi2.isf(1e-15, df))
    if high <= low:
        return 0.0
    density = chi2_density(df)

    def passes(v: float) -> float:
        half = margin - critical * math.sqrt(v / df) / root_n  # half-width of the passing range, in sd
        return float(special.ndtr((half - difference) * root_n) - special.ndtr((-half - difference) * root_n))

    from scipy.integrate import quad  # here: the tables never integrate

    value, _ = quad(lambda v: passes(v) * density(v), low, high, limit=200, epsabs=1e-10)
    return min(1.0, max(0.0, value))


def chi2_density(df: int):
    """``stats.chi2.pdf(·, df)`` as a function of one point, without the distribution's per-call argument
    handling (most of the TOST integral's time): the same operations on the same one-element array, so the
    same float (``stats.norm.cdf`` likewise is ``special.ndtr``)."""
    shape, log_gamma, log_scale = df / 2. - 1, special.gammaln(df / 2.), (np.log(2) * df) / 2.

    def density(v: float) -> float:
        x = np.array([v], dtype=float)
        return np.exp(special.xlogy(shape, x) - x / 2. - log_gamma - log_scale)[0]

    return density


def _solve_increasing(f, target: float, low: float) -> float:
    """x > ``low`` where the increasing function ``f`` reaches ``target`` (brentq on a doubled bracket)."""
    high = max(2 * low, 1.0)
    while f(high) < target:
        low, high = high, 2 * high
        if high > 1e9:
            return NAN
    return float(optimize.brentq(lambda x: f(x) - target, low, high, xtol=1e-12, rtol=1e-10))


def minimum_detectable_effect(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8,
                              paired: bool = True, n_b: int | None = None, alternative: str = "two-sided"
                              ) -> float:
    """Smallest true mean difference (in the data's units) that a t-test at level ``alpha`` detects with
    probability ``power``: paired (``n`` pairs whose differences have standard deviation ``sd``) or unpaired
    (``n`` and ``n_b`` observations, ``sd`` the pooled standard deviation); two-sided or one-sided ("greater").
    The root of the noncentral-t power (:func:`t_power`) by a bracketing solver. NaN when it cannot be
    computed (fewer than two observations, zero or unknown spread)."""
    n_b = n if n_b is None else n_b
    if n < 2 or (not paired and n_b < 2) or not math.isfinite(sd) or sd <= 0:
        return NAN
    return detectable_in_sd(n, alpha, power, paired, n_b, alternative) * sd


@functools.lru_cache(maxsize=1 << 12)
def detectable_in_sd(n: int, alpha: float, power: float, paired: bool, n_b: int, alternative: str) -> float:
    """:func:`minimum_detectable_effect` in standard deviations: the same for every claim of a level and n."""
    return _solve_increasing(lambda x: t_power(x, n, alpha=alpha, alternative=alternative, paired=paired, n_b=n_b),
                             power, 0.0)


def minimum_equivalence_margin(sd: float, n: int, *, difference: float = 0.0, alpha: float = 0.05,
                               power: float = 0.8) -> float:
    """The equivalence claim's MDE: the narrowest margin (data units) that a paired TOST at level ``alpha``
    of ``n`` differences (spread ``sd``) establishes with probability ``power`` when the true difference is
    ``difference``. NaN when it cannot be computed."""
    if n < 2 or not (math.isfinite(sd) and math.isfinite(difference)) or sd <= 0:
        return NAN
    return equivalence_margin_in_sd(abs(difference) / sd, n, alpha, power) * sd


@functools.lru_cache(maxsize=1 << 12)
def equivalence_margin_in_sd(shift: float, n: int, alpha: float, power: float) -> float:
    """:func:`minimum_equivalence_margin` in standard deviations, the true difference ``shift`` in them too."""
    return _solve_increasing(lambda m: tost_power(shift, m, n, alpha=alpha), power, shift)


def _fewest(enough, limit: int) -> int | None:
    """The fewest n >= 2 with ``enough(n)`` (an increasing condition): doubling, then bisection."""
    low, high = 1, 2  # n = 1 has no spread: never enough
    while not enough(high):
        if high >= limit:
            return None
        low, high = high, min(limit, high * 2)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def seeds_needed(effect: float, sd: float, *, alpha: float = 0.05, power: float = 0.8, paired: bool = True,
                 alternative: str = "two-sided", limit: int = 10_000_000) -> int | None:
    """The fewest seeds (pairs, or seeds per method when unpaired) at which a t-test at level ``alpha`` detects
    a true difference ``effect`` with probability ``power``, given the spread ``sd`` (of the paired
    differences, or the pooled one). None when it cannot be said (no spread estimate, no effect) or would
    exceed ``limit``."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or effect == 0 or sd <= 0:
        return None
    d = abs(effect) / sd
    return _fewest(lambda n: t_power(d, n, alpha=alpha, alternative=alternative, paired=paired) >= power, limit)


def tost_seeds_needed(difference: float, margin: float, sd: float, *, alpha: float = 0.05, power: float = 0.8,
                      limit: int = 10_000_000) -> int | None:
    """The fewest paired seeds at which a TOST at level ``alpha`` establishes equivalence within ``margin``
    with probability ``power`` when the true difference is ``difference`` (spread ``sd``). None when it cannot
    be said (no spread, or |difference| >= margin: no n establishes it)."""
    if not all(map(math.isfinite, (difference, margin, sd))) or sd <= 0 or abs(difference) >= margin:
        return None
    shift, width = abs(difference) / sd, margin / sd
    return _fewest(lambda n: tost_power(shift, width, n, alpha=alpha) >= power, limit)


def tost_p(diff: np.ndarray, margin: float) -> float:
    """p-value of the paired TOST of |mean| < ``margin``: the larger of the two one-sided p-values. NaN for
    degenerate differences (:func:`degenerate_reason`)."""
    if degenerate_reason(diff):
        return NAN
    n = len(diff)
    se = float(diff.std(ddof=1)) / math.sqrt(n)
    mean = float(diff.mean())
    # scipy.special's t CDF is what stats.t calls, without its per-call overhead (the resampling calls it often)
    lower = special.stdtr(n - 1, -(mean + margin) / se)  # H0: mean <= -margin
    upper = special.stdtr(n - 1, (mean - margin) / se)  # H0: mean >= +margin
    return float(max(lower, upper))


def one_sided_p(diff: np.ndarray, bound: float) -> float:
    """p-value of the one-sided paired t-test of H0: mean >= ``bound`` (small when the mean is surely below
    it): a non-superiority test ("A is not better than B by ``bound`` or more"). NaN for degenerate data."""
    if degenerate_reason(diff):
        return NAN
    n = len(diff)
    se = float(diff.std(ddof=1)) / math.sqrt(n)
    return float(special.stdtr(n - 1, (float(diff.mean()) - bound) / se))


def pitman_morgan(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[float, float, str]:
    """Pitman-Morgan test of equal variances of two paired samples (the seeds both have): var(a) = var(b)
    exactly when a + b and a − b are uncorrelated, so the test is that of their correlation r, t = r·sqrt(n − 2)
    / sqrt(1 − r²) on n − 2 degrees of freedom. Returns (sd(a) / sd(b), two-sided p, reason); NaN with the
    reason when it cannot be computed (fewer than three pairs, or a constant sum or difference)."""
    seeds = sorted(set(a) & set(b))
    return pitman_morgan_arrays(np.array([a[s] for s in seeds], dtype=float),
                                np.array([b[s] for s in seeds], dtype=float))


def pitman_morgan_arrays(x: np.ndarray, y: np.ndarray) -> tuple[float, float, str]:
    """:func:`pitman_morgan` of two aligned arrays (a resample may repeat a seed)."""
    if len(x) < 3:
        return NAN, NAN, f"n < 3 (n = {len(x)} paired seeds): no variance test"
    total, diff = x + y, x - y
    if np.ptp(total) <= IDENTICAL_TOLERANCE or np.ptp(diff) <= IDENTICAL_TOLERANCE or np.ptp(y) <= 0:
        return NAN, NAN, "a constant sum or difference of the paired values: no variance test"
    ratio = float(x.std(ddof=1) / y.std(ddof=1))
    r = float(np.corrcoef(total, diff)[0, 1])
    if abs(r) >= 1:
        return ratio, 0.0, ""
    t = r * math.sqrt(len(x) - 2) / math.sqrt(1 - r * r)
    return ratio, float(2 * stats.t.sf(abs(t), len(x) - 2)), ""


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
