"""The plan's own outputs: every file or run directory the workflow writes or reads lies inside
``results_dir`` (lexically, and resolved with symlinks followed), no path part is longer than a file
system accepts, and no two views write one file. The planner refuses a plan that fails any of these."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..runs.record import ResultsLayout


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
    """Planned outputs outside results_dir, and files two entries would both write."""
    results_dir, problems, writers = plan.config.results_dir, [], {}
    for owner, path in planned_outputs(plan):
        try:
            ensure_inside(results_dir, path)
        except ValueError as error:
            problems.append(f"{owner}: {error}")
        if any(len(part.encode()) > 255 for part in Path(path).parts):
            problems.append(f"{owner}: a part of {path} is longer than 255 bytes (no file system accepts it)")
        if owner.split(".")[0] in ("tables", "figures", "analyses"):
            other = writers.setdefault(os.path.normpath(path), owner)
            if other != owner:
                problems.append(f"{owner}: writes {path}, as {other} does; rename one of them")
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
    """(owner, path) of every file or run directory the workflow writes or reads, from the run layer."""
    layout = plan.layout
    outputs: list[tuple[str, Path]] = []
    for run_id, run in plan.runs.items():
        outputs.append((f"run {run_id}", run.files.directory))
        outputs += [(f"run {run_id}: input", path) for path in run.input_files()]
    outputs += [(f"selection {s.selection_id}", layout.selection(s.selection_id)) for s in plan.selections.values()]
    for name in plan.tables:
        outputs += [(f"tables.{name}", path) for path in layout.table_files(name)]
    for name in plan.figures:
        outputs += [(f"figures.{name}", path) for path in layout.figure_files(name)]
    for name in plan.analyses:
        outputs += [(f"analyses.{name}", path) for path in layout.analysis_files(name)]
    if plan.claims:
        outputs += [("claims", path) for path in layout.claims_files()]
    return outputs


def ensure_inside(results_dir: str | Path, path: str | Path) -> None:
    """Raise ValueError unless ``path`` lies inside ``results_dir`` (lexically: after resolving
    '.' and '..' against the working directory, without following symlinks the user made)."""
    root = os.path.abspath(results_dir)
    target = os.path.abspath(path)
    if target == root or os.path.commonpath([root, target]) != root:
        raise ValueError(f"{path} is not inside results_dir {results_dir}")


