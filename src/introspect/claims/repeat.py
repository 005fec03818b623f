"""How likely is each verdict to repeat? The chance that an independent rerun with new seeds reaches the same
verdict, estimated by resampling seeds (the bootstrap).

Method: the result set's seeds are drawn with replacement, as many as it has, jointly for every claim (a seed
is one training of every cell, so the pairing of A with B and the correlation between claims that share a cell
are kept). Each resample is judged by the engine's own rules (Holm over each family, the corrected interval,
TOST, the magnitude and resolution rules: :func:`.engine.judge_family` and :func:`.engine.decide`), without
power planning: "inconclusive" and "inconclusive (underpowered)" count as one outcome, open. A claim's repeat
probability is the share of resamples whose outcome is its observed one; summed over claims, the shares of each
outcome are the expected counts a rerun would give. ``DRAWS`` resamples from a fixed seed (``SEED``), so the
numbers are the same on every run of the same data.

What it does not cover: the bootstrap treats the observed seeds as the population, so with five seeds it
understates the spread a little (by about sqrt(4/5)) and it cannot see variation between machines (floating
point differs between CPUs; no such measurement is part of a result set). A withheld verdict rests on a flag of
the observed data and repeats whenever the resample keeps it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from scipy import special

from ..analysis.stats import NAN, degenerate_reason, paired_differences, pitman_morgan_arrays
from ..config.claim import Claim
from .engine import (
    ALPHA,
    CONTRADICTED,
    INCONCLUSIVE,
    REPLICATED,
    SMALLER,
    SMALLEST_EFFECT_PP,
    UNDERPOWERED,
    WITHHELD,
    ClaimResult,
    decide,
    judge_family,
    own_test_p,
)
from .majority import MAJORITY, counted, majority_verdict

DRAWS = 400
SEED = 20201  # the paper's year and its five seeds' first: any fixed number; fixed so the output is reproducible
OPEN_OUTCOME = "open"


def outcome(verdict: str) -> str:
    """A verdict as a rerun's outcome: the two open verdicts are one (power is not re-planned per resample)."""
    return OPEN_OUTCOME if verdict in (INCONCLUSIVE, UNDERPOWERED) else verdict


def _resampled(template: ClaimResult, pairs: np.ndarray, smallest_effect: float) -> ClaimResult:
    """The template's statistics on resampled (A, B) pairs (rows); no family level or verdict yet."""
    diff = pairs[:, 0] - pairs[:, 1]
    n = len(diff)
    if template.direction == "less_variable":  # its test reads both samples
        ratio, p_test, reason = pitman_morgan_arrays(pairs[:, 0], pairs[:, 1])
        return replace(template, n_pairs=n, sd_ratio=ratio, p_test=p_test, reason=reason, verdict="")
    reason = degenerate_reason(diff)
    mean = float(diff.mean()) if n else NAN
    if reason:
        return replace(template, n_pairs=n, effect=mean, p=NAN, p_test=NAN, reason=reason, verdict="")
    sd = float(diff.std(ddof=1))
    t = mean / (sd / math.sqrt(n))
    p = float(2 * special.stdtr(n - 1, -abs(t)))  # stats.t.sf without its per-call overhead
    margin = None if math.isnan(template.margin) else template.margin
    return replace(template, n_pairs=n, effect=mean, sd_diff=sd, t=t, p=p, reason="", verdict="",
                   p_test=own_test_p(template.direction, diff, margin, smallest_effect, p))


def verdict_distributions(claims: Sequence[Claim], values: Mapping[tuple[str, str], Mapping[int, float]],
                          results: Sequence[ClaimResult], *, alpha: float = ALPHA,
                          smallest_effect: float = SMALLEST_EFFECT_PP, check_paper_magnitude: bool = True,
                          draws: int = DRAWS, seed: int = SEED) -> dict[str, dict[str, float]]:
    """Claim name -> the share of ``draws`` seed resamples giving each outcome (see the module's docstring).
    ``results`` are the engine's results of the same claims and values (their flags and settings are kept),
    and may hold majority rows (:mod:`.majority`), whose outcome each resample takes from its members'."""
    results = [r for r in results if r.direction != MAJORITY]
    sides = [(values.get((c.values_key, c.method_a), {}), values.get((c.values_key, c.method_b), {}))
             for c in claims]
    pairs = [paired_differences(a, b) for a, b in sides]
    by_seed = [{s: (a[s], b[s]) for s in seeds} for (seeds, _), (a, b) in zip(pairs, sides)]
    pool = sorted({s for seeds, _ in pairs for s in seeds})
    groups = {name: [i for i, r in enumerate(results) if r.part_of == name]
              for name in dict.fromkeys(r.part_of for r in results if r.part_of)}
    shares: dict[str, dict[str, float]] = {name: {} for name in [*(r.name for r in results), *groups]}
    if not pool:
        return {}
    rng = np.random.default_rng(seed)
    notes = {c.name: c.setting_note for c in claims}
    for _ in range(draws):
        sample = rng.choice(pool, size=len(pool), replace=True)
        drawn_pairs = [np.array([d[s] for s in sample if s in d], dtype=float).reshape(-1, 2) for d in by_seed]
        diffs = [p[:, 0] - p[:, 1] for p in drawn_pairs]
        drawn = [_resampled(r, p, smallest_effect) for r, p in zip(results, drawn_pairs)]
        judged = judge_family(drawn, diffs, alpha=alpha, smallest_effect=smallest_effect, plan=False)
        verdicts = [decide(replace(r, underpowered=None), alpha=alpha, check_paper_magnitude=check_paper_magnitude,
                           setting_note=notes[r.name]).verdict for r in judged]
        outcomes = {r.name: outcome(v) for r, v in zip(judged, verdicts)}
        outcomes.update({name: outcome(majority_verdict([verdicts[i] for i in members])[0])
                         for name, members in groups.items()})
        for name, key in outcomes.items():
            shares[name][key] = shares[name].get(key, 0.0) + 1.0 / draws
    return shares


RERUN_FIELDS = {REPLICATED: "rerun_replicated", CONTRADICTED: "rerun_contradicted", SMALLER: "rerun_smaller",
                WITHHELD: "rerun_withheld", OPEN_OUTCOME: "rerun_open"}


def with_repeat_probabilities(claims: Sequence[Claim], values: Mapping[tuple[str, str], Mapping[int, float]],
                              results: Sequence[ClaimResult], **options) -> list[ClaimResult]:
    """The results with ``repeat_probability`` and the share of each rerun outcome (``rerun_*``) set."""
    shares = verdict_distributions(claims, values, results, **options)
    return [replace(r, repeat_probability=share.get(outcome(r.verdict), 0.0),
                    **{name: share.get(key, 0.0) for key, name in RERUN_FIELDS.items()})
            if (share := shares.get(r.name)) else r for r in results]


def expected_counts(results: Sequence[ClaimResult]) -> dict[str, float]:
    """Outcome -> the number of claims a rerun is expected to give it (the sum of the claims' shares)."""
    return {key: math.fsum(getattr(r, name) for r in counted(results) if math.isfinite(getattr(r, name)))
            for key, name in RERUN_FIELDS.items()}
