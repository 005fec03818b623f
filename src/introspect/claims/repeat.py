"""How likely is each verdict to repeat? The chance that an independent rerun with new seeds reaches the same
verdict, estimated by resampling seeds (the bootstrap).

Method: the result set's seeds are drawn with replacement, as many as it has, jointly for every claim (a seed is one
training of every cell, so the pairing of A with B and the correlation between claims that share a cell are kept).
Each resample is judged by the engine's own rules (Holm over each family, the corrected interval, TOST, the
magnitude and resolution rules: :func:`.engine.judge_family` and :func:`.engine.decide`, computed for all resamples
at once in :mod:`.resampled`), without power planning: "inconclusive" and "inconclusive (underpowered)" count as one
outcome, open. A claim's repeat probability is the share of resamples whose outcome is its observed one; summed over
claims, the shares of each outcome are the expected counts a rerun would give. ``DRAWS`` resamples from a fixed seed
(``SEED``), so the numbers are the same on every run of the same data.

What it does not cover: the bootstrap treats the observed seeds as the population, so with five seeds it
understates the spread a little (by about sqrt(4/5)) and it cannot see variation between machines (floating
point differs between CPUs; no such measurement is part of a result set). A withheld verdict rests on a flag of
the observed data and repeats whenever the resample keeps it.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

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
)
from .majority import MAJORITY, counted, majority_verdict
from .resampled import CODES, resample_statistics, seed_draws, verdict_codes

DRAWS = 400
SEED = 20201  # the paper's year and its five seeds' first: any fixed number; fixed so the output is reproducible
OPEN_OUTCOME = "open"


def outcome(verdict: str) -> str:
    """A verdict as a rerun's outcome: the two open verdicts are one (power is not re-planned per resample)."""
    return OPEN_OUTCOME if verdict in (INCONCLUSIVE, UNDERPOWERED) else verdict


def verdict_distributions(claims: Sequence[Claim], values: Mapping[tuple[str, str], Mapping[int, float]],
                          results: Sequence[ClaimResult], *, alpha: float = ALPHA,
                          smallest_effect: float = SMALLEST_EFFECT_PP, check_paper_magnitude: bool = True,
                          draws: int = DRAWS, seed: int = SEED) -> dict[str, dict[str, float]]:
    """Claim name -> the share of ``draws`` seed resamples giving each outcome (see the module's docstring).
    ``results`` are the engine's results of the same claims and values (their flags and settings are kept),
    and may hold majority rows (:mod:`.majority`), whose outcome each resample takes from its members'.
    All resamples are judged at once, as arrays (:mod:`.resampled`)."""
    results = [r for r in results if r.direction != MAJORITY]
    sides = [(values.get((c.values_key, c.method_a), {}), values.get((c.values_key, c.method_b), {}))
             for c in claims]
    pool = sorted({s for a, b in sides for s in set(a) & set(b)})
    if not pool:
        return {}
    picks = seed_draws(pool, draws, seed)
    codes = verdict_codes(results, resample_statistics(results, sides, pool, picks, smallest_effect),
                          alpha=alpha, check_paper_magnitude=check_paper_magnitude)
    verdicts = np.array(CODES, dtype=object)[codes]
    outcomes = {r.name: [outcome(v) for v in verdicts[:, i]] for i, r in enumerate(results)}
    for name in dict.fromkeys(r.part_of for r in results if r.part_of):
        members = [i for i, r in enumerate(results) if r.part_of == name]
        outcomes[name] = [outcome(majority_verdict(list(row))[0]) for row in verdicts[:, members]]
    return {name: shares_of(drawn) for name, drawn in outcomes.items()}


def shares_of(drawn: Sequence[str]) -> dict[str, float]:
    """Outcome -> its share of the draws, in order of first appearance; each share is 1 / draws added once per
    draw, so it is the same float a running tally gives."""
    if not drawn:
        return {}
    tally = list(itertools.accumulate(itertools.repeat(1.0 / len(drawn), len(drawn))))
    return {key: tally[count - 1] for key, count in Counter(drawn).items()}


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
