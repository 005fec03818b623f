"""Sanity flags on a result set: conditions under which a cell's mean ± std (or a claim built on it) should not
be read at face value. A flagged cell is marked wherever it is shown; nothing here drops or averages it away.

Flags are :class:`Flag` objects from here to the renderer: each names its rule (``Flag.code``, explained in
:data:`RULES`), the cell it is attached to, and for a pair rule the other cell. Which claims a flag touches
is decided by :func:`claims_touched`. The rules (thresholds in :class:`Thresholds`):

- ``teacher_not_better``  the cell learned from a teacher whose mean test accuracy is not more than
  ``teacher_margin_pp`` above the group's baseline (its ``baseline`` method, CE in the paper).
- ``teacher_worse_than_student``  the cell's teacher (or its teacher's own teacher: TAKD's assistants) has a
  lower mean accuracy than a model distilled from it: what the student learned is not the teacher's knowledge.
- ``collapsed``  the cell's mean, or any one seed, lies more than ``collapse_drop_pp`` below the group's
  baseline level (the median of its seeds, so one collapsed baseline seed does not move the reference), or
  within ``chance_margin_pp`` of chance (100 / n_classes %; on whenever the class count is known).
- ``outlier_seed``  a seed more than ``outlier_drop_pp`` below the median of its cell's other seeds and more
  than ``outlier_spread`` of their standard deviations: a failed run that the collapse rule's wide margin lets
  through still moves the cell's mean and spread.
- ``ceiling``  the mean error is fewer than ``ceiling_error_images`` test images, or every seed is within one
  test image of 100%.
- ``resolution``  two cells of a group whose paired (same-seed) differences are all within one test image: a
  comparison of them counts a few images, below what the test set resolves.
- ``dead_explanations``  an LE run whose share of all-zero explanation maps (``epochs.csv`` column
  ``dead_explanations``, mean over its epochs) exceeds ``dead_share``: it learned from no explanation.
- ``below_baseline``  a student (a cell that learned from a teacher) whose mean lies more than
  ``below_baseline_pp`` below the group's baseline level: distillation that hurts is not the method the paper
  describes (a deeper drop is ``collapsed``).
- ``worse_than_own_teacher``  a cell more than ``below_baseline_pp`` below the mean of its own teacher of the
  same architecture (BAN's peer): a born-again student is meant to pass its teacher.
- ``undertrained``  a seed whose final train accuracy is below ``min_train_acc`` or whose test accuracy rose
  more than ``last_epoch_change_pp`` in its last epoch: the budget stopped it while it was still learning.
- ``final_epoch_drop``  a seed whose test accuracy fell more than ``last_epoch_change_pp`` in its last epoch:
  the headline (final-epoch) number is a collapse, not the run's level.
- ``low_n``  fewer than ``min_seeds`` seeds (the paper reports 5).
- ``missing_seeds``  seeds that were planned (``expected_seeds``) but have no result.

All accuracies are in percent; error-metric tables are converted to accuracy (100 − error) before this.
"""
from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RULES = {
    "teacher_not_better": "a teacher no better than the group's baseline leaves distillation no headroom",
    "teacher_worse_than_student": "a teacher or assistant worse than a model distilled from it",
    "collapsed": "a seed or the mean far below the baseline, or near chance",
    "outlier_seed": "one seed far below its cell's other seeds",
    "ceiling": "accuracy at the test set's resolution",
    "resolution": "paired differences all within one test image",
    "dead_explanations": "an LE run learned from all-zero explanation maps",
    "below_baseline": "a student below the group's baseline",
    "worse_than_own_teacher": "a model below its own teacher of the same size",
    "undertrained": "training ended while the model was still learning",
    "final_epoch_drop": "test accuracy collapsed in the last epoch",
    "low_n": "fewer seeds than the paper's",
    "missing_seeds": "planned seeds without a result",
}
DEFAULT_BASELINE = "CE"  # until every view names its baseline (TableSpec.baseline), the paper's


@dataclass(frozen=True)
class Thresholds:
    collapse_drop_pp: float = 10.0  # below the group's baseline level by more than this: collapsed
    chance_margin_pp: float = 5.0  # within this of chance accuracy: collapsed
    outlier_drop_pp: float = 3.0  # a seed this far below the median of its cell's other seeds ...
    outlier_spread: float = 4.0  # ... and this many of their standard deviations: an outlier
    ceiling_error_images: float = 3.0  # mean error below this many test images: at the ceiling
    teacher_margin_pp: float = 0.0  # a teacher must beat the group's baseline by more than this
    dead_share: float = 0.05  # share of all-zero explanation maps above which an LE run is flagged
    below_baseline_pp: float = 0.5  # a student this far below the baseline, or a model below its same-size teacher
    min_train_acc: float = 98.0  # final train accuracy (%) below which a run ended undertrained
    last_epoch_change_pp: float = 5.0  # a last-epoch rise (undertrained) or fall (final_epoch_drop) beyond this
    min_seeds: int = 5  # the paper's n


@dataclass(frozen=True)
class SanityCell:
    group: str  # the table row the cell belongs to, e.g. "ResNet14"
    model: str
    method: str
    values: Mapping[int, float]  # seed -> test accuracy (%)
    expected_seeds: Sequence[int] = ()
    n_test: int | None = None  # test-set size, from the runs' metrics
    teacher: str | None = None  # label of the teacher the cell learned from, a key of ``teachers``
    n_classes: int | None = None  # from the runs' metrics; enables the near-chance check
    dead_share: Mapping[int, float] = field(default_factory=dict)  # seed -> mean share of all-zero maps
    own_teacher: Sequence[float] = ()  # accuracies of its teacher of the same architecture (BAN's peer)
    train_acc: Mapping[int, float] = field(default_factory=dict)  # seed -> final train accuracy (%)
    last_epoch_change: Mapping[int, float] = field(default_factory=dict)  # seed -> last minus previous test acc


@dataclass(frozen=True)
class Flag:
    code: str  # the rule, a key of RULES
    text: str  # what was found, with the numbers
    group: str
    model: str
    method: str
    other: str | None = None  # the second cell of a pair rule (resolution)

    @property
    def rule(self) -> str:
        return RULES[self.code]

    def touches(self, model: str, method_a: str, method_b: str) -> bool:
        """Whether a comparison of ``method_a`` with ``method_b`` on ``model`` rests on the flagged cell(s)."""
        if self.model != model:
            return False
        if self.other is not None:
            return {self.method, self.other} == {method_a, method_b}
        return self.method in (method_a, method_b)


@dataclass(frozen=True)
class TeacherAccuracy:
    """A teacher's final test accuracies, and those of the teacher it learned from (TAKD's assistants)."""

    accuracies: Sequence[float]
    own_teacher: Sequence[float] = ()


@dataclass
class _Group:
    level: float | None = None
    cells: list[SanityCell] = field(default_factory=list)


def sanity_flags(cells: Sequence[SanityCell], *,
                 teachers: Mapping[str, TeacherAccuracy | Sequence[float]] | None = None,
                 baseline: str = DEFAULT_BASELINE, n_classes: int | None = None,
                 thresholds: Thresholds = Thresholds()) -> list[Flag]:
    """Every flag of every cell, in cell order, then the pair flags. ``teachers[label]`` describes the
    teacher a cell learned from; a cell whose teacher has no entry, or whose group has no ``baseline`` cell
    with results, is not checked against it. ``n_classes`` applies to cells that do not carry their own."""
    groups: dict[str, _Group] = {}
    for cell in cells:
        groups.setdefault(cell.group, _Group()).cells.append(cell)
    for group in groups.values():
        base = next((c for c in group.cells if c.method == baseline and c.values), None)
        group.level = statistics.median(base.values.values()) if base else None
    known = {k: v if isinstance(v, TeacherAccuracy) else TeacherAccuracy(v) for k, v in (teachers or {}).items()}
    flags: list[Flag] = []
    for cell in cells:
        level = groups[cell.group].level
        texts = [
            *_teacher(cell, level, known, baseline, thresholds),
            *_teacher_worse(cell, known),
            *_collapsed(cell, level, baseline, cell.n_classes or n_classes, thresholds),
            *_below_baseline(cell, level, baseline, thresholds),
            *_worse_than_own_teacher(cell, thresholds),
            *_training_end(cell, thresholds),
            *_outlier(cell, thresholds),
            *_ceiling(cell, thresholds),
            *_dead(cell, thresholds),
            *_low_n(cell, thresholds),
            *_missing(cell),
        ]
        flags += [Flag(code, text, cell.group, cell.model, cell.method) for code, text in texts]
    for group in groups.values():
        flags += _resolution(group.cells)
    return flags


def _seeds(seeds: Sequence[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _teacher(cell: SanityCell, level: float | None, teachers: Mapping[str, TeacherAccuracy], baseline: str,
             t: Thresholds) -> list[tuple[str, str]]:
    teacher = teachers.get(cell.teacher) if cell.teacher else None
    if not teacher or not teacher.accuracies or level is None:
        return []
    mean = statistics.fmean(teacher.accuracies)
    if mean - level > t.teacher_margin_pp:
        return []
    return [("teacher_not_better", f"teacher {cell.teacher} ({mean:.2f}%) is not better than {baseline} on "
                                   f"{cell.group} ({level:.2f}%)")]


def _teacher_worse(cell: SanityCell, teachers: Mapping[str, TeacherAccuracy]) -> list[tuple[str, str]]:
    teacher = teachers.get(cell.teacher) if cell.teacher else None
    if not teacher or not teacher.accuracies or not cell.values:
        return []
    mean, student = statistics.fmean(teacher.accuracies), statistics.fmean(cell.values.values())
    found = []
    if mean < student:
        found.append(f"teacher {cell.teacher} ({mean:.2f}%) is below its student {cell.method} ({student:.2f}%)")
    if teacher.own_teacher and statistics.fmean(teacher.own_teacher) < mean:
        found.append(f"teacher {cell.teacher} ({mean:.2f}%) was distilled from a teacher of its own that is worse "
                     f"({statistics.fmean(teacher.own_teacher):.2f}%)")
    return [("teacher_worse_than_student", "; ".join(found))] if found else []


def _collapsed(cell: SanityCell, level: float | None, baseline: str, n_classes: int | None,
               t: Thresholds) -> list[tuple[str, str]]:
    if not cell.values:
        return []
    mean, reasons = statistics.fmean(cell.values.values()), []
    if level is not None and cell.method != baseline:
        floor = level - t.collapse_drop_pp
        low = [s for s, v in sorted(cell.values.items()) if v < floor]
        if mean < floor:
            reasons.append(f"mean {mean:.2f}% is more than {t.collapse_drop_pp:g} pp below {baseline} ({level:.2f}%)")
        elif low:
            reasons.append(f"{_seeds(low)} more than {t.collapse_drop_pp:g} pp below {baseline} ({level:.2f}%)")
    if n_classes:
        chance = 100.0 / n_classes
        near = [s for s, v in sorted(cell.values.items()) if v < chance + t.chance_margin_pp]
        if near:
            reasons.append(f"{_seeds(near)} within {t.chance_margin_pp:g} pp of chance ({chance:.1f}%)")
    return [("collapsed", "; ".join(reasons))] if reasons else []


def _below_baseline(cell: SanityCell, level: float | None, baseline: str, t: Thresholds) -> list[tuple[str, str]]:
    if level is None or not cell.values or cell.method == baseline or not (cell.teacher or cell.own_teacher):
        return []
    mean = statistics.fmean(cell.values.values())
    if not level - t.collapse_drop_pp <= mean < level - t.below_baseline_pp:  # deeper: collapsed says it
        return []
    return [("below_baseline", f"student {cell.method} ({mean:.2f}%) is {level - mean:.2f} pp below {baseline} "
                               f"on {cell.group} ({level:.2f}%)")]


def _worse_than_own_teacher(cell: SanityCell, t: Thresholds) -> list[tuple[str, str]]:
    if not cell.own_teacher or not cell.values:
        return []
    teacher, mean = statistics.fmean(cell.own_teacher), statistics.fmean(cell.values.values())
    if mean >= teacher - t.below_baseline_pp:
        return []
    return [("worse_than_own_teacher", f"{cell.method} ({mean:.2f}%) is {teacher - mean:.2f} pp below its own "
                                       f"teacher of the same architecture ({teacher:.2f}%)")]


def _training_end(cell: SanityCell, t: Thresholds) -> list[tuple[str, str]]:
    low = {s: v for s, v in sorted(cell.train_acc.items()) if v < t.min_train_acc}
    rising = {s: v for s, v in sorted(cell.last_epoch_change.items()) if v > t.last_epoch_change_pp}
    falling = {s: v for s, v in sorted(cell.last_epoch_change.items()) if v < -t.last_epoch_change_pp}
    found = []
    if low or rising:
        parts = []
        if low:
            parts.append(f"final train accuracy below {t.min_train_acc:g}% ("
                         + ", ".join(f"seed {s}: {v:.1f}%" for s, v in low.items()) + ")")
        if rising:
            parts.append(f"test accuracy still rising by more than {t.last_epoch_change_pp:g} pp in the last epoch ("
                         + ", ".join(f"seed {s}: {v:+.1f} pp" for s, v in rising.items()) + ")")
        found.append(("undertrained", "; ".join(parts)))
    if falling:
        found.append(("final_epoch_drop", f"test accuracy fell more than {t.last_epoch_change_pp:g} pp in the last "
                                          "epoch (" + ", ".join(f"seed {s}: {v:+.1f} pp" for s, v in falling.items())
                      + ")"))
    return found


def _outlier(cell: SanityCell, t: Thresholds) -> list[tuple[str, str]]:
    if len(cell.values) < 3:  # two others at least, to have a spread
        return []
    found = []
    for seed, value in sorted(cell.values.items()):
        others = [v for s, v in cell.values.items() if s != seed]
        drop = statistics.median(others) - value
        if drop > t.outlier_drop_pp and drop > t.outlier_spread * statistics.stdev(others):
            found.append(f"seed {seed} ({value:.2f}%) is {drop:.2f} pp below the median of the other seeds "
                         f"({statistics.median(others):.2f}%)")
    return [("outlier_seed", "; ".join(found))] if found else []


def _ceiling(cell: SanityCell, t: Thresholds) -> list[tuple[str, str]]:
    if not cell.values or not cell.n_test:
        return []
    image = 100.0 / cell.n_test  # accuracy points per test image
    errors = (100.0 - statistics.fmean(cell.values.values())) / image
    if errors < t.ceiling_error_images:
        return [("ceiling", f"mean error {errors:.1f} of {cell.n_test} test images: at the test set's resolution")]
    if all(100.0 - v <= image + 1e-9 for v in cell.values.values()):
        return [("ceiling", f"every seed within one test image of 100% (n_test = {cell.n_test})")]
    return []


def _resolution(cells: Sequence[SanityCell]) -> list[Flag]:
    flags = []
    for a, b in itertools.combinations(cells, 2):
        n_test = a.n_test or b.n_test
        seeds = sorted(set(a.values) & set(b.values))
        if not n_test or len(seeds) < 2:
            continue
        image = 100.0 / n_test
        if all(abs(a.values[s] - b.values[s]) <= image + 1e-9 for s in seeds):
            flags.append(Flag("resolution", f"{a.method} and {b.method} differ by at most one of {n_test} test "
                                            f"images on each of {len(seeds)} seeds: at the test set's resolution",
                              a.group, a.model, a.method, b.method))
    return flags


def _dead(cell: SanityCell, t: Thresholds) -> list[tuple[str, str]]:
    dead = {s: v for s, v in sorted(cell.dead_share.items()) if v > t.dead_share}
    if not dead:
        return []
    shares = ", ".join(f"{s}: {100 * v:.1f}%" for s, v in dead.items())
    return [("dead_explanations", f"all-zero explanation maps above {100 * t.dead_share:g}% of the maps "
                                  f"(mean over epochs, by seed: {shares})")]


def _low_n(cell: SanityCell, t: Thresholds) -> list[tuple[str, str]]:
    n = len(cell.values)
    return [("low_n", f"n = {n} seed{'s' if n != 1 else ''}, fewer than the paper's {t.min_seeds}")] \
        if n < t.min_seeds else []


def _missing(cell: SanityCell) -> list[tuple[str, str]]:
    missing = [s for s in cell.expected_seeds if s not in cell.values]
    return [("missing_seeds", f"no result for {_seeds(missing)}")] if missing else []


# ---------------------------------------------------------------- where flags are shown

def cell_marks(flags: Sequence[Flag]) -> dict[tuple[str, str], str]:
    """(group, method) -> a mark to print next to the cell, e.g. "⚑low_n,missing_seeds" (a pair flag marks
    both of its cells)."""
    codes: dict[tuple[str, str], list[str]] = {}
    for f in flags:
        for method in (f.method, f.other) if f.other else (f.method,):
            listed = codes.setdefault((f.group, method), [])
            if f.code not in listed:
                listed.append(f.code)
    return {key: "⚑" + ",".join(value) for key, value in codes.items()}


def flags_of(flags: Sequence[Flag], model: str, method_a: str, method_b: str) -> list[Flag]:
    """The flags a comparison of two cells of ``model`` rests on (each once)."""
    return list(dict.fromkeys(f for f in flags if f.touches(model, method_a, method_b)))
