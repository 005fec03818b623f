"""From a plan's claims (:class:`~introspect.plan.views.ClaimsSpec`) to ``claims.{md,csv,html}`` and the overlay
``claims_next.yaml``: reads each claim's cells through the run layer, attaches their sanity flags, runs the
claims engine (:mod:`.claims`) and its renderers (:mod:`.claims_render`)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import yaml

from ..analysis.cells import CellResult, collect_cells, flag_cells, reference_accuracies
from ..analysis.reported import Reported, paper_value, read_reported
from ..analysis.sanity import DEFAULT_BASELINE, flags_of
from ..config.claim import Claim
from ..io import atomic_write_text
from ..plan.views import ClaimsSpec, cell_key
from .engine import OPEN, ClaimResult, evaluate_claims
from .majority import members_noted, with_majorities
from .measured import cost_values
from .render import write_claims
from .repeat import with_repeat_probabilities
from .similarity import similarity_result


def write_claims_report(spec: ClaimsSpec, reported_csv, *, metric: str = "test_acc_final",
                        allow_missing: bool = False) -> list[ClaimResult]:
    """Evaluate every claim of ``spec`` on its runs and write ``claims.{md,csv,html}`` and
    ``claims_next.yaml`` under its results_dir. Cells are compared within their view and group; each claim
    carries the sanity flags of its two cells. The paper's magnitudes are compared (smaller than reported)
    unless ``claim_settings.compare_magnitudes`` is off."""
    layout = spec.view_layout
    reported = read_reported(reported_csv)
    cells: dict[tuple[str, str], CellResult] = {}
    flags = []
    for view, view_cells in spec.cells.items():
        results = collect_cells(f"claims of {view}", view_cells, layout, lambda run, m: run.value(m), metric,
                                allow_missing=allow_missing, teacher_of=spec.teacher_of)
        flags += flag_cells(results, key=lambda c, view=view: f"{view} · {c.group}",
                            references=reference_accuracies(spec.references.get(view, {}), layout),
                            baseline=spec.baselines.get(view, DEFAULT_BASELINE))
        cells.update({(f"{view} · {c.group}", c.method): c for c in results})
    claims = [_claim(c, reported, spec.seed_gpu_hours.get(c.name)) for c in spec.claims
              if c.direction != "similar_pairs"]
    attached = {c.name: flags_of(flags, c.values_key, c.method_a, c.method_b) for c in claims}
    settings, check = spec.settings, spec.settings.compare_magnitudes
    options = {"alpha": settings.alpha, "smallest_effect": settings.smallest_effect_pp,
               "check_paper_magnitude": check}
    costs = cost_values(spec, spec.claims)  # the cheaper claims' measured costs, under keys of their own
    values = {**{key: cell.values for key, cell in cells.items()}, **costs}
    results = evaluate_claims(claims, values, flags=attached, power=settings.power,
                              price_paper_seeds=spec.priced_in_paper_config, **options)
    results = with_repeat_probabilities(claims, values, with_majorities(members_noted(results)), **options)
    results = [_shared_teacher_note(r, spec) for r in results]
    optimistic = evaluate_claims(claims, {**{key: cell.optimistic for key, cell in cells.items()}, **costs},
                                 power=settings.power, **options)
    optimistic = {r.name: r for r in with_majorities(optimistic)}
    results = [replace(r, optimistic_effect=o.effect, optimistic_ci_low=o.ci_low, optimistic_ci_high=o.ci_high,
                       optimistic_verdict=o.verdict) if (o := optimistic.get(r.name)) else r for r in results]
    order = {c.name: i for i, c in enumerate(spec.claims)}
    for claim in (c for c in spec.claims if c.direction == "similar_pairs"):  # from a figure's data (.similarity)
        at = next((i for i, r in enumerate(results) if order.get(r.name, -1) > order[claim.name]), len(results))
        results.insert(at, similarity_result(claim, layout, alpha=settings.alpha))
    write_claims(results, layout.claims("md").with_suffix(""), "The paper's claims on this result set",
                 (spec.cell_gpu_hours, spec.priced_in_paper_config))
    atomic_write_text(layout.claims_next, next_overlay(spec, results))
    return results


# The paper's budgets (Sec. 3 and 5: 160 epochs on CIFAR-10; Sec. 5.1: 50 epochs for the MLP on MNIST)
PAPER_EPOCHS = {"cifar10": 160, "mnist": 50}


def paper_setting(spec: Claim) -> tuple[bool, str]:
    """Whether a claim's cells ran in the paper's setting (its dataset and budget; the model is the group's,
    the paper's by construction), so that the paper's magnitudes are comparable; if not, why not."""
    paper_epochs = PAPER_EPOCHS.get(spec.paper_dataset or "")
    if spec.dataset == spec.paper_dataset and spec.epochs == paper_epochs:
        return True, ""
    ours = f"{spec.dataset}, {spec.epochs} epochs" if spec.epochs else spec.dataset
    paper = f"{spec.paper_dataset}, {paper_epochs} epochs" if paper_epochs else (spec.paper_dataset or "unknown")
    return False, f"{spec.model} on {ours} is not the paper's setting ({paper})"


def _claim(spec: Claim, reported: list[Reported], seed_gpu_hours: float | None) -> Claim:
    """A planned claim with what the claims job reads before judging it. The paper's effect is in accuracy points
    (an error table's difference is negated); its spread of A − B is that of two independent cells with the
    paper's reported standard deviations (it reports no paired one)."""
    if spec.direction == "cheaper":  # costs: the paper prints none, and its setting's times are not ours
        return replace(spec, seed_gpu_hours=seed_gpu_hours, paper_setting=False,
                       setting_note="measured wall time on this machine")
    cells = [paper_value(reported, spec.paper_table, spec.metric_kind or "accuracy", spec.model or "", method,
                         spec.paper_dataset) for method in (spec.method_a, spec.method_b)]
    effect = cells[0][0] - cells[1][0]
    if spec.metric_kind == "error":
        effect = -effect
    spread = math.hypot(cells[0][1], cells[1][1])
    comparable, note = paper_setting(spec)
    return replace(spec, paper_effect=None if math.isnan(effect) else effect, seed_gpu_hours=seed_gpu_hours,
                   paper_setting=comparable, setting_note=note,
                   paper_sd=spread if math.isfinite(spread) and spread > 0 else None)


def by_value(spec: ClaimsSpec, results: Sequence[ClaimResult]) -> list[tuple[ClaimResult, int, float]]:
    """The open claims that ``max_seeds`` seeds per cell can resolve (80% power at their corrected level, our
    spread), most valuable first: each next is the one whose added seeds cost least given the seeds already
    planned for the claims before it (claims resolved per GPU-hour, greedily). Each with its seed count and the
    GPU-hours it adds (one seed of a cell costs ``cell_gpu_hours``, or 1 where unpriced: then seeds are counted)."""
    by_name = {c.name: c for c in spec.claims}
    have = {(view, c.group, c.method): len(c.seeds) for view, cells in spec.cells.items() for c in cells}
    planned = dict(have)
    todo = [r for r in results if r.verdict in OPEN and r.seeds_needed is not None
            and r.seeds_needed <= spec.settings.max_seeds]
    order = []

    def added(r: ClaimResult) -> float:
        claim = by_name[r.name]
        return sum(max(0, r.seeds_needed - planned.get((claim.view, claim.group, m), 0))
                   * spec.cell_gpu_hours.get(cell_key(claim.view, claim.group, m), 1.0)
                   for m in (claim.method_a, claim.method_b))

    while todo:
        best = min(todo, key=lambda r: (added(r), r.name))
        order.append((best, best.seeds_needed, added(best)))
        todo.remove(best)
        claim = by_name[best.name]
        for m in (claim.method_a, claim.method_b):
            key = (claim.view, claim.group, m)
            planned[key] = max(planned.get(key, 0), best.seeds_needed)
    return order


def _shared_teacher_note(result: ClaimResult, spec: ClaimsSpec) -> ClaimResult:
    """Say so where a claim's cell learned from one teacher run for every seed: its interval holds the
    students' variance only, not the teacher's (a conditional claim: given that teacher). Teachers are
    trained per seed only where the config asks (``teachers.<name>.shared: false``)."""
    claim = next((c for c in spec.claims if c.name == result.name), None)
    if claim is None:  # a majority claim: its members carry the note
        return result
    shared = [c.method for c in spec.cells.get(claim.view, []) if c.group == claim.group
              and c.method in (claim.method_a, claim.method_b) and len(c.seeds) > 1
              and len(c.teacher_run_ids) == len(c.seeds) and len(set(c.teacher_run_ids)) == 1]
    if not shared:
        return result
    note = (f"teacher variance not sampled: one teacher run serves every seed of {' and '.join(shared)} "
            "(the interval is conditional on that teacher)")
    return replace(result, reason=f"{result.reason}; {note}" if result.reason else note)


def extra_seeds(spec: ClaimsSpec, results: Sequence[ClaimResult]) -> dict[str, dict[str, dict[str, list[int]]]]:
    """view -> group -> method -> the seeds beyond the config's own that the resolvable open claims need (the
    seeds it already has beyond them, and new ones up to the claim's seeds_needed), cells in the order of the
    claims' value (:func:`by_value`)."""
    wanted: dict[tuple[str, str, str], int] = {}
    by_name = {c.name: c for c in spec.claims}
    for r, n, _ in by_value(spec, results):
        claim = by_name[r.name]
        for method in (claim.method_a, claim.method_b):
            key = (claim.view, claim.group, method)
            wanted[key] = max(wanted.get(key, 0), n)
    cells = {(view, c.group, c.method): c for view, view_cells in spec.cells.items() for c in view_cells}
    out: dict[str, dict[str, dict[str, list[int]]]] = {}
    for (view, group, method), n in wanted.items():
        have = list(cells[(view, group, method)].seeds)
        seeds = have + _new_seeds(have, n - len(have))
        base = set(spec.settings.seeds) if spec.settings.seeds else set(have)
        extra = [s for s in seeds if s not in base]
        if extra:
            out.setdefault(view, {}).setdefault(group, {})[method] = extra
    return out


def _new_seeds(have: Sequence[int], count: int) -> list[int]:
    start = max(have, default=-1) + 1
    return list(range(start, start + max(0, count)))


def next_overlay(spec: ClaimsSpec, results: Sequence[ClaimResult]) -> str:
    """``claims_next.yaml``: name it with ``--config seeds_from=FILE`` to train the seeds the open claims need (read as
    data by :mod:`introspect.config.seeds_overlay`: it can add seeds and nothing else)."""
    extra = extra_seeds(spec, results)
    order = by_value(spec, results)
    unit = "GPU-hours" if spec.cell_gpu_hours else "seeds (unpriced)"
    lines = [f"#   {i}. {r.name}: {n} seeds, adds {cost:.2f} {unit}" for i, (r, n, cost) in enumerate(order, 1)]
    beyond = [r.name for r in results if r.verdict in OPEN and r.seeds_needed is not None
              and r.seeds_needed > spec.settings.max_seeds]
    header = ("# Generated by `introspect claims`: the seeds the open claims need for 80% power at their corrected\n"
              f"# level (claims.csv, seeds_needed) where at most {spec.settings.max_seeds} per cell suffice. Name\n"
              "# it with: snakemake --configfile <config> --config seeds_from=<this file> (read as data: it can\n"
              "# only add seeds; never give it to --configfile). Only the added seeds train.\n"
              "# Claims by value (claims resolved per GPU-hour; each adds what the ones above have not planned):\n"
              + ("\n".join(lines) or "#   none") + "\n")
    if beyond:
        header += (f"# Not planned (more than {spec.settings.max_seeds} seeds per cell): "
                   + ", ".join(beyond) + "\n")
    return header + yaml.safe_dump({"extra_seeds": extra}, allow_unicode=True, sort_keys=False)
