"""Typed views over runs, as the plan builds them and the analysis commands read them: sweeps
(:class:`Selection`), tables (:class:`TableSpec` of :class:`Cell`), figures and student analyses.

Each spec is validated once (by the plan) and travels to its command as JSON (``to_dict`` /
``from_dict``). What a table's numbers mean — accuracy or error, which direction is better, which
methods are the references of its tests — is decided here and nowhere else.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .runs import FinishedRun, ResultsLayout

METRIC_KINDS = ("accuracy", "error")


@dataclass
class Selection:
    """A hyper-parameter sweep: grid points x sweep seeds, scored on the validation split. The final
    runs of the cell read the chosen point from the selection file (``introspect select`` writes it)."""

    selection_id: str
    label: str  # method label, e.g. "Dropout"
    group: str  # model group label, e.g. "ResNet14"
    grid: list[dict[str, Any]]
    candidates: list[list[str]]  # run ids per grid point (one per sweep seed)
    metric: str
    results_dir: str

    @property
    def path(self) -> str:
        return str(ResultsLayout(self.results_dir).selection(self.selection_id))

    def run_ids(self) -> list[str]:
        return [run_id for ids in self.candidates for run_id in ids]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Selection:
        return cls(**data)


@dataclass
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


@dataclass
class TableSpec:
    name: str
    config: dict[str, Any]
    cells: list[Cell]
    results_dir: str
    settings: dict[str, Any] = field(default_factory=dict)  # for the table's footer
    teachers: dict[str, list[str]] = field(default_factory=dict)  # teacher label -> its run ids
    # group -> CE runs of its model trained for another view, for groups without a CE cell (the sanity
    # flags compare teachers and collapses with them)
    references: dict[str, list[str]] = field(default_factory=dict)

    @property
    def metric_kind(self) -> str:
        return self.config.get("metric", "accuracy")

    @property
    def lower_is_better(self) -> bool:
        return self.metric_kind == "error"

    @property
    def metric_label(self) -> str:
        return "test error (%)" if self.metric_kind == "error" else "test accuracy (%)"

    @property
    def reference_methods(self) -> list[str]:
        """Methods whose tests against every other method of a group the table marks (first present wins)."""
        return list(self.config.get("compare_to", []))

    @property
    def methods(self) -> list[str]:
        return list(self.config["methods"])

    def value(self, run: FinishedRun, metric: str) -> float:
        """A run's ``metric`` (an accuracy in %) as this table shows it."""
        accuracy = run.value(metric)
        return 100.0 - accuracy if self.metric_kind == "error" else accuracy

    def run_ids(self) -> list[str]:
        return sorted({r for cell in self.cells for r in cell.run_ids})

    def reference_run_ids(self) -> list[str]:
        return sorted({r for ids in self.references.values() for r in ids})

    def teacher_run_ids(self) -> list[str]:
        return sorted({r for ids in self.teachers.values() for r in ids})

    def selection_ids(self) -> list[str]:
        return sorted({cell.selection for cell in self.cells if cell.selection})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSpec:
        return cls(**{**data, "cells": [Cell(**c) for c in data["cells"]]})


@dataclass
class Panel:
    """One trained run shown in an explanation figure."""

    label: str
    model: str
    method: str
    explainer: str
    dataset: str
    run_id: str


@dataclass
class FigureSpec:
    """A figure: ``panels`` (one trained run each, for explanation figures) or ``cells`` (seeds of
    runs, for the accuracy figure)."""

    name: str
    config: dict[str, Any]
    results_dir: str
    panels: list[Panel] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.config["kind"]

    def run_ids(self) -> list[str]:
        return sorted({p.run_id for p in self.panels} | {r for c in self.cells for r in c.run_ids})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FigureSpec:
        return cls(**{**data, "panels": [Panel(**p) for p in data["panels"]],
                      "cells": [Cell(**c) for c in data["cells"]]})


@dataclass
class ClaimSpec:
    """One of the paper's claims: method ``method_a`` against ``method_b`` on one group of a view."""

    name: str
    view: str  # the table (or accuracy figure) whose cells it compares
    group: str
    model: str
    method_a: str
    method_b: str
    direction: str  # "greater" | "equivalent"
    margin: float | None
    family: str
    text: str
    dataset: str  # the config's dataset source the cells ran on
    paper_dataset: str | None
    paper_table: int | None
    metric_kind: str  # how the paper's table reports it ("accuracy" or "error")


@dataclass(frozen=True)
class ClaimSettings:
    """How claims are judged and planned (config ``claim_settings``)."""

    alpha: float = 0.05  # family-wise level of each Holm family
    power: float = 0.8  # the power seeds_needed plans for
    smallest_effect_pp: float = 0.5  # the target of claims without a positive paper effect (Figure 3's order)
    max_seeds: int = 20  # claims_next.yaml never plans a cell beyond this many seeds
    # "smaller than reported" for A > B claims: off for result sets whose effects are not meant to be the paper's
    compare_magnitudes: bool = True
    seeds: tuple[int, ...] = ()  # the config's own seeds: seeds of a cell beyond them are extra seeds


@dataclass
class ClaimsSpec:
    """Every claim of a config, with the cells of each group they name (sanity flags need the
    group's CE cell and the teachers)."""

    results_dir: str
    claims: list[ClaimSpec]
    cells: dict[str, list[Cell]]  # view -> cells of the groups its claims name
    references: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # view -> TableSpec.references
    settings: ClaimSettings = field(default_factory=lambda: ClaimSettings())
    baselines: dict[str, str] = field(default_factory=dict)  # view -> the method label its flags compare with
    teacher_of: dict[str, str] = field(default_factory=dict)  # teacher run -> the run it learned from (assistants)
    # claim name -> estimated GPU-hours of one seed of its two cells in the paper config (introspect.claim_costs)
    seed_gpu_hours: dict[str, float] = field(default_factory=dict)

    def run_ids(self) -> list[str]:
        cells = {r for cells in self.cells.values() for c in cells for r in (*c.run_ids, *c.teacher_run_ids)}
        return sorted(cells | {r for groups in self.references.values() for ids in groups.values() for r in ids})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClaimsSpec:
        return cls(data["results_dir"], [ClaimSpec(**c) for c in data["claims"]],
                   {view: [Cell(**c) for c in cells] for view, cells in data["cells"].items()},
                   data.get("references", {}), ClaimSettings(**data.get("settings", {})),
                   data.get("baselines", {}), data.get("teacher_of", {}), data.get("seed_gpu_hours", {}))


@dataclass
class StudentPair:
    table: str
    group: str
    method: str
    run_id: str
    teacher_run_id: str
    seed: int


@dataclass
class AnalysisSpec:
    """Students of some tables analysed against their group's teacher (``introspect analyse``)."""

    name: str
    config: dict[str, Any]
    results_dir: str
    seeds: list[int]
    pairs: list[StudentPair]
    figure_pairs: list[StudentPair]  # first seed of each method of the first group

    def run_ids(self) -> list[str]:
        return sorted({r for p in self.pairs for r in (p.run_id, p.teacher_run_id)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisSpec:
        return cls(**{**data, "pairs": [StudentPair(**p) for p in data["pairs"]],
                      "figure_pairs": [StudentPair(**p) for p in data["figure_pairs"]]})
