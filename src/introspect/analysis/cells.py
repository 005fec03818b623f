"""The numbers of a view's cells (one method on one model group, a run per seed), read from finished
runs, with the sanity flags that travel with them into tables and claims."""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..run_loading import FinishedRun, read_run
from ..runs import ResultsLayout, RunFileError
from ..specs import Cell
from .sanity import Flag, SanityCell, Thresholds, cell_marks, sanity_flags


class MissingRunsError(RunFileError):
    """Runs a table, claim, figure or analysis needs have not finished."""


@dataclass
class CellResult:
    group: str
    method: str
    model: str
    paper_dataset: str | None
    values: dict[int, float]  # seed -> the value the view shows (accuracy or error, %), of the headline metric
    run_ids: list[str]
    expected_seeds: list[int] = field(default_factory=list)
    accuracy: dict[int, float] = field(default_factory=dict)  # seed -> test accuracy (%), for the sanity flags
    optimistic: dict[int, float] = field(default_factory=dict)  # seed -> value at the best *test* epoch
    # its teachers' final test accuracies; not a peer's (BAN's peer has the student's architecture and is
    # a CE run by design, so "no better than CE" is what it is, not a fault)
    teacher_accuracy: list[float] = field(default_factory=list)
    n_test: int | None = None
    missing: list[str] = field(default_factory=list)
    paper_mean: float = float("nan")
    paper_std: float = float("nan")
    best: bool = False
    mark: str = ""  # significance mark
    flags: str = ""  # sanity-flag mark, e.g. "⚑low_n"
    flag_texts: list[str] = field(default_factory=list)  # "[code] why" per flag

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values()) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values.values()) if self.n > 1 else math.nan

    @property
    def optimistic_mean(self) -> float:
        return statistics.fmean(self.optimistic.values()) if self.optimistic else math.nan


OPTIMISTIC_METRIC = "test_acc_max"  # max over epochs of the test accuracy: selected on test data


def collect_cells(view: str, cells: Sequence[Cell], layout: ResultsLayout,
                  value: Callable[[FinishedRun, str], float], metric: str, *, allow_missing: bool,
                  accuracy_metric: str = "test_acc_final") -> list[CellResult]:
    """Read every finished run of ``cells``: ``value(run, metric)`` is what the view shows, also
    taken of the optimistic ``test_acc_max`` (the statistic the paper most likely reports, since the
    TAKD code it follows prints the best test epoch). Unfinished runs are an error unless
    ``allow_missing`` (then the cell uses the seeds that finished and lists the others); an empty
    cell is always one."""
    results, missing = [], []
    teacher_accuracy: dict[str, float | None] = {}  # None: a peer of the student's architecture
    for cell in cells:
        result = CellResult(cell.group, cell.method, cell.model, cell.paper_dataset, {}, cell.run_ids,
                            list(cell.seeds))
        for run_id in cell.run_ids:
            if not layout.run(run_id).is_finished():
                result.missing.append(run_id)
                continue
            run = read_run(layout, run_id)
            result.values[run.seed] = value(run, metric)
            result.optimistic[run.seed] = value(run, OPTIMISTIC_METRIC)
            result.accuracy[run.seed] = run.value(accuracy_metric)
            result.n_test = run.metrics.get("n_test", result.n_test)
        for teacher in dict.fromkeys(cell.teacher_run_ids):
            if teacher not in teacher_accuracy and layout.run(teacher).is_finished():
                run = read_run(layout, teacher)
                peer = run.metrics.get("model") == cell.model
                teacher_accuracy[teacher] = None if peer else run.value(accuracy_metric)
            if teacher_accuracy.get(teacher) is not None:
                result.teacher_accuracy.append(teacher_accuracy[teacher])
        missing += result.missing
        results.append(result)
    if missing and not allow_missing:
        listed = "\n  ".join(missing)
        raise MissingRunsError(
            f"{view}: {len(missing)} run(s) have not finished:\n  {listed}\n"
            "Rerun them (snakemake reruns only what is missing), or set allow_missing_seeds: true "
            "to produce the outputs with the actual n per cell."
        )
    empty = [f"{c.group}/{c.method}" for c in results if c.n == 0]
    if empty:
        raise MissingRunsError(f"{view}: no seed at all for {', '.join(empty)}")
    return results


def reference_accuracies(references: dict[str, list[str]], layout: ResultsLayout,
                         accuracy_metric: str = "test_acc_final") -> dict[str, dict[int, float]]:
    """Group -> {seed: accuracy} of the finished CE runs that stand in for a group without a CE cell."""
    out = {}
    for group, run_ids in references.items():
        runs = [read_run(layout, r) for r in run_ids if layout.run(r).is_finished()]
        if runs:
            out[group] = {run.seed: run.value(accuracy_metric) for run in runs}
    return out


def flag_cells(cells: Sequence[CellResult], *, key: Callable[[CellResult], str] = lambda c: c.group,
               references: dict[str, dict[int, float]] | None = None, reference: str = "CE",
               thresholds: Thresholds = Thresholds()) -> list[Flag]:
    """Sanity flags of the cells (teacher not better than the group's CE, collapse, ceiling, low n,
    missing seeds); each cell's ``flags`` gets its mark. ``key`` names the group a cell is compared
    within (its CE reference); flags carry it as their model. ``references[group]`` are CE accuracies
    of a group that has no CE cell of its own (trained for another view)."""
    def teacher(c: CellResult) -> str:
        return f"of {c.method} on {key(c)}"

    sanity = [SanityCell(key(c), key(c), c.method, c.accuracy, c.expected_seeds, c.n_test,
                         teacher=teacher(c) if c.teacher_accuracy else None) for c in cells]
    groups = {c.group: key(c) for c in cells}
    sanity += [SanityCell(groups[group], groups[group], reference, values)
               for group, values in (references or {}).items() if group in groups]
    teachers = {teacher(c): c.teacher_accuracy for c in cells if c.teacher_accuracy}
    flags = sanity_flags(sanity, teachers=teachers, reference=reference, thresholds=thresholds)
    marks = cell_marks(flags)
    for cell in cells:
        cell.flags = marks.get((key(cell), cell.method), "")
        cell.flag_texts = [f"[{f.code}] {f.text}" for f in flags if (f.group, f.method) == (key(cell), cell.method)]
    return flags


def flag_notes(cells: Sequence[CellResult]) -> list[str]:
    """Notes for a view's footer: which cells carry which flag (flagged cells are shown, never dropped)."""
    by_code: dict[str, list[str]] = {}
    for cell in cells:
        for text in cell.flag_texts:
            code, why = text[1:].split("] ", 1)
            by_code.setdefault(code, []).append(f"{cell.group}/{cell.method} ({why})")
    everyone = len(cells)
    notes = []
    for code, entries in by_code.items():
        listed = f"all {everyone} cells" if len(entries) == everyone and code == "low_n" else "; ".join(entries)
        notes.append(f"Sanity flag ⚑{code}: {listed}.")
    return notes
