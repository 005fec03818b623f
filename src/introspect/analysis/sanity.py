"""Sanity flags on a result set: conditions under which a cell's mean ± std (or a claim built on it) should not
be read at face value. A flagged cell is marked wherever it is shown; nothing here drops or averages it away.

Flags (``Flag.code``), each attached to one cell (group, model, method):

- ``teacher_not_better``  the cell learned from a teacher whose mean test accuracy is not more than
  ``teacher_margin_pp`` above the CE run of the cell's own group: distillation from it has no headroom, so a
  distillation method "not helping" says little.
- ``collapsed``  the cell's mean, or any one seed, lies more than ``collapse_drop_pp`` below the group's CE
  level (the median of CE's seeds, so one collapsed CE seed does not move the reference), or within
  ``chance_margin_pp`` of chance (100 / n_classes %, checked when n_classes is given; CE cells included).
- ``ceiling``  the accuracy is at the test set's resolution: the mean error is fewer than
  ``ceiling_error_images`` test images, or every seed is within one test image of 100%. Differences between
  such cells are counts of a few images. Needs the test-set size (``n_test`` of each run's metrics);
  cells without it are not checked.
- ``low_n``  fewer than ``min_seeds`` seeds (the paper reports 5).
- ``missing_seeds``  seeds that were planned (``expected_seeds``) but have no result.

All accuracies are in percent; error-metric tables are converted to accuracy (100 − error) before this.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Thresholds:
    collapse_drop_pp: float = 10.0  # below the group's CE level by more than this: collapsed
    chance_margin_pp: float = 5.0  # within this of chance accuracy: collapsed
    ceiling_error_images: float = 3.0  # mean error below this many test images: at the ceiling
    teacher_margin_pp: float = 0.0  # a teacher must beat the group's CE by more than this
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


@dataclass(frozen=True)
class Flag:
    code: str
    text: str
    group: str
    model: str
    method: str


@dataclass
class _Group:
    ce_level: float | None = None
    cells: list[SanityCell] = field(default_factory=list)


def sanity_flags(cells: Sequence[SanityCell], *, teachers: Mapping[str, Sequence[float]] | None = None,
                 reference: str = "CE", n_classes: int | None = None,
                 thresholds: Thresholds = Thresholds()) -> list[Flag]:
    """Every flag of every cell, in cell order. ``teachers[label]`` are the teacher's test accuracies (one per
    teacher run); a cell whose teacher has no entry, or whose group has no ``reference`` (CE) cell with results,
    is not checked against it."""
    groups: dict[str, _Group] = {}
    for cell in cells:
        groups.setdefault(cell.group, _Group()).cells.append(cell)
    for group in groups.values():
        ce = next((c for c in group.cells if c.method == reference and c.values), None)
        group.ce_level = statistics.median(ce.values.values()) if ce else None
    flags: list[Flag] = []
    for cell in cells:
        texts = [
            *_teacher(cell, groups[cell.group].ce_level, teachers or {}, reference, thresholds),
            *_collapsed(cell, groups[cell.group].ce_level, reference, n_classes, thresholds),
            *_ceiling(cell, thresholds),
            *_low_n(cell, thresholds),
            *_missing(cell),
        ]
        flags += [Flag(code, text, cell.group, cell.model, cell.method) for code, text in texts]
    return flags


def _teacher(cell: SanityCell, ce_level: float | None, teachers: Mapping[str, Sequence[float]], reference: str,
             t: Thresholds) -> list[tuple[str, str]]:
    accuracies = teachers.get(cell.teacher) if cell.teacher else None
    if not accuracies or ce_level is None:
        return []
    teacher = statistics.fmean(accuracies)
    if teacher - ce_level > t.teacher_margin_pp:
        return []
    return [("teacher_not_better", f"teacher {cell.teacher} ({teacher:.2f}%) is not better than {reference} on "
                                   f"{cell.group} ({ce_level:.2f}%)")]


def _collapsed(cell: SanityCell, ce_level: float | None, reference: str, n_classes: int | None,
               t: Thresholds) -> list[tuple[str, str]]:
    if not cell.values:
        return []
    mean, reasons = statistics.fmean(cell.values.values()), []
    if ce_level is not None and cell.method != reference:
        floor = ce_level - t.collapse_drop_pp
        low = [s for s, v in sorted(cell.values.items()) if v < floor]
        if mean < floor:
            reasons.append(f"mean {mean:.2f}% is more than {t.collapse_drop_pp:g} pp below {reference} "
                           f"({ce_level:.2f}%)")
        elif low:
            reasons.append(f"seed{'s' if len(low) > 1 else ''} {', '.join(map(str, low))} more than "
                           f"{t.collapse_drop_pp:g} pp below {reference} ({ce_level:.2f}%)")
    if n_classes:
        chance = 100.0 / n_classes
        near = [s for s, v in sorted(cell.values.items()) if v < chance + t.chance_margin_pp]
        if near:
            reasons.append(f"seed{'s' if len(near) > 1 else ''} {', '.join(map(str, near))} within "
                           f"{t.chance_margin_pp:g} pp of chance ({chance:.1f}%)")
    return [("collapsed", "; ".join(reasons))] if reasons else []


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


def _low_n(cell: SanityCell, t: Thresholds) -> list[tuple[str, str]]:
    n = len(cell.values)
    return [("low_n", f"n = {n} seed{'s' if n != 1 else ''}, fewer than the paper's {t.min_seeds}")] \
        if n < t.min_seeds else []


def _missing(cell: SanityCell) -> list[tuple[str, str]]:
    missing = [s for s in cell.expected_seeds if s not in cell.values]
    return [("missing_seeds", f"no result for seed{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(map(str, missing))}")] if missing else []


# ---------------------------------------------------------------- attaching flags to what is shown

def cell_marks(flags: Sequence[Flag]) -> dict[tuple[str, str], str]:
    """(group, method) -> a mark to print next to the cell, e.g. "⚑low_n,missing_seeds"."""
    codes: dict[tuple[str, str], list[str]] = {}
    for f in flags:
        codes.setdefault((f.group, f.method), [])
        if f.code not in codes[(f.group, f.method)]:
            codes[(f.group, f.method)].append(f.code)
    return {key: "⚑" + ",".join(value) for key, value in codes.items()}
