"""From a validated config to the run graph: every run (a :class:`~introspect.runs.RunRecord`) the
config's tables, figures and analyses need, the runs each one reads, and the views over them
(:mod:`introspect.specs`).

A run is identified by what it computes: dataset, model, budget, method with its hyper-parameters,
seed. The CE baseline of resnet14 shown in Tables 2 and 6 is one run. LE runs that share a model,
budget, seed and warm-up length share one warm-up run; students name their teacher's run, TAKD's
students an assistant that names its own teacher, BAN students the CE run of the next seed.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .catalog import registry_catalog
from .config import ConfigError, load_config, reject, validate_config
from .errors import InputError
from .runs import (
    DEFAULT_CONFIG_NAME,
    RUN_KINDS,
    ResultsLayout,
    RunOptions,
    RunRecord,
    label_slug,
    make_run_id,
    method_slug,
)
from .specs import (
    AnalysisSpec,
    Cell,
    ClaimSpec,
    ClaimsSpec,
    FigureSpec,
    Group,
    Panel,
    Selection,
    Setting,
    Settings,
    StudentPair,
    SweepSettings,
    TableNotes,
    TableSpec,
)
from .validation import output_problems, warmup_epochs

__all__ = ["ConfigError", "Plan", "build_plan", "load_config"]


@dataclass
class Plan:
    config: dict[str, Any]
    runs: dict[str, RunRecord]
    tables: dict[str, TableSpec]
    selections: dict[str, Selection] = field(default_factory=dict)
    figures: dict[str, FigureSpec] = field(default_factory=dict)
    analyses: dict[str, AnalysisSpec] = field(default_factory=dict)
    claims: ClaimsSpec | None = None

    @property
    def layout(self) -> ResultsLayout:
        return ResultsLayout(self.config["results_dir"], config_name(self.config))

    def ids(self, kind: str) -> list[str]:
        return sorted(r for r, run in self.runs.items() if run.kind == kind)

    def unfinished_runs(self) -> list[str]:
        return [r for r in sorted(self.runs) if not self.runs[r].files.is_finished()]

    @property
    def run_options(self) -> RunOptions:
        """How every job runs its record without changing its numbers (passed as CLI flags)."""
        return RunOptions(self.config["data_root"], self.config["eval_batch_size"])

    def spec(self, kind: str, name: str) -> Any:
        """One job's spec: ``kind`` is ``table``, ``figure``, ``analysis``, ``selection`` or ``claims``."""
        if kind == "claims":
            return self.claims
        return {"table": self.tables, "figure": self.figures, "analysis": self.analyses,
                "selection": self.selections}[kind][name]


def config_name(config: dict[str, Any]) -> str:
    """The name a config's views are kept under in ``results_dir`` (an overlay keeps its base's)."""
    return config.get("name", DEFAULT_CONFIG_NAME)


def build_plan(config: dict[str, Any]) -> Plan:
    """All runs the config's tables, figures and analyses need, their dependencies, sweeps, and cells."""
    config = validate_config(config)
    try:
        ResultsLayout(config["results_dir"], config_name(config))
    except InputError as error:
        raise ConfigError(str(error)) from None
    builder = _Builder(config, _methods_needing_a_teacher(config))
    tables = {name: _table(builder, name, table) for name, table in config["tables"].items()}
    figures = {name: builder.figure(name, figure) for name, figure in config["figures"].items()}
    analyses = {name: _analysis(builder, name, analysis, tables) for name, analysis in config["analyses"].items()}
    # after every view is planned: reference runs are only looked up
    tables = {name: replace(table, references=_references(builder, table)) for name, table in tables.items()}
    claims = _claims(config, tables, figures) if config["claims"] else None
    plan = Plan(config, builder.runs, tables, builder.selections, figures, analyses, claims)
    reject(output_problems(plan))
    reject(_path_problems(plan))
    return plan


def _path_problems(plan: Plan) -> list[str]:
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


def _claims(config: dict[str, Any], tables: dict[str, TableSpec], figures: dict[str, FigureSpec]) -> ClaimsSpec:
    """The claims with their views' cells; every name a claim uses must exist in this config."""
    views = {**{n: f for n, f in figures.items() if f.kind == "accuracy"}, **tables}
    claims, cells, names = [], {}, set()
    for i, claim in enumerate(config["claims"]):
        where = f"claims[{i}]"
        if claim["name"] in names:
            raise ConfigError(f"{where}.name: {claim['name']!r} is used by another claim")
        names.add(claim["name"])
        view = views.get(claim["table"])
        if view is None:
            raise ConfigError(f"{where}.table: {claim['table']!r} is neither a table nor an accuracy figure "
                              f"of this config (known: {', '.join(sorted(views))})")
        group_cells = [c for c in view.cells if c.group == claim["group"]]
        if not group_cells:
            groups = sorted({c.group for c in view.cells})
            raise ConfigError(f"{where}.group: {claim['group']!r} is not a group of {claim['table']} "
                              f"(its groups: {', '.join(groups)})")
        for key in ("a", "b"):
            if claim[key] not in {c.method for c in group_cells}:
                raise ConfigError(f"{where}.{key}: {claim[key]!r} is not a method of {claim['table']} "
                                  f"group {claim['group']!r}")
        if claim["a"] == claim["b"]:
            raise ConfigError(f"{where}.b: a claim compares two different methods")
        if (claim["direction"] == "equivalent") != ("margin" in claim):
            raise ConfigError(f"{where}.margin: an equivalent claim needs a margin, a greater claim has none")
        container = config["tables"].get(claim["table"]) or config["figures"][claim["table"]]
        group = next(g for g in container["groups"] if g["label"] == claim["group"])
        dataset = group.get("dataset", container["dataset"])
        table = tables.get(claim["table"])
        claims.append(ClaimSpec(
            claim["name"], claim["table"], claim["group"], group["model"], claim["a"], claim["b"],
            claim["direction"], claim.get("margin"), claim["family"], claim["text"],
            config["datasets"][dataset]["source"], group_cells[0].paper_dataset,
            table.paper_table if table else None, table.metric if table else "accuracy"))
        known = {(c.group, c.method) for c in cells.get(claim["table"], [])}
        cells.setdefault(claim["table"], []).extend(c for c in group_cells if (c.group, c.method) not in known)
    references = {view: tables[view].references for view in cells if view in tables and tables[view].references}
    baselines = {view: tables[view].baseline for view in cells if view in tables}
    return ClaimsSpec(config["results_dir"], claims, cells, references, baselines, config_name(config))


def _table(builder: _Builder, name: str, table: dict[str, Any]) -> TableSpec:
    config = builder.config
    cells, teachers = [], {}
    for group in table["groups"]:
        for label in table["methods"]:
            if label in group.get("exclude", []):
                continue
            cell, teacher = builder.cell(f"tables.{name}", table, group, label)
            cells.append(cell)
            if teacher:
                teachers[teacher[0]] = teacher[1]
    groups = [Group(g["label"], g["model"], g["budget"], g.get("dataset", table["dataset"]), g.get("teacher"))
              for g in table["groups"]]
    budgets = {g.budget: config["budgets"][g.budget] for g in groups}
    sweeps = config["sweeps"]
    notes = TableNotes(
        ", ".join(dict.fromkeys(g.dataset for g in groups)), list(config["seeds"]),
        [_settings(name, budget) for name, budget in budgets.items()],
        [_settings(m, _shown_variant(config["methods"][m], sweeps["use"])) for m in table["methods"]],
        SweepSettings(sweeps["use"], sweeps["metric"], list(sweeps["seeds"])))
    return TableSpec(name, table["title"], list(table["methods"]), groups, cells, config["results_dir"],
                     config_name(config), table.get("paper_table"), table["metric"], table["layout"],
                     list(table["compare_to"]), table.get("baseline", "CE"), table["other_implementations"], notes,
                     teachers)


def _settings(name: str, values: dict[str, Any]) -> Settings:
    return Settings(name, [Setting(k, str(v)) for k, v in values.items()])


def _references(builder: _Builder, table: TableSpec) -> dict[str, list[str]]:
    """For each group without a baseline cell: the baseline runs of its model, dataset and budget, where
    another view has them planned anyway (Table 5's students against Table 2's CE). No run is added."""
    variant = builder.config["methods"].get(table.baseline)
    if not variant or variant.get("sweep"):
        return {}
    hyper = {k: v for k, v in variant.items() if k != "method"}
    references = {}
    for group in table.groups:
        if any(c.group == group.label and c.method == table.baseline for c in table.cells):
            continue
        budget = builder.config["budgets"][group.budget]
        ids = [make_run_id(group.dataset, group.model, group.budget, budget["epochs"],
                           method_slug(variant["method"], hyper), seed)
               for seed in builder.config["seeds"]]
        if all(run_id in builder.runs for run_id in ids):
            references[group.label] = ids
    return references


def _analysis(builder: _Builder, name: str, analysis: dict[str, Any], tables: dict[str, TableSpec]) -> AnalysisSpec:
    """Every student of the named tables (all seeds) paired with its group's teacher of the same seed."""
    config, pairs = builder.config, []
    where = f"analyses.{name}.tables"
    for table_name in analysis["tables"]:
        if table_name not in tables:
            raise ConfigError(f"{where}: {table_name!r} is not under tables")
        table = tables[table_name]
        groups = {g.label: g for g in table.groups}
        for cell in table.cells:
            if analysis.get("methods") and cell.method not in analysis["methods"]:
                continue
            group = groups[cell.group]
            if not group.teacher:
                raise ConfigError(f"{where}: group {cell.group!r} of {table_name} has no teacher to compare with")
            for seed, run_id in zip(cell.seeds, cell.run_ids):
                teacher_id = builder.teacher_run(group.dataset, group.teacher, seed)
                pairs.append(StudentPair(table_name, cell.group, cell.method, run_id, teacher_id, seed))
    shown_table = analysis.get("figure_table", analysis["tables"][0])
    if shown_table not in analysis["tables"]:
        raise ConfigError(f"analyses.{name}.figure_table: {shown_table!r} is not one of its tables")
    shown = [p for p in pairs if p.table == shown_table]
    figure_pairs = [p for p in shown if p.group == shown[0].group and p.seed == config["seeds"][0]] if shown else []
    return AnalysisSpec(name, analysis["title"], config["results_dir"], list(config["seeds"]), pairs, figure_pairs,
                        list(analysis["fractions"]), analysis["images"],
                        config_name(config))


def _shown_variant(variant: dict[str, Any], use: str) -> dict[str, Any]:
    """A method variant as a table's notes show it: swept values as their grid (unless forced)."""
    shown = {k: v for k, v in variant.items() if k != "sweep"}
    if use == "validation":
        shown.update({k: f"swept over {values}" for k, values in variant.get("sweep", {}).items()})
    return shown


def _methods_needing_a_teacher(config: dict[str, Any]) -> set[str]:
    """Labels of method variants whose method reads a teacher."""
    catalog = registry_catalog()
    return {label for label, v in config["methods"].items() if catalog.method(v["method"]).needs_teacher}


class _Builder:
    """Accumulates the runs and sweeps of a plan; a run or sweep needed twice is added once."""

    def __init__(self, config: dict[str, Any], students: set[str]):
        self.config = config
        self.students = students
        self.runs: dict[str, RunRecord] = {}
        self.selections: dict[str, Selection] = {}

    def cell(self, where: str, container: dict[str, Any], group: dict[str, Any], label: str,
             seeds: list[int] | None = None) -> tuple[Cell, tuple[str, list[str]] | None]:
        """The runs of one method on one model group (one per seed), with its teacher and sweep."""
        config = self.config
        dataset = group.get("dataset", container["dataset"])
        variant = {**config["methods"][label], **group.get("method_overrides", {}).get(label, {})}
        teacher = group.get("teacher_overrides", {}).get(label, group.get("teacher"))
        seeds = config["seeds"] if seeds is None else seeds
        teacher_for: Callable[[int], str | None] = lambda seed: None  # noqa: E731
        teacher_caption = None
        if label in self.students:
            if not teacher:
                raise ConfigError(f"{where}: {label} needs a teacher; give group {group['label']!r} a "
                                  "`teacher:` (one of the config's teachers)")
            teacher_for = lambda seed: self.teacher_run(dataset, teacher, seed)  # noqa: E731
            caption = f"{config['teachers'][teacher]['model']} ({teacher})"
            teacher_caption = (caption, sorted({teacher_for(seed) for seed in seeds}))
        sweep = variant.pop("sweep", None)
        selection = None
        if sweep and config["sweeps"]["use"] == "validation":
            selection = self._sweep(dataset, group, label, variant, sweep, teacher_for)
        ids = [self.add_run(dataset, group, variant, seed, teacher_id=teacher_for(seed), selection=selection)
               for seed in seeds]
        paper_dataset = group.get("paper_dataset", container.get("paper_dataset"))
        teacher_ids = [t for t in (teacher_for(seed) for seed in seeds) if t]
        cell = Cell(group["label"], label, group["model"], paper_dataset, ids, list(seeds),
                    selection.selection_id if selection else None, teacher_ids)
        return cell, teacher_caption

    def _sweep(self, dataset: str, group: dict[str, Any], label: str, variant: dict[str, Any],
               sweep: dict[str, list[Any]], teacher_for) -> Selection:
        sweeps = self.config["sweeps"]
        keys = sorted(sweep)
        grid = [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]
        candidates = [[self.add_run(dataset, group, {**variant, **point}, seed, teacher_id=teacher_for(seed))
                       for seed in sweeps["seeds"]] for point in grid]
        identity = json.dumps([candidates, sweeps["metric"]], sort_keys=True)
        digest = hashlib.sha1(identity.encode()).hexdigest()[:8]
        budget = self.config["budgets"][group["budget"]]
        selection_id = (f"{dataset}/{group['model']}/{group['budget']}-e{budget['epochs']}/"
                        f"{label_slug(label)}-{'_'.join(keys)}-{digest}")
        selection = Selection(selection_id, label, group["label"], grid, candidates, sweeps["metric"],
                              self.config["results_dir"])
        return self.selections.setdefault(selection_id, selection)

    def figure(self, name: str, figure: dict[str, Any]) -> FigureSpec:
        where = f"figures.{name}"
        seed = self.config["seeds"][0]
        panels, cells = [], []
        for panel in figure.get("panels", []):
            cell, _ = self.cell(where, figure, panel, panel["method"], seeds=[seed])
            panels.append(Panel(panel["label"], panel["model"], panel["method"], panel["explainer"],
                                panel.get("dataset", figure["dataset"]), cell.run_ids[0]))
        for group in figure.get("groups", []):
            for label in figure.get("methods", []):
                cells.append(self.cell(where, figure, group, label)[0])
        return FigureSpec(name, figure["kind"], figure["title"], self.config["results_dir"], config_name(self.config),
                          figure.get("paper_figure"), figure.get("note"), figure["images"], panels, cells)

    def teacher_run(self, dataset: str, name: str, seed: int, chain: tuple[str, ...] = ()) -> str:
        """The teacher run a student of ``seed`` learns from: one shared teacher or one per student seed.
        A teacher may have a teacher of its own (TAKD's assistants: ResNet26 -> ResNet20 -> ResNet14)."""
        if name in chain:
            raise ConfigError(f"teachers.{name}: teaches itself through {' -> '.join((*chain, name))}")
        config = self.config
        teacher = config["teachers"][name]
        seeds = config["seeds"]
        teacher_seed = seeds[0] if teacher["shared"] else _shifted_seed(seeds, seed, teacher["seed_shift"])
        if teacher_seed != seed and config["datasets"][dataset].get("split") == "per_seed":
            raise ConfigError(f"teachers.{name}: dataset {dataset!r} draws a test split per seed (split: "
                              f"per_seed), so a teacher of seed {teacher_seed} was trained on test images of its "
                              f"student of seed {seed}; give it `shared: false` and `seed_shift: 0`")
        own_teacher = None
        if teacher.get("teacher"):
            own_teacher = self.teacher_run(dataset, teacher["teacher"], seed, (*chain, name))
        group = {"model": teacher["model"], "budget": teacher["budget"]}
        return self.add_run(dataset, group, config["methods"][teacher["method"]], teacher_seed,
                            teacher_id=own_teacher, kind="teacher")

    def add_run(self, dataset: str, group: dict[str, Any], variant: dict[str, Any], seed: int, *,
                teacher_id: str | None = None, kind: str | None = None, selection: Selection | None = None) -> str:
        config = self.config
        budget_key = group["budget"]
        budget = dict(config["budgets"][budget_key])
        hyper = {k: v for k, v in variant.items() if k not in ("method", "sweep")}
        if selection is not None:  # the swept values come from the selection file when the run starts
            for key in selection.grid[0]:
                hyper.pop(key, None)
        if "warmup_fraction" in hyper:
            hyper["warmup_epochs"] = warmup_epochs(hyper.pop("warmup_fraction"), budget["epochs"])
        slug = method_slug(variant["method"], hyper)
        if selection is not None:
            slug += f"-sel_{selection.selection_id.rsplit('-', 1)[1]}"
        if teacher_id:
            # which teacher taught it is part of what a student run computes (model + digest of its run id)
            digest = hashlib.sha1(teacher_id.encode()).hexdigest()[:8]
            slug += f"-from_{self.runs[teacher_id].model}-{digest}"
        run_id = make_run_id(dataset, group["model"], budget_key, budget["epochs"], slug, seed)
        common = {"results_dir": config["results_dir"], "dataset": dataset, "model": group["model"],
                  "budget": budget_key, "seed": seed, "spec": _base_spec(config, dataset, budget)}
        method = {"name": variant["method"], **hyper}
        warmup = hyper.get("warmup_epochs", 0)
        init_from = None
        if warmup > 0:
            init_from = make_run_id(dataset, group["model"], budget_key, budget["epochs"], f"warmup-w{warmup}", seed)
            self.runs.setdefault(init_from, RunRecord(init_from, "warmup", method={"name": "ce"},
                                                      stop_epoch=warmup, **common))
            kind = "stage2"
        kind = kind or ("student" if teacher_id else "train")
        assert kind in RUN_KINDS
        self.runs.setdefault(run_id, RunRecord(run_id, kind, method=method, teacher=teacher_id, init_from=init_from,
                                               selection=selection and selection.selection_id, **common))
        return run_id


def _shifted_seed(seeds: list[int], seed: int, shift: int) -> int:
    """The seed ``shift`` places after ``seed`` in ``seeds`` (cyclically). A BAN peer of the student's
    own seed would share its initialisation and data order, so peers use the next seed's CE run."""
    if not shift:
        return seed
    if seed in seeds and len(seeds) > 1:
        return seeds[(seeds.index(seed) + shift) % len(seeds)]
    return seed + 1000 * shift


def _base_spec(config: dict[str, Any], dataset_key: str, budget: dict[str, Any]) -> dict[str, Any]:
    """The run-spec settings shared by every run of a dataset and budget that determine its numbers."""
    dataset = dict(config["datasets"][dataset_key])
    dataset["name"] = dataset.pop("source")  # its location (data_root) is a job option, not the run's identity
    return {"dataset": dataset, "budget": budget, "performance": dict(config["performance"])}
