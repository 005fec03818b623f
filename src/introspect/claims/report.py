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
from ..io import atomic_write_text
from ..plan.views import ClaimSpec, ClaimsSpec
from .engine import RESOLVED, Claim, ClaimResult, evaluate_claims
from .render import write_claims


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
    claims = [_claim(c, reported, spec.seed_gpu_hours.get(c.name)) for c in spec.claims]
    attached = {c.name: flags_of(flags, c.model, c.method_a, c.method_b) for c in claims}
    settings, check = spec.settings, spec.settings.compare_magnitudes
    options = {"alpha": settings.alpha, "power": settings.power, "smallest_effect": settings.smallest_effect_pp,
               "check_paper_magnitude": check}
    results = evaluate_claims(claims, {key: cell.values for key, cell in cells.items()}, flags=attached, **options)
    optimistic = evaluate_claims(claims, {key: cell.optimistic for key, cell in cells.items()}, **options)
    results = [replace(r, optimistic_effect=o.effect, optimistic_ci_low=o.ci_low, optimistic_ci_high=o.ci_high,
                       optimistic_verdict=o.verdict) for r, o in zip(results, optimistic)]
    write_claims(results, layout.claims("md").with_suffix(""), "The paper's claims on this result set")
    atomic_write_text(layout.claims_next, next_overlay(spec, results))
    return results


def _claim(spec: ClaimSpec, reported: list[Reported], seed_gpu_hours: float | None) -> Claim:
    """An engine claim for a config claim; its "model" is the view and group, so values never mix views.
    The paper's effect is in accuracy points (an error table's difference is negated)."""
    means = [paper_value(reported, spec.paper_table, spec.metric_kind, spec.model, method, spec.paper_dataset)[0]
             for method in (spec.method_a, spec.method_b)]
    effect = means[0] - means[1]
    if spec.metric_kind == "error":
        effect = -effect
    return Claim(spec.name, spec.method_a, spec.method_b, f"{spec.view} · {spec.group}",
                 spec.paper_dataset or spec.dataset, spec.direction, None if math.isnan(effect) else effect,
                 spec.margin, spec.family, spec.text, seed_gpu_hours)


def extra_seeds(spec: ClaimsSpec, results: Sequence[ClaimResult]) -> dict[str, dict[str, dict[str, list[int]]]]:
    """view -> group -> method -> the seeds beyond the config's own that the open claims on that cell need
    (the seeds it already has beyond them, and new ones up to ``max_seeds`` in all)."""
    wanted: dict[tuple[str, str, str], int] = {}
    by_name = {c.name: c for c in spec.claims}
    for r in results:
        if r.verdict in RESOLVED or r.seeds_needed is None:
            continue
        claim = by_name[r.name]
        n = min(r.seeds_needed, spec.settings.max_seeds)
        for method in (claim.method_a, claim.method_b):
            key = (claim.view, claim.group, method)
            wanted[key] = max(wanted.get(key, 0), n)
    out: dict[str, dict[str, dict[str, list[int]]]] = {}
    for view, cells in spec.cells.items():
        for cell in cells:
            have = list(cell.seeds)
            n = wanted.get((view, cell.group, cell.method), 0)
            seeds = have + _new_seeds(have, n - len(have))
            base = set(spec.settings.seeds) if spec.settings.seeds else set(have)
            extra = [s for s in seeds if s not in base]
            if extra:
                out.setdefault(view, {}).setdefault(cell.group, {})[cell.method] = extra
    return out


def _new_seeds(have: Sequence[int], count: int) -> list[int]:
    start = max(have, default=-1) + 1
    return list(range(start, start + max(0, count)))


def next_overlay(spec: ClaimsSpec, results: Sequence[ClaimResult]) -> str:
    """``claims_next.yaml``: pass it as a second ``--configfile`` to train the seeds the open claims need."""
    extra = extra_seeds(spec, results)
    header = ("# Generated by `introspect claims`: the seeds the open claims need for 80% power at their corrected\n"
              f"# level (claims.csv, seeds_needed), at most {spec.settings.max_seeds} per cell. Use it as a second\n"
              "# config file: snakemake --configfile <config> <this file>. Only the added seeds train.\n")
    return header + yaml.safe_dump({"extra_seeds": extra}, allow_unicode=True, sort_keys=True)
