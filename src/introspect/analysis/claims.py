"""Claims engine: does our result set replicate what the paper says about method A against method B?

A claim names two methods on one model, the paper's direction, and (when its tables give it) the paper's
effect A − B in accuracy points (pp). Accuracies are paired by seed (seeds present for only one method are
dropped and counted). For each claim we report our effect (mean paired difference), its 95% CI, the two-sided
paired t p-value, the Holm-adjusted p over the claim's family, and the minimum detectable effect (MDE): the
smallest true difference a two-sided paired t-test of our n pairs, with the observed spread of the differences,
detects with 80% power at alpha = 0.05 (nominal alpha: Holm makes the real threshold stricter, so this MDE is a
lower bound).

Verdict rules (alpha = 0.05; "CI" is the per-claim 95% CI, not adjusted over the family):

direction "greater" (the paper says A > B):
  1. replicated    Holm p < alpha and effect > 0. If the CI's upper bound is below the paper's effect, the
                   reason says the advantage is smaller than the paper's.
  2. contradicted  Holm p < alpha and effect < 0 (B is significantly better), or, when the paper's effect is
                   known and positive, the CI's upper bound is below it: an advantage of the size the paper
                   reports is excluded, whether or not a smaller one exists. This second rule compares
                   magnitudes, which only makes sense on the paper's dataset and budget; turn it off
                   (``check_paper_magnitude=False``) for result sets that deliberately differ from the paper.
                   It uses the unadjusted CI, so it is the more liberal of the two and is named in the reason.
  3. inconclusive  otherwise; "inconclusive (underpowered)" when MDE > |paper effect|, i.e. even an effect as
                   large as the paper's would have been missed more than 20% of the time.

direction "equivalent" (the paper says A ≈ B within ± margin pp), a two-one-sided-tests reading:
  1. replicated    the whole CI lies inside (−margin, +margin) (= TOST at 2.5% per side, stricter than the
                   usual 5%).
  2. contradicted  the whole CI lies outside ±margin, or Holm p < alpha and |effect| > margin.
  3. inconclusive  otherwise; "inconclusive (underpowered)" when MDE > margin.

Degenerate data (fewer than two paired seeds, or the same difference on every seed, which leaves no estimate
of the noise) give NaN statistics and "inconclusive" with the reason. ``underpowered`` is reported for every
claim (None when there is no paper effect or margin to compare the MDE with).
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from ..io import atomic_write_text
from ..specs import ClaimSpec, ClaimsSpec
from .cells import CellResult, collect_cells, flag_cells, reference_accuracies
from .reported import Reported, paper_value, read_reported
from .stats import NAN, holm, minimum_detectable_effect, paired_differences, paired_t

ALPHA = 0.05
POWER = 0.8
DIRECTIONS = ("greater", "equivalent")
REPLICATED, CONTRADICTED, INCONCLUSIVE = "replicated", "contradicted", "inconclusive"
UNDERPOWERED = "inconclusive (underpowered)"


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

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")
        if self.direction == "equivalent" and not (self.margin is not None and self.margin > 0):
            raise ValueError(f"claim {self.name}: an 'equivalent' claim needs a positive margin (pp)")


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
    p_holm: float = NAN
    mde: float = NAN
    underpowered: bool | None = None
    verdict: str = ""
    reason: str = ""
    flags: str = ""
    text: str = ""
    # the same comparison on the best *test* epoch of each run (the paper's likely statistic): optimistic
    optimistic_effect: float = NAN
    optimistic_ci_low: float = NAN
    optimistic_ci_high: float = NAN
    optimistic_verdict: str = ""


COLUMNS = [f.name for f in fields(ClaimResult)]


def measure(claim: Claim, a: Mapping[int, float], b: Mapping[int, float], *, power: float = POWER,
            alpha: float = ALPHA) -> ClaimResult:
    """Statistics of one claim from per-seed accuracies of A and B; no Holm adjustment and no verdict yet."""
    seeds, diff = paired_differences(a, b)
    unpaired = sorted(set(a) ^ set(b))
    test = paired_t(a, b)
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else NAN
    return ClaimResult(
        name=claim.name, family=claim.family, model=claim.model, dataset=claim.dataset,
        method_a=claim.method_a, method_b=claim.method_b, direction=claim.direction,
        paper_effect=NAN if claim.paper_effect is None else float(claim.paper_effect),
        margin=NAN if claim.margin is None else float(claim.margin),
        n_pairs=len(seeds), n_unpaired=len(unpaired), unpaired_seeds=" ".join(map(str, unpaired)),
        effect=test.mean_diff, ci_low=test.ci_low, ci_high=test.ci_high, sd_diff=sd,
        t=test.statistic, df=test.df, p=test.p,
        mde=NAN if test.reason else minimum_detectable_effect(sd, len(seeds), alpha=alpha, power=power),
        reason=test.reason, text=claim.text,
    )


def decide(result: ClaimResult, *, alpha: float = ALPHA, check_paper_magnitude: bool = True) -> ClaimResult:
    """The result with ``underpowered``, ``verdict`` and ``reason`` filled in by the module's rules;
    ``p_holm`` must already be set (NaN p-values mean the test was degenerate)."""
    target = result.margin if result.direction == "equivalent" else abs(result.paper_effect)
    underpowered = None if math.isnan(target) or math.isnan(result.mde) else bool(result.mde > target)
    if math.isnan(result.p):
        return replace(result, underpowered=underpowered, verdict=INCONCLUSIVE,
                       reason=result.reason or "no test")
    rule = _equivalent if result.direction == "equivalent" else _greater
    verdict, reason = rule(result, alpha, check_paper_magnitude)
    if verdict == INCONCLUSIVE and underpowered:
        verdict = UNDERPOWERED
        reason += f"; MDE {result.mde:.2f} pp > {'margin' if result.direction == 'equivalent' else 'paper effect'} " \
                  f"{target:.2f} pp"
    return replace(result, underpowered=underpowered, verdict=verdict, reason=reason)


def _greater(r: ClaimResult, alpha: float, check_paper_magnitude: bool) -> tuple[str, str]:
    significant = r.p_holm < alpha
    below_paper = r.paper_effect > 0 and r.ci_high < r.paper_effect  # False when the paper effect is NaN
    if significant and r.effect > 0:
        extra = f"; smaller than the paper's {r.paper_effect:+.2f} pp (CI upper bound below it)" if below_paper else ""
        return REPLICATED, f"{r.method_a} significantly better (Holm p = {r.p_holm:.3g}){extra}"
    if significant and r.effect < 0:
        return CONTRADICTED, f"{r.method_b} significantly better (Holm p = {r.p_holm:.3g})"
    if check_paper_magnitude and below_paper:
        return CONTRADICTED, (f"effect size: 95% CI upper bound {r.ci_high:+.2f} pp is below the paper's "
                              f"{r.paper_effect:+.2f} pp (not family-adjusted)")
    return INCONCLUSIVE, f"not significant (Holm p = {r.p_holm:.3g})"


def _equivalent(r: ClaimResult, alpha: float, check_paper_magnitude: bool) -> tuple[str, str]:
    m = r.margin
    if -m < r.ci_low and r.ci_high < m:
        return REPLICATED, f"95% CI [{r.ci_low:+.2f}, {r.ci_high:+.2f}] pp within ±{m:g} pp"
    if r.ci_low > m or r.ci_high < -m:
        return CONTRADICTED, f"95% CI [{r.ci_low:+.2f}, {r.ci_high:+.2f}] pp entirely outside ±{m:g} pp"
    if r.p_holm < alpha and abs(r.effect) > m:
        return CONTRADICTED, f"significant difference (Holm p = {r.p_holm:.3g}) larger than ±{m:g} pp"
    return INCONCLUSIVE, f"95% CI [{r.ci_low:+.2f}, {r.ci_high:+.2f}] pp overlaps the ±{m:g} pp boundary"


def evaluate_claims(claims: Sequence[Claim], values: Mapping[tuple[str, str], Mapping[int, float]], *,
                    alpha: float = ALPHA, power: float = POWER, check_paper_magnitude: bool = True,
                    flags: Mapping[str, Sequence[str]] | None = None) -> list[ClaimResult]:
    """Every claim against one result set. ``values[(model, method)]`` is {seed: accuracy %}; a missing entry
    counts as no seeds. Holm runs over the claims of each ``Claim.family``. ``flags[claim.name]`` are sanity
    flags (texts) carried into the ``flags`` column."""
    names = [c.name for c in claims]
    if len(set(names)) != len(names):
        raise ValueError(f"claim names must be unique: {sorted({n for n in names if names.count(n) > 1})}")
    results = [measure(c, values.get((c.model, c.method_a), {}), values.get((c.model, c.method_b), {}),
                       power=power, alpha=alpha) for c in claims]
    for family in dict.fromkeys(r.family for r in results):
        members = [r for r in results if r.family == family]
        for r, p in zip(members, holm([r.p for r in members])):
            r.p_holm = p
    flags = flags or {}
    return [replace(decide(r, alpha=alpha, check_paper_magnitude=check_paper_magnitude),
                    flags="; ".join(flags.get(r.name, ()))) for r in results]


# ---------------------------------------------------------------- outputs

def claims_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in results], columns=COLUMNS)


def summary(results: Sequence[ClaimResult]) -> str:
    """One plain-language paragraph: how many claims replicated, were contradicted, or stay open, and why."""
    if not results:
        return "No claims were evaluated."
    count = {v: sum(r.verdict == v for r in results) for v in (REPLICATED, CONTRADICTED, UNDERPOWERED)}
    open_claims = [r for r in results if r.verdict in (INCONCLUSIVE, UNDERPOWERED)]
    text = (f"Of {len(results)} claim{'s' if len(results) != 1 else ''} from the paper, {count[REPLICATED]} "
            f"replicated, {count[CONTRADICTED]} {'was' if count[CONTRADICTED] == 1 else 'were'} contradicted and "
            f"{len(open_claims)} {'is' if len(open_claims) == 1 else 'are'} inconclusive")
    text += (f" ({count[UNDERPOWERED]} of them underpowered: with this many seeds and this much seed-to-seed "
             "spread, even the paper's effect or the equivalence margin would likely go undetected)."
             if count[UNDERPOWERED] else ".")
    if open_claims:
        text += " This result set cannot resolve: " + "; ".join(f"{r.name} ({r.reason})" for r in open_claims) + "."
    flagged = [r.name for r in results if r.flags]
    if flagged:
        text += f" Claims resting on flagged cells (see their flags before trusting the verdict): {', '.join(flagged)}."
    return text


def _num(value: float, spec: str = "+.2f") -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _display_rows(results: Sequence[ClaimResult]) -> tuple[list[str], list[list[str]]]:
    header = ["Claim", "A vs B", "Model", "Paper says", "Paper A−B", "Ours A−B [95% CI]", "n (unpaired)",
              "Holm p", "MDE", "Verdict", "Why", "Flags", "Best test epoch A−B [95% CI] (optimistic)"]
    rows = []
    for r in results:
        says = f"A ≈ B (±{r.margin:g} pp)" if r.direction == "equivalent" else "A > B"
        ours = f"{_num(r.effect)} [{_num(r.ci_low)}, {_num(r.ci_high)}]"
        rows.append([r.name, f"{r.method_a} vs {r.method_b}", r.model, says, _num(r.paper_effect), ours,
                     f"{r.n_pairs} ({r.n_unpaired})", _num(r.p_holm, ".3g"), _num(r.mde, ".2f"), r.verdict,
                     r.reason, r.flags, _optimistic(r)])
    return header, rows


RULES_NOTE = ("Effects are mean paired differences A − B over seeds, in accuracy points; p from the two-sided "
              "paired t-test, Holm-adjusted within each claim family; MDE: smallest difference detected with 80% "
              "power at alpha 0.05 for this n and spread. A > B replicates when Holm p < 0.05 with A ahead, and is "
              "contradicted when B is significantly ahead or the 95% CI excludes the paper's effect; A ≈ B "
              "replicates when the 95% CI lies inside ±margin and is contradicted when it lies outside, or the "
              "difference is significant and beyond the margin. Anything else is inconclusive, 'underpowered' when "
              "the MDE exceeds the paper's effect (or the margin). Headline numbers are final-epoch test accuracies; "
              "the last column repeats the comparison on each run's best test epoch (test_acc_max), the statistic "
              "the paper most likely reports (the TAKD code it follows prints it): optimistic, since that epoch is "
              "chosen on the test data.")


def _optimistic(r: ClaimResult) -> str:
    if math.isnan(r.optimistic_effect):
        return "–"
    return (f"{_num(r.optimistic_effect)} [{_num(r.optimistic_ci_low)}, {_num(r.optimistic_ci_high)}]: "
            f"{r.optimistic_verdict}")


def claims_markdown(results: Sequence[ClaimResult], title: str = "Claims") -> str:
    header, rows = _display_rows(results)
    return (f"# {title}\n\n{summary(results)}\n\n"
            f"{tabulate(rows, header, tablefmt='github', disable_numparse=True)}\n\n- {RULES_NOTE}\n")


def claims_html(results: Sequence[ClaimResult], title: str = "Claims") -> str:
    header, rows = _display_rows(results)
    table = pd.DataFrame(rows, columns=header).to_html(index=False, escape=True, border=0)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            f"<h2>{html.escape(title)}</h2><p>{html.escape(summary(results))}</p>{table}"
            f"<p><small>{html.escape(RULES_NOTE)}</small></p></body></html>\n")


def write_claims(results: Sequence[ClaimResult], out_prefix: Path, title: str = "Claims") -> None:
    """``<out_prefix>.md``, ``.csv`` (every column of ClaimResult) and ``.html``."""
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_prefix.with_suffix(".csv"), claims_frame(results).to_csv(index=False))
    atomic_write_text(out_prefix.with_suffix(".md"), claims_markdown(results, title))
    atomic_write_text(out_prefix.with_suffix(".html"), claims_html(results, title))


# ---------------------------------------------------------------- from a plan's claims to results/claims.*

def write_claims_report(spec: ClaimsSpec, reported_csv: Path, *, metric: str = "test_acc_final",
                        allow_missing: bool = False) -> list[ClaimResult]:
    """Evaluate every claim of ``spec`` on its runs and write ``claims.{md,csv,html}`` under its
    results_dir. Cells are compared within their view and group; each claim carries the sanity flags
    of its two cells. The paper's magnitudes are checked only where every claim ran on the paper's
    own dataset (``ClaimSpec.on_papers_data``)."""
    layout = spec.view_layout
    reported = read_reported(reported_csv)
    cells: dict[tuple[str, str], CellResult] = {}
    for view, view_cells in spec.cells.items():
        results = collect_cells(f"claims of {view}", view_cells, layout, lambda run, m: run.value(m), metric,
                                allow_missing=allow_missing)
        flag_cells(results, key=lambda c, view=view: f"{view} · {c.group}",
                   references=reference_accuracies(spec.references.get(view, {}), layout))
        cells.update({(f"{view} · {c.group}", c.method): c for c in results})
    claims = [_claim(c, reported) for c in spec.claims]
    flags = {c.name: [f"{m}: {t}" for m in (c.method_a, c.method_b) for t in cells[(c.model, m)].flag_texts]
             for c in claims}
    check = all(c.on_papers_data for c in spec.claims)
    results = evaluate_claims(claims, {key: cell.values for key, cell in cells.items()},
                              check_paper_magnitude=check, flags=flags)
    optimistic = evaluate_claims(claims, {key: cell.optimistic for key, cell in cells.items()},
                                 check_paper_magnitude=check)
    results = [replace(r, optimistic_effect=o.effect, optimistic_ci_low=o.ci_low, optimistic_ci_high=o.ci_high,
                       optimistic_verdict=o.verdict) for r, o in zip(results, optimistic)]
    write_claims(results, layout.claims("md").with_suffix(""), "The paper's claims on this result set")
    return results


def _claim(spec: ClaimSpec, reported: list[Reported]) -> Claim:
    """An engine claim for a config claim; its "model" is the view and group, so values never mix views.
    The paper's effect is in accuracy points (an error table's difference is negated)."""
    means = [paper_value(reported, spec.paper_table, spec.metric_kind, spec.model, method, spec.paper_dataset)[0]
             for method in (spec.method_a, spec.method_b)]
    effect = means[0] - means[1]
    if spec.metric_kind == "error":
        effect = -effect
    return Claim(spec.name, spec.method_a, spec.method_b, f"{spec.view} · {spec.group}",
                 spec.paper_dataset or spec.dataset, spec.direction, None if math.isnan(effect) else effect,
                 spec.margin, spec.family, spec.text)
