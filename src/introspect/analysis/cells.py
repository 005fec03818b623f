"""The numbers of a view's cells (one method on one model group, a run per seed), read from finished
runs, with the sanity flags that travel with them into tables and claims."""
from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..io import FileMissing, FileRefused, read_text
from ..plan.views import Cell
from ..runs.loading import FinishedRun, read_run
from ..runs.metrics import redo
from ..runs.record import ResultsLayout, RunFileError
from .sanity import DEFAULT_BASELINE, Flag, SanityCell, TeacherAccuracy, Thresholds, cell_marks, sanity_flags


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
    own_teacher_accuracy: list[float] = field(default_factory=list)  # its teachers' teachers (TAKD's assistants)
    # its teachers of its own architecture (BAN's peers), for worse_than_own_teacher
    peer_accuracy: list[float] = field(default_factory=list)
    n_test: int | None = None
    n_classes: int | None = None
    dead_share: dict[int, float] = field(default_factory=dict)  # seed -> mean share of all-zero explanation maps
    train_acc: dict[int, float] = field(default_factory=dict)  # seed -> final train accuracy (%)
    last_epoch_change: dict[int, float] = field(default_factory=dict)  # seed -> last minus previous test acc (pp)
    missing: list[str] = field(default_factory=list)
    paper_mean: float = float("nan")
    paper_std: float = float("nan")
    best: bool = False
    mark: str = ""  # significance mark
    flags: str = ""  # sanity-flag mark, e.g. "⚑low_n"
    flag_list: list[Flag] = field(default_factory=list)  # the cell's flags, objects until rendered

    @property
    def flag_texts(self) -> list[str]:
        """The cell's flags rendered as "[code] why", for a CSV column."""
        return [f"[{f.code}] {f.text}" for f in self.flag_list]

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
                  accuracy_metric: str = "test_acc_final", teacher_of: Mapping[str, str] | None = None
                  ) -> list[CellResult]:
    """Read every finished run of ``cells``: ``value(run, metric)`` is what the view shows, also
    taken of the optimistic ``test_acc_max`` (the statistic the paper most likely reports, since the
    TAKD code it follows prints the best test epoch). ``teacher_of[run]`` is the run a teacher run itself
    learned from (TAKD's assistants), for the teacher-worse-than-student flag. Unfinished runs are an
    error unless ``allow_missing`` (then the cell uses the seeds that finished and lists the others); an
    empty cell is always one."""
    results, missing = [], []
    accuracy = _TeacherAccuracy(layout, accuracy_metric)
    for cell in cells:
        result = CellResult(cell.group, cell.method, cell.model, cell.paper_dataset, {}, cell.run_ids,
                            list(cell.seeds))
        for run_id in cell.run_ids:
            if not layout.run(run_id).is_finished():
                result.missing.append(run_id)
                continue
            _read_into(result, read_run(layout, run_id), value, metric, accuracy_metric)
        for teacher in dict.fromkeys(cell.teacher_run_ids):
            if accuracy(teacher, cell.model) is None and accuracy(teacher, None) is not None:
                result.peer_accuracy.append(accuracy(teacher, None))
            if accuracy(teacher, cell.model) is not None:
                result.teacher_accuracy.append(accuracy(teacher, cell.model))
                own = (teacher_of or {}).get(teacher)
                if own and accuracy(own, None) is not None:
                    result.own_teacher_accuracy.append(accuracy(own, None))
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


def _read_into(result: CellResult, run: FinishedRun, value: Callable[[FinishedRun, str], float], metric: str,
               accuracy_metric: str) -> None:
    result.values[run.seed] = value(run, metric)
    result.optimistic[run.seed] = value(run, OPTIMISTIC_METRIC)
    result.accuracy[run.seed] = run.value(accuracy_metric)
    result.n_test = run.metrics.get("n_test", result.n_test)
    result.n_classes = run.metrics.get("n_classes", result.n_classes)
    rows = epoch_rows(run)
    share = dead_explanation_share(rows)
    if share is not None:
        result.dead_share[run.seed] = share
    train = run.metrics.get("train_acc_final")
    train = train if isinstance(train, (int, float)) else _column(rows, "train_acc")[-1:]
    if isinstance(train, list):
        train = train[0] if train else None
    if train is not None:
        result.train_acc[run.seed] = float(train)
    test = _column(rows, "test_acc")
    if len(test) >= 2:
        result.last_epoch_change[run.seed] = test[-1] - test[-2]


def epoch_rows(run: FinishedRun) -> list[dict[str, str]]:
    """The rows of a run's ``epochs.csv`` (none when it cannot be read: the flags that need it stay silent)."""
    try:
        text = read_text(run.files.epochs, "epochs")
    except FileMissing:
        return []
    except FileRefused as error:  # a link, a FIFO, a huge file: refused, not silently skipped
        raise RunFileError(f"{error}; {redo(run.files.epochs)}") from None
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error:
        return []
    shares = [row.get("dead_explanations") for row in rows]
    if any(_out_of_share_range(s) for s in shares):  # NaN, -50 or 1e300 is a tampered file
        raise RunFileError(f"{run.files.epochs}: a dead_explanations share outside [0, 1]; {redo(run.files.epochs)}")
    return rows


def _out_of_share_range(text: str | None) -> bool:
    try:
        value = float((text or "").strip())
    except ValueError:
        return False
    return not 0.0 <= value <= 1.0


def _column(rows: list[dict[str, str]], name: str) -> list[float]:
    """A numeric column of epochs.csv rows, in epoch order, empty and unreadable entries left out."""
    out = []
    for row in rows:
        try:
            value = float((row.get(name) or "").strip())
        except ValueError:
            continue
        if math.isfinite(value):
            out.append(value)
    return out


def dead_explanation_share(rows: list[dict[str, str]]) -> float | None:
    """Mean over a run's epochs of its share of all-zero explanation maps (``epochs.csv`` column
    ``dead_explanations``); None for runs that record none (no explanations, or written before the column)."""
    shares = _column(rows, "dead_explanations")
    return statistics.fmean(shares) if shares else None


class _TeacherAccuracy:
    """Final test accuracies of teacher runs, read once; None for an unfinished run or a peer of the
    student's own architecture (BAN's peer is a CE run by design: "no better than CE" is what it is)."""

    def __init__(self, layout: ResultsLayout, metric: str):
        self.layout, self.metric, self.cache = layout, metric, {}

    def __call__(self, run_id: str, student_model: str | None) -> float | None:
        if run_id not in self.cache:
            finished = self.layout.run(run_id).is_finished()
            run = read_run(self.layout, run_id) if finished else None
            self.cache[run_id] = (run.metrics.get("model"), run.value(self.metric)) if run else (None, None)
        model, accuracy = self.cache[run_id]
        return None if student_model is not None and model == student_model else accuracy


def reference_accuracies(references: dict[str, list[str]], layout: ResultsLayout,
                         accuracy_metric: str = "test_acc_final") -> dict[str, dict[int, float]]:
    """Group -> {seed: accuracy} of the finished CE runs that stand in for a group without a CE cell."""
    out = {}
    for group, run_ids in references.items():
        runs = [read_run(layout, r) for r in run_ids if layout.run(r).is_finished()]
        if runs:
            out[group] = {run.seed: run.value(accuracy_metric) for run in runs}
    return out


def baseline_of(view: object) -> str:
    """The method label a view's sanity flags compare with: its spec's ``baseline`` field (the config key
    ``baseline:``), the paper's CE where a spec has none. The one place this default is applied."""
    return getattr(view, "baseline", None) or DEFAULT_BASELINE


def flag_cells(cells: Sequence[CellResult], *, key: Callable[[CellResult], str] = lambda c: c.group,
               references: dict[str, dict[int, float]] | None = None, baseline: str = DEFAULT_BASELINE,
               thresholds: Thresholds = Thresholds()) -> list[Flag]:
    """Sanity flags of the cells (see :mod:`.sanity`); each cell's ``flags`` gets its mark and its
    ``flag_list`` the flags that touch it. ``key`` names the group a cell is compared within (its baseline);
    flags carry it as their model. ``references[group]`` are baseline accuracies of a group that has no
    baseline cell of its own (trained for another view)."""
    def teacher(c: CellResult) -> str:
        return f"of {c.method} on {key(c)}"

    sanity = [SanityCell(key(c), key(c), c.method, c.accuracy, c.expected_seeds, c.n_test,
                         teacher=teacher(c) if c.teacher_accuracy else None, n_classes=c.n_classes,
                         dead_share=c.dead_share, own_teacher=c.peer_accuracy, train_acc=c.train_acc,
                         last_epoch_change=c.last_epoch_change) for c in cells]
    groups = {c.group: key(c) for c in cells}
    sanity += [SanityCell(groups[group], groups[group], baseline, values)
               for group, values in (references or {}).items() if group in groups]
    teachers = {teacher(c): TeacherAccuracy(c.teacher_accuracy, c.own_teacher_accuracy)
                for c in cells if c.teacher_accuracy}
    flags = sanity_flags(sanity, teachers=teachers, baseline=baseline, thresholds=thresholds)
    marks = cell_marks(flags)
    for cell in cells:
        cell.flags = marks.get((key(cell), cell.method), "")
        cell.flag_list = [f for f in flags if f.group == key(cell) and cell.method in (f.method, f.other)]
    return flags


def flag_notes(cells: Sequence[CellResult]) -> list[str]:
    """Notes for a view's footer: which cells carry which flag (flagged cells are shown, never dropped)."""
    by_code: dict[str, list[str]] = {}
    for flag in dict.fromkeys(f for cell in cells for f in cell.flag_list):
        cell = f"{flag.group}/{flag.method}" + (f" vs {flag.other}" if flag.other else "")
        by_code.setdefault(flag.code, []).append(f"{cell} ({flag.text})")
    everyone = len(cells)
    notes = []
    for code, entries in by_code.items():
        listed = f"all {everyone} cells" if len(entries) == everyone and code == "low_n" else "; ".join(entries)
        notes.append(f"Sanity flag ⚑{code}: {listed}.")
    return notes
