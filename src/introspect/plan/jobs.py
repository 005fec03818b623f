"""How the plan's runs map onto the workflow's jobs: which runs are sweep points (a rule of their own that
records a failure instead of failing) and which pack of runs shares a GPU (``cluster.runs_per_gpu``).
Kept here, not in the rules, so the workflow only maps files to jobs and these are tested as functions."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .build import Plan


def sweep_points(plan: Plan) -> set[str]:
    """Runs that only a sweep's selection reads. Their rule records a failure instead of failing, so one
    diverged point does not block its cell; a run some view or other run also reads is trained by its kind's
    rule, and its failure fails as any run's does."""
    used = {d for run in plan.runs.values() for d in run.depends_on}
    for table in plan.tables.values():
        used.update(table.run_ids(), table.teacher_run_ids(), table.reference_run_ids())
    for view in [*plan.figures.values(), *plan.analyses.values()]:
        used.update(view.run_ids())
    return {r for selection in plan.selections.values() for r in selection.run_ids()} - used


def packs(plan: Plan, runs_per_gpu: int) -> dict[str, str]:
    """Run id -> its pack (``pack_<kind>[_selected]_<i>``) when ``runs_per_gpu`` > 1, else no packs. A run's pack
    is fixed by its place among the plan's runs of its kind, so a cluster job's own Snakemake (which plans
    again) finds the same groups; runs that read a sweep's selection never share a pack with the sweep's
    runs (the group would wait on itself through the selection job)."""
    if runs_per_gpu <= 1:
        return {}
    subsets: dict[str, list[str]] = {}
    for run_id in sorted(plan.runs):
        run = plan.runs[run_id]
        subsets.setdefault(f"{run.kind}{'_selected' if run.selection else ''}", []).append(run_id)
    return {r: f"pack_{subset}_{i // runs_per_gpu}" for subset, ids in subsets.items() for i, r in enumerate(ids)}
