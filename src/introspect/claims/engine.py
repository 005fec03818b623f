"""Claims engine: does our result set replicate what the paper says about method A against method B?

A claim (:class:`~introspect.config.claim.Claim`, the config's own type) names two methods on one model, the
paper's direction, and (when its tables give it) the paper's effect A − B in accuracy points (pp). Accuracies are
paired by seed (seeds present for only one method are dropped and counted). For each claim we report our effect
(mean paired difference), its 95% CI, the two-sided paired t p-value against zero (``p``), the p-value of the
claim's own test (``p_test``: the two-sided t for A > B, the TOST for A ≈ B, the one-sided non-superiority test
for "A is not better than B") and that p Holm-adjusted over the claim's family (``p_holm``).

**The corrected level.** A claim in a Holm family of m testable claims is called significant for sure only at
p ≤ alpha / m (Holm's first step; its threshold at later ranks depends on the other claims' p-values, so it
cannot be planned for). Every quantity that plans or bounds a claim uses that level, ``alpha_family``: the
corrected interval (confidence 1 − alpha / m); the MDE, at 80% power, of the claim's own test (for A ≈ B the
narrowest margin a TOST establishes, at the paper's gap); ``seeds_needed`` for that test against the claim's
target. Power is :mod:`introspect.analysis.stats`' (noncentral t; exact integration for TOST).

**Magnitudes only where comparable.** "Smaller than reported" sets our effect against the paper's; that is
meaningful only when the dataset, model and budget are the paper's (``Claim.paper_setting``, from the plan's
facts: :func:`introspect.claims.report.paper_setting`).
Elsewhere the verdict is about the direction only and the reason says why (``Claim.setting_note``).

Verdict rules (``docs/claims.md`` gives the reasons): "greater" (A > B) is contradicted when Holm p < alpha
with B ahead, smaller than reported (paper setting only) when the corrected interval lies below the paper's
positive effect, replicated when Holm p < alpha with A ahead. "equivalent" (A ≈ B within ±margin) is replicated
by TOST at the corrected level (its Holm p < alpha) and contradicted only when the corrected interval lies
entirely outside ±margin (a significant difference whose estimate is beyond the margin is not enough: with the
true gap at the margin that rule's false-positive rate approaches 50% as n grows). "not_better" (A is not
better than B) is contradicted when the corrected interval lies above 0 and replicated when the one-sided
non-superiority test at the smallest effect of interest has Holm p < alpha. "less_variable" (A's spread over
seeds is smaller than B's) is replicated or contradicted by the Pitman-Morgan test's Holm p and the spreads'
ratio. Anything else is inconclusive; "inconclusive (underpowered)" when the MDE exceeds the target.

A resolved verdict on a claim whose two cells carry a ``resolution`` flag (paired differences all within one
test image) is withheld: "withheld (test-set resolution)", with the verdict the rules gave in the reason.

Where the paper's text (the claim's direction) and its own table disagree (a "greater" claim whose table
effect is ≤ 0), the claim says so and the reason reports which of the two our result agrees with.

Degenerate data (fewer than two paired seeds, or the same difference on every seed) give NaN statistics and
"inconclusive" with the reason.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special

from ..analysis.numbers import format_number
from ..analysis.sanity import Flag
from ..analysis.stats import (
    NAN,
    degenerate_reason,
    family_level,
    holm,
    minimum_detectable_effect,
    minimum_equivalence_margin,
    one_sided_p,
    paired_differences,
    paired_t,
    pitman_morgan,
    seeds_needed,
    tost_p,
    tost_seeds_needed,
)
from ..config.claim import DIRECTIONS, Claim
from ..config.model import ClaimSettings
from .rules import (
    CODES,
    CONTRADICTED,
    INCONCLUSIVE,
    OPEN,
    REPLICATED,
    RESOLVED,
    SMALLER,
    UNDERPOWERED,
    WITHHELD,
    verdict_rule,
)

# The defaults of the config's claim_settings (written once, on ClaimSettings)
ALPHA, POWER = ClaimSettings.alpha, ClaimSettings.power
SMALLEST_EFFECT_PP = ClaimSettings.smallest_effect_pp  # the target of claims with no positive paper effect
VERDICTS = (REPLICATED, CONTRADICTED, SMALLER, INCONCLUSIVE, UNDERPOWERED, WITHHELD)
TESTS = {"greater": "paired t, two-sided", "equivalent": "TOST", "not_better": "non-superiority, one-sided",
         "less_variable": "Pitman-Morgan, two-sided", "cheaper": "paired t of costs, two-sided"}


def check_claims(claims: Sequence[Claim]) -> None:
    """What the engine cannot judge (the config's validation refuses it first): unique names, known
    directions, a positive margin for each equivalent claim."""
    names = [c.name for c in claims]
    if len(set(names)) != len(names):
        raise ValueError(f"claim names must be unique: {sorted({n for n in names if names.count(n) > 1})}")
    for claim in claims:
        if claim.direction not in DIRECTIONS:
            raise ValueError(f"claim {claim.name}: direction {claim.direction!r} is not one of {DIRECTIONS}")
        if claim.direction == "equivalent" and not (claim.margin is not None and claim.margin > 0):
            raise ValueError(f"claim {claim.name}: an 'equivalent' claim needs a positive margin (pp)")


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
    p: float  # two-sided paired t against zero
    sd_ratio: float = NAN  # less_variable claims: sd of A over seeds / sd of B
    part_of: str = ""  # the majority claim this one is a member of (its verdict counts there)
    test: str = ""  # the claim's own test (TESTS)
    p_test: float = NAN  # its p-value; Holm runs over these
    family_size: int = 0  # testable claims in the family (m)
    alpha_family: float = NAN  # alpha / m: the corrected level
    corrected_ci_low: float = NAN  # the paired t interval at confidence 1 − alpha / m
    corrected_ci_high: float = NAN
    p_holm: float = NAN
    target: float = NAN  # what the MDE and seeds_needed are planned against, pp
    target_source: str = ""  # "paper effect" | "margin" | "smallest effect of interest"
    planned_difference: float = NAN  # TOST: the true difference power is computed at (the paper's gap, or 0)
    mde: float = NAN  # of the claim's test at alpha_family, 80% power (TOST: the narrowest margin)
    underpowered: bool | None = None
    seeds_needed: int | None = None  # open claims: paired seeds for 80% power at alpha_family, our spread
    paper_sd: float = NAN  # spread of A − B from the paper's stds (independent cells)
    paper_seeds_needed: int | None = None  # the same plan at that spread: seeds for the paper config
    gpu_hours_needed: float = NAN  # seeds of both cells in the cost config (paper_seeds_needed where priced there)
    verdict: str = ""
    reason: str = ""
    paper_setting: bool = True
    table_disagrees: bool = False
    repeat_probability: float = NAN  # chance a rerun with new seeds gives the same verdict (claims.repeat)
    # the share of reruns (seed resamples) reaching each outcome; summed over claims: the expected counts
    rerun_replicated: float = NAN
    rerun_contradicted: float = NAN
    rerun_smaller: float = NAN
    rerun_withheld: float = NAN
    rerun_open: float = NAN
    flags: list[Flag] = field(default_factory=list)
    text: str = ""
    # the same comparison on the best *test* epoch of each run (the paper's likely statistic): optimistic
    optimistic_effect: float = NAN
    optimistic_ci_low: float = NAN
    optimistic_ci_high: float = NAN
    optimistic_verdict: str = ""


def measure(claim: Claim, a: Mapping[int, float], b: Mapping[int, float], *,
            smallest_effect: float = SMALLEST_EFFECT_PP) -> ClaimResult:
    """Statistics of one claim from per-seed accuracies of A and B; no family, power or verdict yet."""
    seeds, diff = paired_differences(a, b)
    unpaired = sorted(set(a) ^ set(b))
    test = paired_t(a, b)
    ratio, p_test, reason = (pitman_morgan(a, b) if claim.direction == "less_variable"
                             else (NAN, own_test_p(claim.direction, diff, claim.margin, smallest_effect, test.p),
                                   test.reason))
    return ClaimResult(
        name=claim.name, family=claim.family, model=claim.values_key, dataset=claim.shown_dataset,
        method_a=claim.method_a, method_b=claim.method_b, direction=claim.direction,
        paper_effect=NAN if claim.paper_effect is None else float(claim.paper_effect),
        margin=NAN if claim.margin is None else float(claim.margin),
        n_pairs=len(seeds), n_unpaired=len(unpaired), unpaired_seeds=" ".join(map(str, unpaired)),
        effect=test.mean_diff, ci_low=test.ci_low, ci_high=test.ci_high,
        sd_diff=float(diff.std(ddof=1)) if len(diff) > 1 else NAN, t=test.statistic, df=test.df, p=test.p,
        test=TESTS[claim.direction], p_test=p_test, sd_ratio=ratio, part_of=claim.part_of or "",
        reason=reason, text=claim.text, table_disagrees=claim.table_disagrees,
        paper_setting=claim.paper_setting, paper_sd=NAN if claim.paper_sd is None else claim.paper_sd,
    )


def own_test_p(direction: str, diff: np.ndarray, margin: float | None, smallest_effect: float,
               two_sided: float) -> float:
    """The p-value of the claim's own test on the paired differences (see :data:`TESTS`; a variance claim's
    test reads both samples: :func:`~introspect.analysis.stats.pitman_morgan`)."""
    if direction == "equivalent":
        return tost_p(diff, float(margin))
    if direction == "not_better":
        return one_sided_p(diff, smallest_effect)
    return two_sided


def corrected_interval(diff: np.ndarray, level: float) -> tuple[float, float]:
    """The paired t interval of the mean difference at confidence 1 − ``level`` (NaN when degenerate)."""
    if degenerate_reason(diff):
        return NAN, NAN
    n = len(diff)
    half = special.stdtrit(n - 1, 1 - level / 2) * float(diff.std(ddof=1)) / math.sqrt(n)  # stats.t.isf, faster
    return float(diff.mean()) - half, float(diff.mean()) + half


def target_of(result: ClaimResult, smallest_effect: float) -> tuple[float, str]:
    if result.direction == "equivalent":
        return result.margin, "margin"
    if result.direction == "greater" and result.paper_effect > 0:  # False when NaN
        return result.paper_effect, "paper effect"
    return smallest_effect, "smallest effect of interest"


def planned_difference(result: ClaimResult) -> float:
    """TOST's power is planned at the paper's gap where it lies inside the margin, else at no difference."""
    if result.direction != "equivalent":
        return NAN
    gap = result.paper_effect
    return abs(gap) if math.isfinite(gap) and abs(gap) < result.margin else 0.0


def mde_of(result: ClaimResult, n: int, sd: float, level: float, power: float) -> float:
    if result.direction == "less_variable":
        return NAN  # no power plan for a variance test here
    if result.direction == "equivalent":
        return minimum_equivalence_margin(sd, n, difference=planned_difference(result), alpha=level, power=power)
    alternative = "greater" if result.direction == "not_better" else "two-sided"
    return minimum_detectable_effect(sd, n, alpha=level, power=power, alternative=alternative)


def seeds_for(result: ClaimResult, sd: float, level: float, power: float) -> int | None:
    """Paired seeds the claim's own test needs for ``power`` at ``level`` against its target, spread ``sd``."""
    if result.direction == "less_variable":
        return None
    if result.direction == "equivalent":
        return tost_seeds_needed(planned_difference(result), result.margin, sd, alpha=level, power=power)
    alternative = "greater" if result.direction == "not_better" else "two-sided"
    return seeds_needed(result.target, sd, alpha=level, power=power, alternative=alternative)


def at_family_level(result: ClaimResult, diff: np.ndarray, m: int, *, alpha: float = ALPHA, power: float = POWER,
                    smallest_effect: float = SMALLEST_EFFECT_PP, plan: bool = True) -> ClaimResult:
    """The result with its family's corrected level, corrected interval, target and (``plan``) MDE."""
    level = family_level(alpha, m)
    target, source = target_of(result, smallest_effect)
    low, high = corrected_interval(diff, level)
    result = replace(result, family_size=m, alpha_family=level, corrected_ci_low=low, corrected_ci_high=high,
                     target=target, target_source=source, planned_difference=planned_difference(result))
    if not plan:
        return result
    mde = NAN if result.reason else mde_of(result, result.n_pairs, result.sd_diff, level, power)
    return replace(result, mde=mde, underpowered=None if math.isnan(mde) else bool(mde > target))


def decide(result: ClaimResult, *, alpha: float = ALPHA, check_paper_magnitude: bool = True,
           setting_note: str = "") -> ClaimResult:
    """The result with ``verdict`` and ``reason`` filled in by the module's rules; ``p_holm`` and the
    family level must already be set (NaN p-values mean the test was degenerate). The verdict is
    :func:`.rules.verdict_rule`'s, the one the repeat probabilities apply to every resample."""
    compare = check_paper_magnitude and result.paper_setting
    if math.isnan(result.p_test):
        verdict, reason = INCONCLUSIVE, result.reason or "no test"
    else:
        verdict = _observed_verdict(result, alpha, compare)
        reason = _REASONS.get(result.direction, _greater_reason)(result, verdict, alpha)
    if verdict == INCONCLUSIVE and result.underpowered:
        verdict = UNDERPOWERED
        reason += f"; MDE {result.mde:.2f} pp > {result.target_source} {result.target:.2f} pp"
    if result.direction == "greater" and not result.paper_setting and math.isfinite(result.paper_effect):
        why = setting_note or "not the paper setting"
        reason += f"; direction only: {why}, so the paper's magnitude is not compared"
    if result.table_disagrees:
        reason += "; " + _which_agrees(result, verdict, alpha)
    if verdict in RESOLVED and any(f.code == "resolution" for f in result.flags):
        verdict, reason = WITHHELD, f"the rules gave '{verdict}', but the two cells differ by at most one test " \
                                    f"image on every seed (resolution flag): {reason}"
    return replace(result, verdict=verdict, reason=reason)


def _interval(r: ClaimResult) -> str:
    return f"[{format_number(r.corrected_ci_low, '+.2f')}, {format_number(r.corrected_ci_high, '+.2f')}] pp"


def _observed_verdict(r: ClaimResult, alpha: float, compare: bool) -> str:
    def one(value: float) -> np.ndarray:
        return np.array([value], dtype=float)

    code = verdict_rule(r.direction, np.array([r.p_holm < alpha]), one(r.effect), one(r.corrected_ci_low),
                        one(r.corrected_ci_high), one(r.sd_ratio), margin=r.margin, paper_effect=r.paper_effect,
                        compare=compare)
    return CODES[int(code[0])]


def _greater_reason(r: ClaimResult, verdict: str, alpha: float) -> str:
    if verdict == CONTRADICTED:
        return f"{r.method_b} significantly better (Holm p = {r.p_holm:.3g})"
    if verdict == SMALLER:
        ahead = (f"{r.method_a} significantly ahead (Holm p = {r.p_holm:.3g}), but" if r.p_holm < alpha and r.effect > 0
                 else f"not significant against zero (Holm p = {r.p_holm:.3g});")
        return f"{ahead} the corrected interval {_interval(r)} excludes the paper's {r.paper_effect:+.2f} pp"
    if verdict == REPLICATED:
        return f"{r.method_a} significantly better (Holm p = {r.p_holm:.3g})"
    return f"not significant (Holm p = {r.p_holm:.3g})"


def _equivalent_reason(r: ClaimResult, verdict: str, alpha: float) -> str:
    m = r.margin
    if verdict == REPLICATED:
        return f"TOST within ±{m:g} pp, Holm p = {r.p_holm:.3g}"
    if verdict == CONTRADICTED:
        return f"corrected interval {_interval(r)} entirely outside ±{m:g} pp"
    return f"TOST not significant (Holm p = {r.p_holm:.3g}); corrected interval {_interval(r)}"


def _not_better_reason(r: ClaimResult, verdict: str, alpha: float) -> str:
    if verdict == CONTRADICTED:
        return f"{r.method_a} significantly better: corrected interval {_interval(r)} above 0"
    if verdict == REPLICATED:
        return (f"{r.method_a} − {r.method_b} surely below the smallest effect of interest "
                f"{r.target:g} pp (one-sided, Holm p = {r.p_holm:.3g})")
    return f"non-superiority not shown (Holm p = {r.p_holm:.3g}); corrected interval {_interval(r)}"


def _less_variable_reason(r: ClaimResult, verdict: str, alpha: float) -> str:
    spread = f"sd of {r.method_a} / sd of {r.method_b} = {r.sd_ratio:.2f}"
    if verdict in RESOLVED:
        return f"{spread}, different spreads (Pitman-Morgan, Holm p = {r.p_holm:.3g})"
    return f"{spread}, not significantly different (Holm p = {r.p_holm:.3g}); no power plan"


_REASONS = {"equivalent": _equivalent_reason, "not_better": _not_better_reason,
            "less_variable": _less_variable_reason}


def _which_agrees(r: ClaimResult, verdict: str, alpha: float) -> str:
    table = f"the paper's own table has A − B = {r.paper_effect:+.2f} pp against its text"
    if verdict == REPLICATED:
        return f"{table}; ours agrees with the text"
    if (r.p_holm < alpha and r.effect < 0) or verdict == SMALLER:
        return f"{table}; ours agrees with the table"
    if r.corrected_ci_low <= r.paper_effect <= r.corrected_ci_high:
        return f"{table}; ours is consistent with the table and cannot exclude the text"
    return f"{table}; ours agrees with neither"


def plan_seeds(result: ClaimResult, *, power: float = POWER, seed_gpu_hours: float | None = None,
               price_paper_seeds: bool = False) -> ClaimResult:
    """``seeds_needed`` at our spread, ``paper_seeds_needed`` at the paper's, and the GPU-hours of the one the
    cost config trains (the paper's seeds where ``price_paper_seeds``: the cost config is the paper's)."""
    if result.verdict not in OPEN:
        return result
    needed = seeds_for(result, result.sd_diff, result.alpha_family, power)
    paper = seeds_for(result, result.paper_sd, result.alpha_family, power) if math.isfinite(result.paper_sd) else None
    priced = paper if price_paper_seeds else needed
    hours = priced * seed_gpu_hours if priced is not None and seed_gpu_hours is not None else NAN
    return replace(result, seeds_needed=needed, paper_seeds_needed=paper, gpu_hours_needed=hours)


def judge_family(results: list[ClaimResult], diffs: Sequence[np.ndarray], *, alpha: float = ALPHA,
                 power: float = POWER, smallest_effect: float = SMALLEST_EFFECT_PP, plan: bool = True
                 ) -> list[ClaimResult]:
    """Holm over each family's testable claims (their own tests' p), then each claim at its family's level."""
    out = list(results)
    for family in dict.fromkeys(r.family for r in out):
        members = [i for i, r in enumerate(out) if r.family == family]
        m = sum(not math.isnan(out[i].p_test) for i in members)
        for i, p in zip(members, holm([out[i].p_test for i in members])):
            out[i] = at_family_level(replace(out[i], p_holm=p), diffs[i], m, alpha=alpha, power=power,
                                     smallest_effect=smallest_effect, plan=plan)
    return out


def evaluate_claims(claims: Sequence[Claim], values: Mapping[tuple[str, str], Mapping[int, float]], *,
                    alpha: float = ALPHA, power: float = POWER, smallest_effect: float = SMALLEST_EFFECT_PP,
                    check_paper_magnitude: bool = True, flags: Mapping[str, Sequence[Flag]] | None = None,
                    price_paper_seeds: bool = False) -> list[ClaimResult]:
    """Every claim against one result set. ``values[(claim.values_key, method)]`` is {seed: accuracy %}; a missing
    entry counts as no seeds. Holm runs over the claims of each ``Claim.family``; ``flags[claim.name]`` are the
    sanity flags its cells carry."""
    check_claims(claims)
    sides = [(values.get((c.values_key, c.method_a), {}), values.get((c.values_key, c.method_b), {}))
             for c in claims]
    results = [measure(c, a, b, smallest_effect=smallest_effect) for c, (a, b) in zip(claims, sides)]
    diffs = [paired_differences(a, b)[1] for a, b in sides]
    results = judge_family(results, diffs, alpha=alpha, power=power, smallest_effect=smallest_effect)
    flags = flags or {}
    out = []
    for c, r in zip(claims, results):
        r = decide(replace(r, flags=list(flags.get(r.name, ()))), alpha=alpha,
                   check_paper_magnitude=check_paper_magnitude, setting_note=c.setting_note)
        out.append(plan_seeds(r, power=power, seed_gpu_hours=c.seed_gpu_hours, price_paper_seeds=price_paper_seeds))
    return out
