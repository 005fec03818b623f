"""From a validated config to the run graph: every run (a :class:`~introspect.runs.record.RunRecord`) the
config's tables, figures and analyses need, the runs each one reads, and the views over them
(:mod:`introspect.plan.views`).

A run is identified by what it computes: dataset, model, budget, method with its hyper-parameters,
seed. The CE baseline of resnet14 shown in Tables 2 and 6 is one run. LE runs that share a model,
budget, seed and warm-up length share one warm-up run; students name their teacher's run, TAKD's
students an assistant that names its own teacher, BAN students a CE peer of seed s + 1000 (never another
student seed's CE run). Sweep runs train at sweep seed + ``SWEEP_SEED_OFFSET``, so no final run is a sweep run.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..config.claim import Claim
from ..config.model import Analysis, Config, ConfigError, Figure, Group, MethodVariant, Table, load_config, reject
from ..config.references import warmup_epochs
from ..config.registry_facts import registry_catalog
from ..config.validate import validate_config
from ..errors import InputError
from ..runs.record import RUN_KINDS, ResultsLayout, RunOptions, RunRecord, label_slug, make_run_id, method_slug
from ..runs.spec import RunSettings
from .outputs import output_problems
from .views import (
    AnalysisSpec,
    Cell,
    ClaimsSpec,
    FigureSpec,
    Panel,
    Selection,
    Setting,
    Settings,
    StudentPair,
    SweepSettings,
    TableNotes,
    TableSpec,
)

__all__ = ["ConfigError", "Plan", "build_plan", "load_config"]

# Sweep runs train at their sweep seed + this offset: a final run of the chosen value would otherwise be the
# sweep's own winning run (same seed, same hyper-parameters, the same numbers), chosen for being high on
# validation: a winner's curse in the final cell. Above every final seed a config uses.
SWEEP_SEED_OFFSET = 100_000


@dataclass
class Plan:
    config: Config
    runs: dict[str, RunRecord]
    tables: dict[str, TableSpec]
    selections: dict[str, Selection] = field(default_factory=dict)
    figures: dict[str, FigureSpec] = field(default_factory=dict)
    analyses: dict[str, AnalysisSpec] = field(default_factory=dict)
    claims: ClaimsSpec | None = None

    @property
    def layout(self) -> ResultsLayout:
        return ResultsLayout(self.config.results_dir, self.config.name)

    def ids(self, kind: str) -> list[str]:
        return sorted(r for r, run in self.runs.items() if run.kind == kind)

    def unfinished_runs(self) -> list[str]:
        return [r for r in sorted(self.runs) if not self.runs[r].files.is_finished()]

    @property
    def run_options(self) -> RunOptions:
        """How every job runs its record without changing its numbers (passed as CLI flags)."""
        return RunOptions(self.config.data_root, self.config.eval_batch_size)

    def spec(self, kind: str, name: str) -> Any:
        """One job's spec: ``kind`` is ``table``, ``figure``, ``analysis``, ``selection`` or ``claims``."""
        if kind == "claims":
            return self.claims
        return {"table": self.tables, "figure": self.figures, "analysis": self.analyses,
                "selection": self.selections}[kind][name]


def build_plan(config: dict[str, Any] | Config) -> Plan:
    """All runs the config's tables, figures and analyses need, their dependencies, sweeps, and cells.
    ``config`` is checked first (every problem at once); building the plan then refuses nothing but
    outputs that would leave ``results_dir`` or collide."""
    config = validate_config(config)
    try:
        ResultsLayout(config.results_dir, config.name)  # the resolved root: not a system or shared directory
    except InputError as error:
        raise ConfigError(str(error)) from None
    builder = _Builder(config, _methods_needing_a_teacher(config))
    tables = {name: _table(builder, table) for name, table in config.tables.items()}
    figures = {name: builder.figure(figure) for name, figure in config.figures.items()}
    analyses = {name: _analysis(builder, analysis, tables) for name, analysis in config.analyses.items()}
    # after every view is planned: reference runs are only looked up
    tables = {name: replace(table, references=_references(builder, config.tables[name]))
              for name, table in tables.items()}
    claims = _claims(config, tables, figures, builder.runs) if config.claims else None
    plan = Plan(config, builder.runs, tables, builder.selections, figures, analyses, claims)
    reject(output_problems(plan) + independence_problems(plan))
    return plan


def independence_problems(plan: Plan) -> list[str]:
    """Runs the paired tests would count twice: a final cell's run that is also a sweep run (a seed reaching
    ``SWEEP_SEED_OFFSET``), or a teacher of one seed's student that is another seed's cell run (a peer seed
    reaching seed + 1000). Each one line naming the run."""
    cells = [c for view in [*plan.tables.values(), *plan.figures.values()] for c in view.cells]
    finals = {r: c for c in cells for r in c.run_ids}
    problems = []
    for cell in (c for c in cells if c.selection):
        # a final run at a sweep run's seed trains what the sweep's run of the chosen value trained (its id
        # differs only by naming the selection): the same numbers, picked for being high on validation
        swept = {plan.runs[r].seed for r in plan.selections[cell.selection].run_ids()}
        problems += [f"seeds: seed {seed} of {cell.group}/{cell.method} is also a seed of its sweep; keep final "
                     f"seeds below {SWEEP_SEED_OFFSET}" for seed in sorted(swept & set(cell.seeds))]
    for cell in (c for c in cells if len(set(c.teacher_run_ids)) > 1):  # per-seed teachers (one shared is by design)
        for run_id, teacher in zip(cell.run_ids, cell.teacher_run_ids):
            other = finals.get(teacher)
            if other is not None and plan.runs[teacher].seed != plan.runs[run_id].seed:
                problems.append(f"seeds: the teacher of {run_id} is {teacher}, a run of {other.group}/{other.method} "
                                "of another seed; keep seeds below 1000 (peers train at seed + 1000)")
    return problems


def _claims(config: Config, tables: dict[str, TableSpec], figures: dict[str, FigureSpec],
            runs: dict[str, RunRecord]) -> ClaimsSpec:
    """The claims with their views' cells (every name a claim uses was checked by the validation)."""
    views = {name: tables[name] if name in tables else figures[name] for name in config.claim_views}
    claims, cells = [], {}
    for claim in config.claims:
        if claim.direction == "similar_pairs":  # a class-similarity figure's panel, not cells
            claims.append(_similarity_claim(config, claim))
            continue
        view = views[claim.view]
        group_cells = [c for c in view.cells if c.group == claim.group]
        group = next(g for g in config.claim_views[claim.view].groups if g.label == claim.group)
        table = config.tables.get(claim.view)
        claims.append(replace(
            claim, model=group.model, dataset=config.datasets[group.dataset].name,
            paper_dataset=group_cells[0].paper_dataset, paper_table=table.paper_table if table else None,
            metric_kind=table.metric if table else "accuracy", epochs=config.budgets[group.budget].epochs))
        known = {(c.group, c.method) for c in cells.get(claim.view, [])}
        cells.setdefault(claim.view, []).extend(c for c in group_cells if (c.group, c.method) not in known)
    references = {view: tables[view].references for view in cells if view in tables and tables[view].references}
    teachers = {t for view in cells.values() for c in view for t in c.teacher_run_ids}
    teacher_of = {t: runs[t].teacher for t in sorted(teachers) if runs[t].teacher}
    baselines = {view: tables[view].baseline for view in cells if view in tables}
    warmups = {r: runs[r].init_from for view in cells.values() for c in view for r in c.run_ids if runs[r].init_from}
    return ClaimsSpec(config.results_dir, claims, cells, references, config.claim_settings, baselines, teacher_of,
                      config_name=config.name, warmup_of=warmups)


def _similarity_claim(config: Config, claim: Claim) -> Claim:
    """A similar_pairs claim: the config names the panel by its model, the plan by its label (checked)."""
    figure = config.figures[claim.view]
    panel = next(p for p in figure.panels if p.model.lower() == claim.group.lower() and p.method == claim.method_a)
    return replace(claim, group=panel.label, model=panel.model, dataset=config.datasets[panel.dataset].name,
                   paper_dataset=panel.paper_dataset or figure.paper_dataset, paper_table=None, metric_kind="accuracy",
                   epochs=config.budgets[panel.budget].epochs)


def _table(builder: _Builder, table: Table) -> TableSpec:
    config = builder.config
    cells, teachers = [], {}
    for group in table.groups:
        for label in group.trained_labels(table.methods):
            cell, teacher = builder.cell(group, label, seeds=builder.seeds(table.name, group, label))
            cells.append(cell)
            if teacher:
                teachers[teacher[0]] = teacher[1]
    sweeps = config.sweeps
    notes = TableNotes(
        ", ".join(dict.fromkeys(g.dataset for g in table.groups)), list(config.seeds),
        [_settings(name, config.budgets[name].to_dict()) for name in dict.fromkeys(g.budget for g in table.groups)],
        [_settings(m, _shown_variant(config.methods[m], sweeps.use)) for m in table.methods],
        SweepSettings(sweeps.use, sweeps.metric, list(sweeps.seeds)))
    return TableSpec(table.name, table.title, list(table.methods), cells, config.results_dir, config.name,
                     table.paper_table, compare_to=list(table.compare_to), notes=notes, teachers=teachers,
                     metric=table.metric, layout=table.layout, baseline=table.baseline,
                     other_implementations=table.other_implementations)


def _settings(name: str, values: dict[str, Any]) -> Settings:
    return Settings(name, [Setting(k, str(v)) for k, v in values.items()])


def _references(builder: _Builder, table: Table) -> dict[str, list[str]]:
    """For each group without a cell of the table's baseline: the baseline's runs of its model, dataset
    and budget, where another view has them planned anyway (Table 5's students against Table 2's CE).
    No run is added for this."""
    variant = builder.config.methods.get(table.baseline)
    if not variant or variant.sweep:
        return {}
    references = {}
    for group in table.groups:
        if table.baseline in table.methods and table.baseline not in group.exclude:
            continue
        budget = builder.config.budgets[group.budget]
        ids = [make_run_id(group.dataset, group.model, group.budget, budget.epochs,
                           method_slug(variant.method, dict(variant.hyperparameters)), seed)
               for seed in builder.config.seeds]
        if all(run_id in builder.runs for run_id in ids):
            references[group.label] = ids
    return references


def _analysis(builder: _Builder, analysis: Analysis, tables: dict[str, TableSpec]) -> AnalysisSpec:
    """Every student of the named tables (all seeds) paired with its group's teacher of the same seed."""
    config, pairs = builder.config, []
    for table_name in analysis.tables:
        groups = {g.label: g for g in config.tables[table_name].groups}
        for cell in tables[table_name].cells:
            if analysis.methods and cell.method not in analysis.methods:
                continue
            group = groups[cell.group]
            for seed, run_id in zip(cell.seeds, cell.run_ids):
                teacher_id = builder.teacher_run(group.dataset, group.teacher, seed)
                pairs.append(StudentPair(table_name, cell.group, cell.method, run_id, teacher_id, seed))
    shown = [p for p in pairs if p.table == analysis.figure_table]
    figure_pairs = [p for p in shown if p.group == shown[0].group and p.seed == config.seeds[0]] if shown else []
    return AnalysisSpec(analysis.name, analysis.title, config.results_dir, list(config.seeds), pairs, figure_pairs,
                        fractions=list(analysis.fractions), images=analysis.images, config_name=config.name)


def _shown_variant(variant: MethodVariant, use: str) -> dict[str, Any]:
    """A method variant as a table's notes show it: swept values as their grid (unless forced)."""
    shown = {"method": variant.method, **variant.hyperparameters}
    if use == "validation":
        shown.update({k: f"swept over {list(values)}" for k, values in variant.sweep.items()})
    return shown


def _methods_needing_a_teacher(config: Config) -> set[str]:
    """Labels of method variants whose method reads a teacher."""
    catalog = registry_catalog()
    return {label for label, v in config.methods.items() if catalog.method(v.method).needs_teacher}


class _Builder:
    """Accumulates the runs and sweeps of a plan; a run or sweep needed twice is added once."""

    def __init__(self, config: Config, students: set[str]):
        self.config = config
        self.students = students
        self.runs: dict[str, RunRecord] = {}
        self.selections: dict[str, Selection] = {}

    def cell(self, group: Group, label: str, seeds: tuple[int, ...] | None = None
             ) -> tuple[Cell, tuple[str, list[str]] | None]:
        """The runs of one method on one model group (one per seed), with its teacher and sweep."""
        config = self.config
        variant = group.variant(label, config.methods)
        teacher = group.teacher_of(label)
        seeds = config.seeds if seeds is None else seeds
        teacher_for: Callable[[int], str | None] = lambda seed: None  # noqa: E731
        teacher_caption = None
        if label in self.students:
            teacher_for = lambda seed: self.teacher_run(group.dataset, teacher, seed)  # noqa: E731
            caption = f"{config.teachers[teacher].model} ({teacher})"
            teacher_caption = (caption, sorted({teacher_for(seed) for seed in seeds}))
        selection = None
        if variant.sweep and config.sweeps.use == "validation":
            selection = self._sweep(group, label, variant, teacher_for)
        ids = [self.add_run(group.dataset, group.model, group.budget, variant, seed, teacher_id=teacher_for(seed),
                            selection=selection) for seed in seeds]
        teacher_ids = [t for t in (teacher_for(seed) for seed in seeds) if t]
        cell = Cell(group.label, label, group.model, group.paper_dataset, ids, list(seeds),
                    selection.selection_id if selection else None, teacher_ids)
        return cell, teacher_caption

    def seeds(self, view: str, group: Group, label: str) -> tuple[int, ...]:
        """The config's seeds plus the cell's ``extra_seeds`` (claims_next.yaml: seeds its claims need)."""
        extra = self.config.extra_seeds.get(view, {}).get(group.label, {}).get(label, ())
        return (*self.config.seeds, *(s for s in extra if s not in self.config.seeds))

    def _sweep(self, group: Group, label: str, variant: MethodVariant, teacher_for) -> Selection:
        sweeps = self.config.sweeps
        keys = sorted(variant.sweep)
        grid = [dict(zip(keys, values)) for values in itertools.product(*(variant.sweep[k] for k in keys))]
        seeds = [seed + SWEEP_SEED_OFFSET for seed in sweeps.seeds]  # no final run is a sweep run
        candidates = [[self.add_run(group.dataset, group.model, group.budget, variant.with_overrides(point), seed,
                                    teacher_id=teacher_for(seed)) for seed in seeds] for point in grid]
        identity = json.dumps([candidates, sweeps.metric], sort_keys=True)
        digest = hashlib.sha1(identity.encode()).hexdigest()[:8]
        budget = self.config.budgets[group.budget]
        selection_id = (f"{group.dataset}/{group.model}/{group.budget}-e{budget.epochs}/"
                        f"{label_slug(label)}-{'_'.join(keys)}-{digest}")
        selection = Selection(selection_id, label, group.label, grid, candidates, sweeps.metric,
                              self.config.results_dir)
        return self.selections.setdefault(selection_id, selection)

    def figure(self, figure: Figure) -> FigureSpec:
        seed = self.config.seeds[0]
        panels, cells = [], []
        for panel in figure.panels:
            cell, _ = self.cell(panel, panel.method, seeds=(seed,))
            panels.append(Panel(panel.label, panel.model, panel.method, panel.explainer, panel.dataset,
                                cell.run_ids[0]))
        for group in figure.groups:
            for label in figure.methods:
                cells.append(self.cell(group, label, seeds=self.seeds(figure.name, group, label))[0])
        return FigureSpec(figure.name, figure.kind, figure.title, self.config.results_dir, self.config.name,
                          figure.paper_figure, figure.note, images=figure.images, panels=panels, cells=cells)

    def teacher_run(self, dataset: str, name: str, seed: int) -> str:
        """The teacher run a student of ``seed`` learns from: one shared teacher or one per student seed.
        A teacher may have a teacher of its own (TAKD's assistants: ResNet26 -> ResNet20 -> ResNet14)."""
        teacher = self.config.teachers[name]
        seeds = self.config.seeds
        teacher_seed = seeds[0] if teacher.shared else _shifted_seed(seed, teacher.seed_shift)
        own_teacher = self.teacher_run(dataset, teacher.teacher, seed) if teacher.teacher else None
        return self.add_run(dataset, teacher.model, teacher.budget, self.config.methods[teacher.method], teacher_seed,
                            teacher_id=own_teacher, kind="teacher")

    def add_run(self, dataset: str, model: str, budget_key: str, variant: MethodVariant, seed: int, *,
                teacher_id: str | None = None, kind: str | None = None, selection: Selection | None = None) -> str:
        config = self.config
        budget = config.budgets[budget_key]
        hyper = dict(variant.hyperparameters)
        if selection is not None:  # the swept values come from the selection file when the run starts
            for key in selection.grid[0]:
                hyper.pop(key, None)
        if "warmup_fraction" in hyper:
            hyper["warmup_epochs"] = warmup_epochs(hyper.pop("warmup_fraction"), budget.epochs)
        slug = method_slug(variant.method, hyper)
        if selection is not None:
            slug += f"-sel_{selection.selection_id.rsplit('-', 1)[1]}"
        if teacher_id:
            # which teacher taught it is part of what a student run computes (model + digest of its run id)
            digest = hashlib.sha1(teacher_id.encode()).hexdigest()[:8]
            slug += f"-from_{self.runs[teacher_id].model}-{digest}"
        run_id = make_run_id(dataset, model, budget_key, budget.epochs, slug, seed)
        common = {"results_dir": config.results_dir, "dataset": dataset, "model": model,
                  "budget": budget_key, "seed": seed, "spec": _base_spec(config, dataset, budget_key)}
        method = {"name": variant.method, **hyper}
        warmup = hyper.get("warmup_epochs", 0)
        init_from = None
        if warmup > 0:
            init_from = make_run_id(dataset, model, budget_key, budget.epochs, f"warmup-w{warmup}", seed)
            self.runs.setdefault(init_from, RunRecord(init_from, "warmup", method={"name": "ce"},
                                                      stop_epoch=warmup, **common))
            kind = "stage2"
        kind = kind or ("student" if teacher_id else "train")
        assert kind in RUN_KINDS
        self.runs.setdefault(run_id, RunRecord(run_id, kind, method=method, teacher=teacher_id, init_from=init_from,
                                               selection=selection and selection.selection_id, **common))
        return run_id


def _shifted_seed(seed: int, shift: int) -> int:
    """The seed of a teacher ``shift`` places away from its student's (BAN's peer): ``seed + 1000 * shift``. A
    peer of the student's own seed would share its initialisation and data order; the next student seed's CE
    run (the former choice, wrapping round at the last seed) made BAN's differences to CE dependent across
    seeds (the peer of seed s was the CE cell's seed s + 1). A peer of seed + 1000 is a run of its own."""
    return seed + 1000 * shift if shift else seed


def _base_spec(config: Config, dataset_key: str, budget_key: str) -> RunSettings:
    """The run-spec settings shared by every run of a dataset and budget that determine its numbers (where
    the data lives is a job option, not the run's identity)."""
    return RunSettings(config.datasets[dataset_key], config.budgets[budget_key], config.performance)


def warmup_summary(config: Config) -> list[str]:
    """One line per warm-up the plan chose, e.g. ``warm-up: 1 of 3 epochs (warmup_fraction 0.34 of
    budget 'resnet'): LE(Grad-CAM), LE-Permut``."""
    chosen: dict[tuple[str, float], list[str]] = {}
    for _, view, group in config.located_groups():
        for label in group.trained_labels(view.methods):
            fraction = group.variant(label, config.methods).warmup_fraction
            if fraction is not None:
                chosen.setdefault((group.budget, fraction), []).append(label)
    lines = []
    for (budget, fraction), labels in chosen.items():
        epochs = config.budgets[budget].epochs
        lines.append(f"warm-up: {warmup_epochs(fraction, epochs)} of {epochs} epochs (warmup_fraction {fraction:g} "
                     f"of budget {budget!r}): {', '.join(dict.fromkeys(labels))}")
    return lines
