"""The plan's own outputs: every run directory, run input and selection file the workflow writes or reads lies
inside ``results_dir`` (lexically, and resolved with symlinks followed) and no path part is longer than a file
system accepts. The planner refuses a plan that fails any of these. (The views' files are known from the config
alone: the config's one pass checks them, :func:`introspect.config.model_checks.view_output_problems`.)"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..runs.paths import MAX_PART_BYTES, ensure_inside
from ..runs.record import ResultsLayout

__all__ = ["ensure_inside", "output_problems", "planned_outputs"]


class Plan(Protocol):
    """What these checks read of an :class:`introspect.plan.build.Plan` (typed here, not imported: the
    planner imports this module)."""

    config: Any
    runs: dict[str, Any]
    selections: dict[str, Any]
    tables: dict[str, Any]
    figures: dict[str, Any]
    analyses: dict[str, Any]
    claims: Any

    @property
    def layout(self) -> ResultsLayout: ...

def output_problems(plan: Plan) -> list[str]:
    """Planned run directories and selection files outside results_dir (the views' files are the config's
    one pass's: :func:`introspect.config.model_checks.view_output_problems`)."""
    results_dir, problems = plan.config.results_dir, []
    for owner, path in planned_outputs(plan):
        try:
            ensure_inside(results_dir, path)
        except ValueError as error:
            problems.append(f"{owner}: {error}")
        if any(len(part.encode()) > MAX_PART_BYTES for part in Path(path).parts):
            problems.append(f"{owner}: a part of {path} is longer than 255 bytes (no file system accepts it)")
    return list(dict.fromkeys(problems + _resolved_path_problems(plan)))


def _resolved_path_problems(plan: Plan) -> list[str]:
    """Every run and selection path, resolved (symlinks followed), inside results_dir."""
    layout, problems = plan.layout, []
    for run_id, run in plan.runs.items():
        try:
            run.check_paths()
        except InputError as error:
            problems.append(f"run {run_id}: {error}")
    for selection_id in plan.selections:
        try:
            layout.inside(layout.selection(selection_id), "selection")
        except InputError as error:
            problems.append(f"selection {selection_id}: {error}")
    return problems


def planned_outputs(plan: Plan) -> list[tuple[str, Path]]:
    """(owner, path) of every run directory, run input and selection file the workflow writes or reads, from
    the run layer."""
    layout = plan.layout
    outputs: list[tuple[str, Path]] = []
    for run_id, run in plan.runs.items():
        outputs.append((f"run {run_id}", run.files.directory))
        outputs += [(f"run {run_id}: input", path) for path in run.input_files()]
    outputs += [(f"selection {s.selection_id}", layout.selection(s.selection_id)) for s in plan.selections.values()]
    return outputs
