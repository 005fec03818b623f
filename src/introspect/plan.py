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
from dataclasses import dataclass, field
from typing import Any

from .catalog import registry_catalog
from .config import ConfigError, load_config, reject, validate_config
from .paper_claims import config_claims
from .runs import RUN_KINDS, ResultsLayout, RunRecord, label_slug, make_run_id, method_slug
from .specs import (
    AnalysisSpec,
    Cell,
    ClaimSettings,
    ClaimSpec,
    ClaimsSpec,
    FigureSpec,
    Panel,
    Selection,
    StudentPair,
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
        return ResultsLayout(self.config["results_dir"])

    def ids(self, kind: str) -> list[str]:
        return sorted(r for r, run in self.runs.items() if run.kind == kind)

    def unfinished_runs(self) -> list[str]:
        return [r for r in sorted(self.runs) if not self.runs[r].files.is_finished()]


def build_plan(config: dict[str, Any]) -> Plan:
    """All runs the config's tables, figures and analyses need, their dependencies, sweeps, and cells."""
    config = validate_config(config)
    builder = _Builder(config, _methods_needing_a_teacher(config))
    tables = {name: _table(builder, name, table) for name, table in config["tables"].items()}
    figures = {name: builder.figure(name, figure) for name, figure in config["figures"].items()}
    analyses = {name: _analysis(builder, name, analysis, tables) for name, analysis in config["analyses"].items()}
    for table in tables.values():  # after every view is planned: reference runs are only looked up
        table.references = _references(builder, table)
    reject(_extra_seed_problems(config, tables, figures))
    claim_entries = config_claims(config)
    claims = _claims(config, claim_entries, tables, figures, builder.runs) if claim_entries else None
    plan = Plan(config, builder.runs, tables, builder.selections, figures, analyses, claims)
    reject(output_problems(plan))
    return plan


def _catalogue_key(settings: dict[str, Any], name: str) -> str:
    """The config key that brought a catalogue claim in, for its error messages."""
    if "only" in settings:
        return f"claim_settings.only[{settings['only'].index(name)}] ({name} in {settings['catalogue']})"
    return f"claim_settings.catalogue ({name} in {settings['catalogue']})"


def _extra_seed_problems(config: dict[str, Any], tables: dict[str, TableSpec],
                         figures: dict[str, FigureSpec]) -> list[str]:
    """extra_seeds may only name cells the config has (an overlay for another config is a mistake)."""
    cells = {(view, c.group, c.method) for view, spec in {**figures, **tables}.items() for c in spec.cells}
    return [f"extra_seeds.{view}.{group}.{method}: no such cell (table or accuracy figure, group, method)"
            for view, groups in config["extra_seeds"].items() for group, methods in groups.items()
            for method in methods if (view, group, method) not in cells]


def _claims(config: dict[str, Any], entries: list[dict[str, Any]], tables: dict[str, TableSpec],
            figures: dict[str, FigureSpec], runs: dict[str, RunRecord]) -> ClaimsSpec:
    """The claims (the catalogue's that apply, then the config's own) with their views' cells; every name a
    claim uses must exist in this config."""
    views = {**{n: f for n, f in figures.items() if f.kind == "accuracy"}, **tables}
    claims, cells, names = [], {}, set()
    own = len(entries) - len(config["claims"])
    for i, claim in enumerate(entries):
        where = f"claims[{i - own}]" if i >= own else _catalogue_key(config["claim_settings"], claim["name"])
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
        group = next(g for g in view.config["groups"] if g["label"] == claim["group"])
        dataset = group.get("dataset", view.config["dataset"])
        claims.append(ClaimSpec(
            claim["name"], claim["table"], claim["group"], group["model"], claim["a"], claim["b"],
            claim["direction"], claim.get("margin"), claim["family"], claim["text"],
            config["datasets"][dataset]["source"], group_cells[0].paper_dataset,
            view.config.get("paper_table"), view.config.get("metric", "accuracy")))
        known = {(c.group, c.method) for c in cells.get(claim["table"], [])}
        cells.setdefault(claim["table"], []).extend(c for c in group_cells if (c.group, c.method) not in known)
    references = {view: tables[view].references for view in cells if view in tables and tables[view].references}
    teachers = {t for view in cells.values() for c in view for t in c.teacher_run_ids}
    teacher_of = {t: runs[t].teacher for t in sorted(teachers) if runs[t].teacher}
    settings = {k: v for k, v in config["claim_settings"].items() if k in ClaimSettings.__dataclass_fields__}
    baselines = {view: getattr(views[view], "baseline", None) for view in cells}
    return ClaimsSpec(config["results_dir"], claims, cells, references,
                      ClaimSettings(**settings, seeds=tuple(config["seeds"])),
                      {view: b for view, b in baselines.items() if b}, teacher_of)


def _table(builder: _Builder, name: str, table: dict[str, Any]) -> TableSpec:
    config = builder.config
    cells, teachers = [], {}
    for group in table["groups"]:
        for label in table["methods"]:
            if label in group.get("exclude", []):
                continue
            cell, teacher = builder.cell(f"tables.{name}", table, group, label, seeds=builder.seeds(name, group, label))
            cells.append(cell)
            if teacher:
                teachers[teacher[0]] = teacher[1]
    budgets = {g["budget"]: config["budgets"][g["budget"]] for g in table["groups"]}
    datasets = list(dict.fromkeys(g.get("dataset", table["dataset"]) for g in table["groups"]))
    settings = {"dataset": ", ".join(datasets), "seeds": config["seeds"], "budgets": budgets,
                "methods": {m: _shown_variant(config["methods"][m], config["sweeps"]["use"]) for m in table["methods"]},
                "selection": {"use": config["sweeps"]["use"], "metric": config["sweeps"]["metric"],
                              "seeds": config["sweeps"]["seeds"]}}
    return TableSpec(name, table, cells, config["results_dir"], settings, teachers)


REFERENCE = "CE"  # the method label every sanity comparison is made against


def _references(builder: _Builder, table: TableSpec) -> dict[str, list[str]]:
    """For each group without a CE cell: the CE runs of its model, dataset and budget, where another view
    has them planned anyway (Table 5's students against Table 2's CE). No run is added for this."""
    variant = builder.config["methods"].get(REFERENCE)
    if not variant or variant.get("sweep"):
        return {}
    hyper = {k: v for k, v in variant.items() if k != "method"}
    references = {}
    for group in table.config["groups"]:
        if any(c.group == group["label"] and c.method == REFERENCE for c in table.cells):
            continue
        budget = builder.config["budgets"][group["budget"]]
        ids = [make_run_id(group.get("dataset", table.config["dataset"]), group["model"], group["budget"],
                           budget["epochs"], method_slug(variant["method"], hyper), seed)
               for seed in builder.config["seeds"]]
        if all(run_id in builder.runs for run_id in ids):
            references[group["label"]] = ids
    return references


def _analysis(builder: _Builder, name: str, analysis: dict[str, Any], tables: dict[str, TableSpec]) -> AnalysisSpec:
    """Every student of the named tables (all seeds) paired with its group's teacher of the same seed."""
    config, pairs = builder.config, []
    where = f"analyses.{name}.tables"
    for table_name in analysis["tables"]:
        if table_name not in tables:
            raise ConfigError(f"{where}: {table_name!r} is not under tables")
        table = tables[table_name]
        groups = {g["label"]: g for g in table.config["groups"]}
        for cell in table.cells:
            if analysis.get("methods") and cell.method not in analysis["methods"]:
                continue
            group = groups[cell.group]
            if not group.get("teacher"):
                raise ConfigError(f"{where}: group {cell.group!r} of {table_name} has no teacher to compare with")
            dataset = group.get("dataset", table.config["dataset"])
            for seed, run_id in zip(cell.seeds, cell.run_ids):
                teacher_id = builder.teacher_run(dataset, group["teacher"], seed)
                pairs.append(StudentPair(table_name, cell.group, cell.method, run_id, teacher_id, seed))
    shown_table = analysis.get("figure_table", analysis["tables"][0])
    if shown_table not in analysis["tables"]:
        raise ConfigError(f"analyses.{name}.figure_table: {shown_table!r} is not one of its tables")
    shown = [p for p in pairs if p.table == shown_table]
    figure_pairs = [p for p in shown if p.group == shown[0].group and p.seed == config["seeds"][0]] if shown else []
    return AnalysisSpec(name, analysis, config["results_dir"], config["seeds"], pairs, figure_pairs)


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

    def seeds(self, view: str, group: dict[str, Any], label: str) -> list[int]:
        """The config's seeds plus the cell's ``extra_seeds`` (claims_next.yaml: seeds its claims need)."""
        extra = self.config["extra_seeds"].get(view, {}).get(group["label"], {}).get(label, [])
        return [*self.config["seeds"], *(s for s in extra if s not in self.config["seeds"])]

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
        spec = FigureSpec(name, figure, self.config["results_dir"])
        seed = self.config["seeds"][0]
        for panel in figure.get("panels", []):
            cell, _ = self.cell(where, figure, panel, panel["method"], seeds=[seed])
            spec.panels.append(Panel(panel["label"], panel["model"], panel["method"], panel["explainer"],
                                     panel.get("dataset", figure["dataset"]), cell.run_ids[0]))
        for group in figure.get("groups", []):
            for label in figure.get("methods", []):
                spec.cells.append(self.cell(where, figure, group, label, seeds=self.seeds(name, group, label))[0])
        return spec

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
    """The run-spec settings shared by every run of a dataset and budget."""
    dataset = dict(config["datasets"][dataset_key])
    dataset["name"] = dataset.pop("source")
    dataset["root"] = config["data_root"]
    return {"dataset": dataset, "budget": budget, "eval_batch_size": config["eval_batch_size"],
            "performance": dict(config["performance"])}
