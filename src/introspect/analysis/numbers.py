"""The one way numbers are shown and summarised over seeds in tables, claims, figures and analyses.

A missing or undefined number (None, NaN) is shown as an en dash, never as "nan", so a reader sees
that a value is absent rather than a value.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

MISSING = "–"


def is_missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: float | None, spec: str = ".2f") -> str:
    """``value`` formatted with ``spec`` (e.g. ``".2f"``, ``"+.2f"``, ``".3g"``), or :data:`MISSING`."""
    return MISSING if is_missing(value) else format(value, spec)


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample standard deviation and the t-based confidence interval of the mean over seeds.
    With fewer than two values the spread and the interval are NaN: one seed says nothing of them."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def summarise(values: Iterable[float], confidence: float = 0.95) -> SeedSummary:
    """:class:`SeedSummary` of ``values`` (an empty input gives NaN everywhere)."""
    data = [float(v) for v in values]
    n = len(data)
    if n == 0:
        return SeedSummary(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(data)
    if n < 2:
        return SeedSummary(n, mean, math.nan, math.nan, math.nan)
    from scipy import stats

    std = statistics.stdev(data)
    half = float(stats.t.ppf((1 + confidence) / 2, df=n - 1)) * std / math.sqrt(n)
    return SeedSummary(n, mean, std, mean - half, mean + half)
