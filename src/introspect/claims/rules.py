"""The verdict rules, written once: which verdict a claim's direction gives from its Holm-significance, effect,
corrected interval and spreads' ratio.

They are written on arrays so that one function serves both callers: the engine judges the observed results
(one-element arrays, :func:`.engine.decide`, which adds the reason in words) and the repeat probabilities judge
hundreds of seed resamples at once (:mod:`.resampled`). For each direction the first condition that holds
decides; a NaN compares false, so a missing interval or ratio never resolves a claim.
"""
from __future__ import annotations

import numpy as np

REPLICATED, CONTRADICTED, INCONCLUSIVE = "replicated", "contradicted", "inconclusive"
SMALLER = "smaller than reported"
UNDERPOWERED = "inconclusive (underpowered)"
WITHHELD = "withheld (test-set resolution)"
RESOLVED = (REPLICATED, CONTRADICTED, SMALLER)
OPEN = (INCONCLUSIVE, UNDERPOWERED)

# A rule's verdict as a small integer, the index into this tuple (underpowered is not a rule's outcome: the
# engine turns an inconclusive verdict into it from the power plan)
CODES = (REPLICATED, CONTRADICTED, SMALLER, INCONCLUSIVE, WITHHELD)
REP, CON, SMA, INC, WIT = range(len(CODES))


def verdict_rule(direction: str, significant: np.ndarray, effect: np.ndarray, low: np.ndarray, high: np.ndarray,
                 ratio: np.ndarray, *, margin: float, paper_effect: float, compare: bool) -> np.ndarray:
    """The verdict codes (:data:`CODES`) of one claim's direction on arrays of equal shape.

    ``significant``: Holm-adjusted p below alpha; ``effect``: mean of A − B; ``low``/``high``: the corrected
    interval; ``ratio``: sd of A / sd of B (``less_variable`` only); ``compare``: whether the paper's magnitude
    is compared (only in the paper's own setting), which makes "smaller than reported" possible."""
    if direction == "equivalent":  # TOST: significant means within ±margin
        return np.select([significant, (low > margin) | (high < -margin)], [REP, CON], INC)
    if direction == "not_better":  # one-sided: significant means A − B surely below the smallest effect
        return np.select([low > 0, significant], [CON, REP], INC)
    if direction == "less_variable":  # Pitman-Morgan: significant means the spreads differ
        return np.select([significant & (ratio < 1), significant], [REP, CON], INC)
    smaller = (high < paper_effect) if compare and paper_effect > 0 else np.zeros(np.shape(effect), dtype=bool)
    return np.select([significant & (effect < 0), smaller, significant & (effect > 0)], [CON, SMA, REP], INC)
