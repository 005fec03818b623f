"""Claims engine: does our result set replicate what the paper says about method A against method B?

A claim names two methods on one model, the paper's direction, and (when its tables give it) the paper's
effect A − B in accuracy points (pp). Accuracies are paired by seed (seeds present for only one method are
dropped and counted). For each claim we report our effect (mean paired difference), its 95% CI, the two-sided
paired t p-value and the Holm-adjusted p over the claim's family.

**The corrected level.** A claim in a Holm family of m testable claims is called significant for sure only at
p ≤ alpha / m (Holm's first step; its threshold at later ranks depends on the other claims' p-values, so it
cannot be planned for). Every quantity that plans or bounds a claim uses that level, ``alpha_family``:

- the corrected interval: the paired t interval at confidence 1 − alpha / m;
- the MDE: the smallest true difference a two-sided paired t-test of our n pairs, with the observed spread of
  the differences, detects with 80% power at alpha / m;
- ``seeds_needed``: the fewest paired seeds for 80% power at alpha / m against the claim's target at the
  observed spread; the target is the paper's effect (greater), the margin (equivalent), or, when the paper
  gives no positive effect (Figure 3's ordering), the config's smallest effect of interest.

Verdict rules (``check_paper_magnitude`` off: magnitudes are not compared, for result sets that deliberately
differ from the paper's dataset and budget):

direction "greater" (the paper says A > B):
  1. contradicted           Holm p < alpha and effect < 0: B is significantly better.
  2. smaller than reported  the paper's effect is positive and the corrected interval lies entirely below it,
                            significant against zero or not: an advantage of the size the paper reports is
                            excluded even after the family's correction.
  3. replicated             Holm p < alpha and effect > 0.
  4. inconclusive           otherwise; "inconclusive (underpowered)" when MDE > target.

direction "equivalent" (the paper says A ≈ B within ± margin pp):
  1. replicated             the corrected interval lies inside (−margin, +margin) (TOST at the corrected level).
  2. smaller than reported  the corrected interval lies entirely outside ±margin: the paper's "comparable"
                            is excluded even after correction.
  3. contradicted           Holm p < alpha and |effect| > margin.
  4. inconclusive           otherwise; "inconclusive (underpowered)" when MDE > margin.

Where the paper's text (the claim's direction) and its own table disagree (a "greater" claim whose table
effect is ≤ 0), the claim says so and the reason reports which of the two our result agrees with.

Degenerate data (fewer than two paired seeds, or the same difference on every seed) give NaN statistics and
"inconclusive" with the reason.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..analysis.numbers import format_number
from ..analysis.sanity import Flag
from ..analysis.stats import (
    NAN,
    family_level,
    holm,
    minimum_detectable_effect,
    paired_differences,
    paired_t,
    seeds_needed,
)

ALPHA = 0.05
POWER = 0.8
SMALLEST_EFFECT_PP = 0.5  # default target of claims with no positive paper effect (config: smallest_effect_pp)
DIRECTIONS = ("greater", "equivalent")
REPLICATED, CONTRADICTED, INCONCLUSIVE = "replicated", "contradicted", "inconclusive"
SMALLER = "smaller than reported"
UNDERPOWERED = "inconclusive (underpowered)"
RESOLVED = (REPLICATED, CONTRADICTED, SMALLER)
VERDICTS = (REPLICATED, CONTRADICTED, SMALLER, INCONCLUSIVE, UNDERPOWERED)


@dataclass(frozen=True)
class Claim:
    name: str  # unique id, e.g. "le_gradcam_beats_dropout_resnet14"
    method_a: str
    method_b: str
    model: str
    dataset: str  # the paper's dataset, for the reader
    direction: str  # "greater" (A > B) | "equivalent" (|A − B| <= margin)
    paper_effect: float | None = None  # A − B in pp from the paper's tables
    margin: float | None = None  # pp; required for "equivalent"
    family: str = "all"  # Holm family
    text: str = ""  # the paper's wording or where it says so
    seed_gpu_hours: float | None = None  # estimated GPU-hours of one seed of both cells (paper config)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")
        if self.direction == "equivalent" and not (self.margin is not None and self.margin > 0):
            raise ValueError(f"claim {self.name}: an 'equivalent' claim needs a positive margin (pp)")

    @property
    def table_disagrees(self) -> bool:
        """The paper's own table has the opposite of what its text (this claim's direction) says."""
        if self.paper_effect is None:
            return False
        if self.direction == "greater":
            return self.paper_effect <= 0
        return abs(self.paper_effect) > self.margin


@dataclass
class ClaimResult:
    name: str
    family: str
    model: str
    dataset: str
    method_a: str
    method_b: str
    direction: str
    paper_effect: float  # NaN when the paper gives none
    margin: float
    n_pairs: int
    n_unpaired: int  # seeds with a result for only one of the two methods (dropped)
    unpaired_seeds: str
    effect: float  # mean over paired seeds of A − B, pp
    ci_low: float
    ci_high: float
    sd_diff: float
    t: float
    df: float
    p: float
    family_size: int = 0  # testable claims in the family (m)
    alpha_family: float = NAN  # alpha / m: the corrected level
    corrected_ci_low: float = NAN  # the paired t interval at confidence 1 − alpha / m
    corrected_ci_high: float = NAN
    p_holm: float = NAN
    target: float = NAN  # what the MDE and seeds_needed are planned against, pp
    target_source: str = ""  # "paper effect" | "margin" | "smallest effect of interest"
    mde: float = NAN  # at alpha_family, 80% power
    underpowered: bool | None = None
    seeds_needed: int | None = None  # unresolved claims: paired seeds for 80% power at alpha_family
    gpu_hours_needed: float = NAN  # seeds_needed seeds of both cells, in the paper config's estimate
    verdict: str = ""
    reason: str = ""
    table_disagrees: bool = False
    flags: list[Flag] = field(default_factory=list)
    text: str = ""
    # the same comparison on the best *test* epoch of each run (the paper's likely statistic): optimistic
    optimistic_effect: float = NAN
    optimistic_ci_low: float = NAN
    optimistic_ci_high: float = NAN
    optimistic_verdict: str = ""


def measure(claim: Claim, a: Mapping[int, float], b: Mapping[int, float]) -> ClaimResult:
    """Statistics of one claim from per-seed accuracies of A and B; no family, power or verdict yet."""
    seeds, diff = paired_differences(a, b)
    unpaired = sorted(set(a) ^ set(b))
    test = paired_t(a, b)
    return ClaimResult(
        name=claim.name, family=claim.family, model=claim.model, dataset=claim.dataset,
        method_a=claim.method_a, method_b=claim.method_b, direction=claim.direction,
        paper_effect=NAN if claim.paper_effect is None else float(claim.paper_effect),
        margin=NAN if claim.margin is None else float(claim.margin),
        n_pairs=len(seeds), n_unpaired=len(unpaired), unpaired_seeds=" ".join(map(str, unpaired)),
        effect=test.mean_diff, ci_low=test.ci_low, ci_high=test.ci_high,
        sd_diff=float(diff.std(ddof=1)) if len(diff) > 1 else NAN, t=test.statistic, df=test.df, p=test.p,
        reason=test.reason, text=claim.text, table_disagrees=claim.table_disagrees,
    )


def at_family_level(result: ClaimResult, a: Mapping[int, float], b: Mapping[int, float], m: int, *,
                    alpha: float = ALPHA, power: float = POWER, smallest_effect: float = SMALLEST_EFFECT_PP
                    ) -> ClaimResult:
    """The result with its family's corrected level, corrected interval, target and MDE."""
    level = family_level(alpha, m)
    if result.direction == "equivalent":
        target, source = result.margin, "margin"
    elif result.paper_effect > 0:  # False when NaN
        target, source = result.paper_effect, "paper effect"
    else:
        target, source = smallest_effect, "smallest effect of interest"
    corrected = paired_t(a, b, confidence=1 - level)
    mde = NAN if result.reason else minimum_detectable_effect(result.sd_diff, result.n_pairs, alpha=level,
                                                              power=power)
    return replace(result, family_size=m, alpha_family=level, corrected_ci_low=corrected.ci_low,
                   corrected_ci_high=corrected.ci_high, target=target, target_source=source, mde=mde,
                   underpowered=None if math.isnan(mde) else bool(mde > target))


def decide(result: ClaimResult, *, alpha: float = ALPHA, check_paper_magnitude: bool = True) -> ClaimResult:
    """The result with ``verdict`` and ``reason`` filled in by the module's rules; ``p_holm`` and the
    family level must already be set (NaN p-values mean the test was degenerate)."""
    if math.isnan(result.p):
        verdict, reason = INCONCLUSIVE, result.reason or "no test"
    else:
        rule = _equivalent if result.direction == "equivalent" else _greater
        verdict, reason = rule(result, alpha, check_paper_magnitude)
    if verdict == INCONCLUSIVE and result.underpowered:
        verdict = UNDERPOWERED
        reason += f"; MDE {result.mde:.2f} pp > {result.target_source} {result.target:.2f} pp"
    if result.table_disagrees:
        reason += "; " + _which_agrees(result, verdict, alpha)
    return replace(result, verdict=verdict, reason=reason)


def _interval(r: ClaimResult) -> str:
    return f"[{format_number(r.corrected_ci_low, '+.2f')}, {format_number(r.corrected_ci_high, '+.2f')}] pp"


def _greater(r: ClaimResult, alpha: float, check_paper_magnitude: bool) -> tuple[str, str]:
    significant = r.p_holm < alpha
    if significant and r.effect < 0:
        return CONTRADICTED, f"{r.method_b} significantly better (Holm p = {r.p_holm:.3g})"
    if check_paper_magnitude and r.paper_effect > 0 and r.corrected_ci_high < r.paper_effect:
        ahead = (f"{r.method_a} significantly ahead (Holm p = {r.p_holm:.3g}), but" if significant and r.effect > 0
                 else f"not significant against zero (Holm p = {r.p_holm:.3g});")
        return SMALLER, (f"{ahead} the corrected interval {_interval(r)} excludes the paper's "
                         f"{r.paper_effect:+.2f} pp")
    if significant and r.effect > 0:
        return REPLICATED, f"{r.method_a} significantly better (Holm p = {r.p_holm:.3g})"
    return INCONCLUSIVE, f"not significant (Holm p = {r.p_holm:.3g})"


def _equivalent(r: ClaimResult, alpha: float, check_paper_magnitude: bool) -> tuple[str, str]:
    m = r.margin
    if -m < r.corrected_ci_low and r.corrected_ci_high < m:
        return REPLICATED, f"corrected interval {_interval(r)} within ±{m:g} pp"
    if r.corrected_ci_low > m or r.corrected_ci_high < -m:
        return SMALLER, f"corrected interval {_interval(r)} entirely outside ±{m:g} pp"
    if r.p_holm < alpha and abs(r.effect) > m:
        return CONTRADICTED, f"significant difference (Holm p = {r.p_holm:.3g}) larger than ±{m:g} pp"
    return INCONCLUSIVE, f"corrected interval {_interval(r)} overlaps the ±{m:g} pp boundary"


def _which_agrees(r: ClaimResult, verdict: str, alpha: float) -> str:
    table = f"the paper's own table has A − B = {r.paper_effect:+.2f} pp against its text"
    if verdict == REPLICATED:
        return f"{table}; ours agrees with the text"
    if (r.p_holm < alpha and r.effect < 0) or verdict == SMALLER:
        return f"{table}; ours agrees with the table"
    if r.corrected_ci_low <= r.paper_effect <= r.corrected_ci_high:
        return f"{table}; ours is consistent with the table and cannot exclude the text"
    return f"{table}; ours agrees with neither"


def plan_seeds(result: ClaimResult, *, power: float = POWER, seed_gpu_hours: float | None = None) -> ClaimResult:
    """``seeds_needed`` (and its GPU-hours) for a claim the result set does not resolve."""
    if result.verdict in RESOLVED:
        return result
    needed = seeds_needed(result.target, result.sd_diff, alpha=result.alpha_family, power=power)
    hours = needed * seed_gpu_hours if needed is not None and seed_gpu_hours is not None else NAN
    return replace(result, seeds_needed=needed, gpu_hours_needed=hours)


def evaluate_claims(claims: Sequence[Claim], values: Mapping[tuple[str, str], Mapping[int, float]], *,
                    alpha: float = ALPHA, power: float = POWER, smallest_effect: float = SMALLEST_EFFECT_PP,
                    check_paper_magnitude: bool = True,
                    flags: Mapping[str, Sequence[Flag]] | None = None) -> list[ClaimResult]:
    """Every claim against one result set. ``values[(model, method)]`` is {seed: accuracy %}; a missing entry
    counts as no seeds. Holm runs over the claims of each ``Claim.family``; ``flags[claim.name]`` are the
    sanity flags its cells carry."""
    names = [c.name for c in claims]
    if len(set(names)) != len(names):
        raise ValueError(f"claim names must be unique: {sorted({n for n in names if names.count(n) > 1})}")
    sides = [(values.get((c.model, c.method_a), {}), values.get((c.model, c.method_b), {})) for c in claims]
    results = [measure(c, a, b) for c, (a, b) in zip(claims, sides)]
    for family in dict.fromkeys(r.family for r in results):
        members = [i for i, r in enumerate(results) if r.family == family]
        m = sum(not math.isnan(results[i].p) for i in members)
        for i, p in zip(members, holm([results[i].p for i in members])):
            results[i] = at_family_level(replace(results[i], p_holm=p), *sides[i], m, alpha=alpha, power=power,
                                         smallest_effect=smallest_effect)
    flags = flags or {}
    return [replace(plan_seeds(decide(r, alpha=alpha, check_paper_magnitude=check_paper_magnitude), power=power,
                               seed_gpu_hours=c.seed_gpu_hours), flags=list(flags.get(r.name, ())))
            for c, r in zip(claims, results)]
