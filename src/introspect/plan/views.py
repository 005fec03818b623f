"""Typed views over runs, as the plan builds them and the analysis commands read them: sweeps
(:class:`Selection`), tables (:class:`TableSpec` of :class:`Cell`), figures, student analyses and claims
(:class:`ClaimsSpec`, of the one claim type :class:`~introspect.config.claim.Claim`).

Each spec is built once by the plan, written as a JSON file under ``results_dir`` and handed to its
command as that file (``--spec FILE``; :mod:`introspect.plan.job_files` writes and reads them, checking every
key, type and id that becomes a path). What a table's numbers mean — accuracy or error, which direction is
better, which methods are the references of its tests — is decided here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from ..config.claim import Claim
from ..config.model import ClaimSettings, FigureKind, MetricKind, SweepMetric, SweepUse, TableLayout
from ..runs.loading import FinishedRun
from ..runs.record import DEFAULT_CONFIG_NAME, ResultsLayout


@dataclass(frozen=True)
class Selection:
    """A hyper-parameter sweep: grid points x sweep seeds, scored on the validation split. The final
    runs of the cell read the chosen point from the selection file (``introspect select`` writes it)."""

    selection_id: str
    label: str  # method label, e.g. "Dropout"
    group: str  # model group label, e.g. "ResNet14"
    grid: list[dict[str, float | int | bool | str]]  # hyper-parameter values of each point
    candidates: list[list[str]]  # run ids per grid point (one per sweep seed)
    metric: SweepMetric
    results_dir: str

    @property
    def path(self) -> str:
        return str(ResultsLayout(self.results_dir).selection(self.selection_id))

    def run_ids(self) -> list[str]:
        return [run_id for ids in self.candidates for run_id in ids]

    def paths(self) -> list[tuple[str, str]]:
        return [("selection_id", self.selection_id)] + [("candidates", r) for r in self.run_ids()]


@dataclass(frozen=True)
class Cell:
    """One method on one model group: a run per seed."""

    group: str  # row/column label of the model (e.g. "ResNet14")
    method: str  # method label (e.g. "LE(Grad-CAM)")
    model: str
    paper_dataset: str | None
    run_ids: list[str]  # one per seed
    seeds: list[int]  # the seed of each run, in the same order
    selection: str | None = None  # id of the sweep its hyper-parameters come from
    teacher_run_ids: list[str] = field(default_factory=list)  # per seed, for methods that learn from one


def _cell_paths(cells: list[Cell], where: str) -> list[tuple[str, str]]:
    return [(f"{where}[{i}].{key}", r) for i, c in enumerate(cells)
            for key, ids in (("run_ids", c.run_ids), ("teacher_run_ids", c.teacher_run_ids),
                             ("selection", [c.selection] if c.selection else [])) for r in ids]


@dataclass(frozen=True)
class Setting:
    key: str
    value: str  # as the notes print it


@dataclass(frozen=True)
class Settings:
    """A named list of settings shown in a table's notes (a budget, a method variant)."""

    name: str
    values: list[Setting]


@dataclass(frozen=True)
class SweepSettings:
    use: SweepUse
    metric: SweepMetric
    seeds: list[int]


@dataclass(frozen=True)
class TableNotes:
    """What a table's footer says about how its runs were made."""

    dataset: str  # the dataset keys of its groups, comma-separated
    seeds: list[int]
    budgets: list[Settings]
    methods: list[Settings]
    sweeps: SweepSettings


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    methods: list[str]  # column (or row) order
    cells: list[Cell]
    results_dir: str
    config_name: str = DEFAULT_CONFIG_NAME
    paper_table: int | None = None
    # kw_only and required: the config (its schema) holds the defaults, once
    metric: MetricKind = field(kw_only=True)
    layout: TableLayout = field(kw_only=True)
    compare_to: list[str] = field(default_factory=list)
    baseline: str = field(kw_only=True)  # the method label the sanity flags compare teachers and collapses with
    other_implementations: bool = field(kw_only=True)
    notes: TableNotes | None = None
    teachers: dict[str, list[str]] = field(default_factory=dict)  # teacher label -> its run ids
    # group -> baseline runs of its model trained for another view, for groups without a baseline cell
    # (the sanity flags compare teachers and collapses with them)
    references: dict[str, list[str]] = field(default_factory=dict)

    @property
    def view_layout(self) -> ResultsLayout:
        return ResultsLayout(self.results_dir, self.config_name)

    @property
    def metric_kind(self) -> str:
        return self.metric

    @property
    def lower_is_better(self) -> bool:
        return self.metric == "error"

    @property
    def metric_label(self) -> str:
        return "test error (%)" if self.metric == "error" else "test accuracy (%)"

    @property
    def reference_methods(self) -> list[str]:
        """Methods whose tests against every other method of a group the table marks (first present wins)."""
        return list(self.compare_to)

    def value(self, run: FinishedRun, metric: str) -> float:
        """A run's ``metric`` (an accuracy in %) as this table shows it."""
        accuracy = run.value(metric)
        return 100.0 - accuracy if self.metric == "error" else accuracy

    def run_ids(self) -> list[str]:
        return sorted({r for cell in self.cells for r in cell.run_ids})

    def reference_run_ids(self) -> list[str]:
        return sorted({r for ids in self.references.values() for r in ids})

    def teacher_run_ids(self) -> list[str]:
        return sorted({r for ids in self.teachers.values() for r in ids})

    def selection_ids(self) -> list[str]:
        return sorted({cell.selection for cell in self.cells if cell.selection})

    def paths(self) -> list[tuple[str, str]]:
        return ([("name", self.name)] + _cell_paths(self.cells, "cells")
                + [(f"teachers.{k}", r) for k, ids in self.teachers.items() for r in ids]
                + [(f"references.{k}", r) for k, ids in self.references.items() for r in ids])


@dataclass(frozen=True)
class Panel:
    """One trained run shown in an explanation figure."""

    label: str
    model: str
    method: str
    explainer: str
    dataset: str
    run_id: str


@dataclass(frozen=True)
class FigureSpec:
    """A figure: ``panels`` (one trained run each, for explanation figures) or ``cells`` (seeds of
    runs, for the accuracy figure)."""

    name: str
    kind: FigureKind
    title: str
    results_dir: str
    config_name: str = DEFAULT_CONFIG_NAME
    paper_figure: int | None = None
    note: str | None = None
    images: int = field(kw_only=True)  # required: the config's schema holds the default
    panels: list[Panel] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    @property
    def view_layout(self) -> ResultsLayout:
        return ResultsLayout(self.results_dir, self.config_name)

    def run_ids(self) -> list[str]:
        return sorted({p.run_id for p in self.panels} | {r for c in self.cells for r in c.run_ids})

    def paths(self) -> list[tuple[str, str]]:
        return ([("name", self.name)] + [(f"panels[{i}].run_id", p.run_id) for i, p in enumerate(self.panels)]
                + _cell_paths(self.cells, "cells"))


def cell_key(view: str, group: str, method: str) -> str:
    """How a cell is named in ``ClaimsSpec.cell_gpu_hours`` (the claims engine's key is "view · group":
    :attr:`Claim.values_key`)."""
    return f"{view} · {group} · {method}"


@dataclass(frozen=True)
class ClaimsSpec:
    """Every claim of a config, with the cells of each group they name (sanity flags need the
    group's baseline cell and the teachers)."""

    results_dir: str
    claims: list[Claim]  # as the plan completes them (their view's facts); the claims job adds the rest
    cells: dict[str, list[Cell]]  # view -> cells of the groups its claims name
    references: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # view -> TableSpec.references
    settings: ClaimSettings = field(default_factory=lambda: ClaimSettings())
    baselines: dict[str, str] = field(default_factory=dict)  # view -> the method label its flags compare with
    teacher_of: dict[str, str] = field(default_factory=dict)  # teacher run -> the run it learned from (assistants)
    # claim name -> estimated GPU-hours of one seed of its two cells in the paper config (introspect.claims.costs)
    seed_gpu_hours: dict[str, float] = field(default_factory=dict)
    config_name: str = DEFAULT_CONFIG_NAME
    # the costs are the paper config's (claim_settings.cost_config): they price the seeds the paper's spread needs
    priced_in_paper_config: bool = False
    cell_gpu_hours: dict[str, float] = field(default_factory=dict)  # "view · group · method" -> one seed's hours
    warmup_of: dict[str, str] = field(default_factory=dict)  # a cell's run -> its warm-up run (cost claims)

    @property
    def view_layout(self) -> ResultsLayout:
        return ResultsLayout(self.results_dir, self.config_name)

    def run_ids(self) -> list[str]:
        cells = {r for cells in self.cells.values() for c in cells for r in (*c.run_ids, *c.teacher_run_ids)}
        return sorted(cells | {r for groups in self.references.values() for ids in groups.values() for r in ids})

    def paths(self) -> list[tuple[str, str]]:
        return ([(f"cells.{view}{w}", r) for view, cells in self.cells.items() for w, r in _cell_paths(cells, "")]
                + [(f"references.{v}.{g}", r) for v, groups in self.references.items()
                   for g, ids in groups.items() for r in ids]
                + [("warmup_of", r) for r in self.warmup_of.values()])


@dataclass(frozen=True)
class StudentPair:
    table: str
    group: str
    method: str
    run_id: str
    teacher_run_id: str
    seed: int


@dataclass(frozen=True)
class AnalysisSpec:
    """Students of some tables analysed against their group's teacher (``introspect analyse``)."""

    name: str
    title: str
    results_dir: str
    seeds: list[int]
    pairs: list[StudentPair]
    figure_pairs: list[StudentPair]  # first seed of each method of the first group
    fractions: list[float] = field(kw_only=True)  # required, like images: the config's schema holds the defaults
    images: int = field(kw_only=True)
    config_name: str = DEFAULT_CONFIG_NAME

    @property
    def view_layout(self) -> ResultsLayout:
        return ResultsLayout(self.results_dir, self.config_name)

    def run_ids(self) -> list[str]:
        return sorted({r for p in self.pairs for r in (p.run_id, p.teacher_run_id)})

    def paths(self) -> list[tuple[str, str]]:
        return [("name", self.name)] + [(f"pairs[{i}].{key}", getattr(p, key)) for i, p in enumerate(self.pairs)
                                        for key in ("run_id", "teacher_run_id")]


Spec = TypeVar("Spec", Selection, TableSpec, FigureSpec, AnalysisSpec, ClaimsSpec)
SPEC_KINDS: dict[str, type] = {"selection": Selection, "table": TableSpec, "figure": FigureSpec,
                               "analysis": AnalysisSpec, "claims": ClaimsSpec}
