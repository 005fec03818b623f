"""From a validated config to the set of runs and the tables that view them (pure functions).

A run is identified by what it computes: dataset, model, budget, method with its hyper-parameters,
seed. The CE baseline of resnet14 shown in Tables 2 and 6 is one run. LE runs that share a model,
budget, seed and warm-up length share one warm-up run, which they name as their input.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .catalog import registry_catalog

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


RUN_KINDS = ("train", "teacher", "student", "warmup", "stage2")


class ConfigError(ValueError):
    """A config value is wrong; the message names the key."""


@dataclass
class Run:
    run_id: str
    spec: dict[str, Any]  # a RunSpec as a dict, paths relative to the working directory
    kind: str  # one of RUN_KINDS: which rule trains it
    depends_on: list[str] = field(default_factory=list)
    selection: str | None = None  # id of the Selection whose chosen hyper-parameters it trains with


@dataclass
class Selection:
    """A hyper-parameter sweep: grid points x sweep seeds, scored on the validation split. The final
    runs of the cell read the chosen point from ``path`` (written by ``introspect select``)."""

    selection_id: str
    label: str  # method label, e.g. "Dropout"
    group: str  # model group label, e.g. "ResNet14"
    grid: list[dict[str, Any]]
    candidates: list[list[str]]  # run ids per grid point (one per sweep seed)
    metric: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Cell:
    group: str  # row/column label of the model (e.g. "ResNet14")
    method: str  # method label (e.g. "LE(Grad-CAM)")
    model: str
    paper_dataset: str | None
    run_ids: list[str]  # one per seed
    selection: str | None = None  # path of the selection file its hyper-parameters come from


@dataclass
class TableSpec:
    name: str
    config: dict[str, Any]
    cells: list[Cell]
    settings: dict[str, Any] = field(default_factory=dict)  # for the table's footer
    teachers: dict[str, list[str]] = field(default_factory=dict)  # teacher label -> its run ids

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config, "settings": self.settings,
                "cells": [c.__dict__ for c in self.cells], "teachers": self.teachers}


@dataclass
class FigureSpec:
    """A figure: ``panels`` (one trained run each, for explanation figures) or ``cells`` (seeds of
    runs, for the accuracy figure)."""

    name: str
    config: dict[str, Any]
    panels: list[dict[str, Any]] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    def run_ids(self) -> list[str]:
        return sorted({p["run_id"] for p in self.panels} | {r for c in self.cells for r in c.run_ids})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config, "panels": self.panels,
                "cells": [c.__dict__ for c in self.cells]}


@dataclass
class AnalysisSpec:
    """Students of some tables analysed against their group's teacher (``introspect analyse``)."""

    name: str
    config: dict[str, Any]
    seeds: list[int]
    pairs: list[dict[str, Any]]  # table, group, method, run_id, teacher_run_id
    figure_pairs: list[dict[str, Any]]  # first seed of each method of the first group

    def run_ids(self) -> list[str]:
        return sorted({p[k] for p in self.pairs for k in ("run_id", "teacher_run_id")})

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Plan:
    config: dict[str, Any]
    runs: dict[str, Run]
    tables: dict[str, TableSpec]
    selections: dict[str, Selection] = field(default_factory=dict)
    figures: dict[str, FigureSpec] = field(default_factory=dict)
    analyses: dict[str, AnalysisSpec] = field(default_factory=dict)

    def selection_path(self, selection_id: str) -> str:
        return self.selections[selection_id].path

    @property
    def runs_dir(self) -> Path:
        return Path(self.config["results_dir"]) / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def ids(self, kind: str) -> list[str]:
        return sorted(r for r, run in self.runs.items() if run.kind == kind)

    def run_seconds(self, run_id: str) -> float:
        """Estimated GPU seconds of a run, from config ``cluster`` (per-model epoch cost, LE explainer cost)."""
        cluster = self.config["cluster"]
        spec = self.runs[run_id].spec
        per_epoch = cluster["epoch_seconds"].get(spec["model"], cluster["epoch_seconds"].get("default", 30))
        factor = cluster["explainer_cost"].get(spec["method"].get("explainer"), 1.0)
        factor *= cluster["method_cost"].get(spec["method"]["name"], 1.0)
        return _run_epochs(spec) * per_epoch * factor

    def runtime_minutes(self, run_id: str) -> int:
        """The SLURM time limit to request: the estimate times a safety margin, never below a floor."""
        cluster = self.config["cluster"]
        minutes = self.run_seconds(run_id) * cluster["runtime_margin"] / 60
        return max(cluster["min_runtime_minutes"], int(math.ceil(minutes)))

    def summary(self) -> dict[str, Any]:
        per_table = {name: len({r for c in t.cells for r in c.run_ids}) for name, t in self.tables.items()}
        per_table.update({name: len(f.run_ids()) for name, f in self.figures.items()})
        per_table.update({name: len(a.run_ids()) for name, a in self.analyses.items()})
        kinds = {kind: len(self.ids(kind)) for kind in RUN_KINDS}
        sweep_runs = {r for sel in self.selections.values() for ids in sel.candidates for r in ids}
        epochs = sum(_run_epochs(run.spec) for run in self.runs.values())
        gpu_hours = sum(self.run_seconds(r) for r in self.runs) / 3600
        return {"runs": len(self.runs), "by_kind": kinds, "runs_per_table": per_table, "epochs": epochs,
                "sweep_runs": len(sweep_runs), "selections": len(self.selections), "gpu_hours": gpu_hours}


def _run_epochs(spec: dict[str, Any]) -> int:
    """Epochs a run trains itself (a Stage-2 run starts after its warm-up's epochs)."""
    end = spec.get("stop_epoch") or spec["budget"]["epochs"]
    start = spec["method"].get("warmup_epochs", 0) if spec.get("init_from") else 0
    return end - start


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except OSError as error:
        raise ConfigError(f"cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"it must hold a mapping of config keys, not a {type(config).__name__}")
    if overrides:
        config = _deep_merge(config, overrides)
    return config


def _deep_merge(base: dict, extra: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Check ``config`` against the JSON schema, then the cross-references a schema cannot express
    (against the registries' catalog, :mod:`introspect.catalog`, which needs no torch).

    Returns the config with schema defaults filled in. Raises :class:`ConfigError` naming the key.
    """
    import jsonschema

    with open(schema_path) as handle:
        schema = yaml.safe_load(handle)
    config = copy.deepcopy(config)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = _with_defaults(validator_cls)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key(e.absolute_path)}: {e.message}{_hint(e)}" for e in errors[:10]]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    _check_references(config)
    return config


def _hint(error) -> str:
    if error.validator == "type" and error.validator_value == "boolean" and str(error.instance).lower() in ("true", "false"):
        return " (snakemake --config reads only True and False as booleans)"
    return ""


def _key(path) -> str:
    parts = []
    for part in path:
        parts.append(f"[{part}]" if isinstance(part, int) else (("." if parts else "") + str(part)))
    return "".join(parts) or "(top level)"


def _with_defaults(validator_cls):
    """A validator that also fills in the schema's ``default`` values (JSON Schema doesn't)."""
    import jsonschema

    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


def _check_references(config: dict[str, Any]) -> None:
    for name, dataset in config["datasets"].items():
        if dataset.get("split") == "per_seed" and dataset["source"] not in ("digits", "mnist5k"):
            raise ConfigError(f"datasets.{name}.split: {dataset['source']} ships its own test set; "
                              "per_seed applies only to digits and mnist5k")
    catalog = registry_catalog()
    for label, variant in config["methods"].items():
        name = variant["method"]
        try:
            known = set(catalog.method(name).hyperparameters)
        except KeyError as error:
            raise ConfigError(f"methods.{label}.method: {error.args[0]}") from None
        for key in [k for k in variant if k not in ("method", "sweep")] + [f"sweep.{k}" for k in variant.get("sweep", {})]:
            if key.removeprefix("sweep.") not in known | {"warmup_fraction"}:
                raise ConfigError(f"methods.{label}.{key}: method {name!r} has no such hyper-parameter "
                                  f"(it accepts: {', '.join(sorted(known))})")
    models = set(catalog.models)
    for name, teacher in config.get("teachers", {}).items():
        where = f"teachers.{name}"
        if teacher["model"] not in models:
            raise ConfigError(f"{where}.model: unknown model {teacher['model']!r}")
        if teacher["budget"] not in config["budgets"]:
            raise ConfigError(f"{where}.budget: {teacher['budget']!r} is not under budgets")
        if teacher["method"] not in config["methods"]:
            raise ConfigError(f"{where}.method: {teacher['method']!r} is not defined under methods")
        if teacher.get("teacher") and teacher["teacher"] not in config["teachers"]:
            raise ConfigError(f"{where}.teacher: {teacher['teacher']!r} is not under teachers")
    for table, t in config["tables"].items():
        where = f"tables.{table}"
        _check_groups(config, where, t, _named(where, t, "groups"), t["methods"] + t.get("compare_to", []), models)
    for name, figure in config["figures"].items():
        where = f"figures.{name}"
        groups = _named(where, figure, "groups") + _named(where, figure, "panels")
        labels = figure.get("methods", []) + [p["method"] for p in figure.get("panels", [])]
        _check_groups(config, where, figure, groups, labels, models)


def _named(where: str, container: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{where}.{key}[{i}]", group) for i, group in enumerate(container.get(key, []))]


def _check_groups(config: dict[str, Any], where: str, container: dict[str, Any],
                  groups: list[tuple[str, dict[str, Any]]], labels: list[str], models: set[str]) -> None:
    if container["dataset"] not in config["datasets"]:
        raise ConfigError(f"{where}.dataset: {container['dataset']!r} is not under datasets")
    for label in labels:
        if label not in config["methods"]:
            raise ConfigError(f"{where}: method {label!r} is not defined under methods")
    for at, group in groups:
        if group.get("dataset", container["dataset"]) not in config["datasets"]:
            raise ConfigError(f"{at}.dataset: {group['dataset']!r} is not under datasets")
        if group["model"] not in models:
            raise ConfigError(f"{at}.model: unknown model {group['model']!r} (known: {', '.join(sorted(models))})")
        if group["budget"] not in config["budgets"]:
            raise ConfigError(f"{at}.budget: {group['budget']!r} is not under budgets")
        if group.get("teacher") and group["teacher"] not in config.get("teachers", {}):
            raise ConfigError(f"{at}.teacher: {group['teacher']!r} is not under teachers")
        for label, name in group.get("teacher_overrides", {}).items():
            if name not in config.get("teachers", {}):
                raise ConfigError(f"{at}.teacher_overrides.{label}: {name!r} is not under teachers")
        for label in list(group.get("method_overrides", {})) + group.get("exclude", []):
            if label not in container.get("methods", [label]):
                raise ConfigError(f"{at}: {label!r} is not one of the table's methods")


def build_plan(config: dict[str, Any]) -> Plan:
    """All runs the config's tables and figures need, their dependencies, sweeps, and the cells."""
    config = validate_config(config)
    builder = _Builder(config, _methods_needing_a_teacher(config))
    tables: dict[str, TableSpec] = {}
    for table_name, table in config["tables"].items():
        cells, teachers = [], {}
        for group in table["groups"]:
            for label in table["methods"]:
                if label in group.get("exclude", []):
                    continue
                cell, teacher = builder.cell(f"tables.{table_name}", table, group, label)
                cells.append(cell)
                if teacher:
                    teachers[teacher[0]] = teacher[1]
        budgets = {g["budget"]: config["budgets"][g["budget"]] for g in table["groups"]}
        datasets = _ordered_unique([g.get("dataset", table["dataset"]) for g in table["groups"]])
        settings = {"dataset": ", ".join(datasets), "seeds": config["seeds"], "budgets": budgets,
                    "methods": {m: _shown_variant(config["methods"][m], config["sweeps"]["use"]) for m in table["methods"]},
                    "selection": {"use": config["sweeps"]["use"], "metric": config["sweeps"]["metric"],
                                  "seeds": config["sweeps"]["seeds"]}}
        tables[table_name] = TableSpec(table_name, table, cells, settings, teachers)
    figures = {name: builder.figure(name, figure) for name, figure in config["figures"].items()}
    analyses = {name: _analysis(builder, name, analysis, tables) for name, analysis in config["analyses"].items()}
    return Plan(config, builder.runs, tables, builder.selections, figures, analyses)


def _analysis(builder: "_Builder", name: str, analysis: dict[str, Any], tables: dict[str, TableSpec]) -> AnalysisSpec:
    """Every student of the named tables (all seeds) paired with its group's teacher of the same seed."""
    config, pairs = builder.config, []
    for table_name in analysis["tables"]:
        where = f"analyses.{name}.tables"
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
            for seed, run_id in zip(config["seeds"], cell.run_ids):
                teacher_id = _add_teacher_run(builder.runs, config, dataset, group["teacher"], seed)
                pairs.append({"table": table_name, "group": cell.group, "method": cell.method,
                              "run_id": run_id, "teacher_run_id": teacher_id})
    shown_table = analysis.get("figure_table", analysis["tables"][0])
    if shown_table not in analysis["tables"]:
        raise ConfigError(f"analyses.{name}.figure_table: {shown_table!r} is not one of its tables")
    shown = [p for p in pairs if p["table"] == shown_table]
    figure_pairs = [p for p in shown if p["group"] == shown[0]["group"]
                    and p["run_id"].endswith(f"/seed{config['seeds'][0]}")] if shown else []
    return AnalysisSpec(name, analysis, config["seeds"], pairs, figure_pairs)


def _shown_variant(variant: dict[str, Any], use: str) -> dict[str, Any]:
    """A method variant as a table's notes show it: swept values as their grid (unless forced)."""
    shown = {k: v for k, v in variant.items() if k != "sweep"}
    if use == "validation":
        shown.update({k: f"swept over {values}" for k, values in variant.get("sweep", {}).items()})
    return shown


class _Builder:
    """Accumulates the runs and sweeps of a plan; a run or sweep needed twice is added once."""

    def __init__(self, config: dict[str, Any], students: set[str]):
        self.config = config
        self.students = students
        self.runs: dict[str, Run] = {}
        self.selections: dict[str, Selection] = {}

    def cell(self, where: str, container: dict[str, Any], group: dict[str, Any], label: str,
             seeds: list[int] | None = None) -> tuple[Cell, tuple[str, list[str]] | None]:
        """The runs of one method on one model group (one per seed), with its teacher and sweep."""
        config = self.config
        dataset = group.get("dataset", container["dataset"])
        variant = {**config["methods"][label], **group.get("method_overrides", {}).get(label, {})}
        teacher = group.get("teacher_overrides", {}).get(label, group.get("teacher"))
        seeds = config["seeds"] if seeds is None else seeds
        teacher_for = lambda seed: None  # noqa: E731
        teacher_caption = None
        if label in self.students:
            if not teacher:
                raise ConfigError(f"{where}: {label} needs a teacher; give group {group['label']!r} a "
                                  "`teacher:` (one of the config's teachers)")
            teacher_for = lambda seed: _add_teacher_run(self.runs, config, dataset, teacher, seed)  # noqa: E731
            caption = f"{config['teachers'][teacher]['model']} ({teacher})"
            teacher_caption = (caption, sorted({teacher_for(seed) for seed in seeds}))
        sweep = variant.pop("sweep", None)
        selection = None
        if sweep and config["sweeps"]["use"] == "validation":
            selection = self._sweep(dataset, group, label, variant, sweep, teacher_for)
        ids = [_add_runs(self.runs, config, dataset, group, variant, seed, teacher_id=teacher_for(seed),
                         selection=selection) for seed in seeds]
        paper_dataset = group.get("paper_dataset", container.get("paper_dataset"))
        cell = Cell(group["label"], label, group["model"], paper_dataset, ids,
                    selection.path if selection else None)
        return cell, teacher_caption

    def _sweep(self, dataset: str, group: dict[str, Any], label: str, variant: dict[str, Any],
               sweep: dict[str, list[Any]], teacher_for) -> Selection:
        sweeps = self.config["sweeps"]
        keys = sorted(sweep)
        grid = [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]
        candidates = [[_add_runs(self.runs, self.config, dataset, group, {**variant, **point}, seed,
                                 teacher_id=teacher_for(seed)) for seed in sweeps["seeds"]] for point in grid]
        identity = json.dumps([candidates, sweeps["metric"]], sort_keys=True)
        digest = hashlib.sha1(identity.encode()).hexdigest()[:8]
        budget = self.config["budgets"][group["budget"]]
        selection_id = (f"{dataset}/{group['model']}/{group['budget']}-e{budget['epochs']}/"
                        f"{_slug_label(label)}-{'_'.join(keys)}-{digest}")
        path = str(Path(self.config["results_dir"]) / "selection" / f"{selection_id}.json")
        selection = Selection(selection_id, label, group["label"], grid, candidates, sweeps["metric"], path)
        self.selections.setdefault(selection_id, selection)
        return selection

    def figure(self, name: str, figure: dict[str, Any]) -> FigureSpec:
        where = f"figures.{name}"
        spec = FigureSpec(name, figure)
        seed = self.config["seeds"][0]
        for panel in figure.get("panels", []):
            cell, _ = self.cell(where, figure, panel, panel["method"], seeds=[seed])
            spec.panels.append({**panel, "run_id": cell.run_ids[0],
                                "dataset": panel.get("dataset", figure["dataset"])})
        for group in figure.get("groups", []):
            for label in figure.get("methods", []):
                spec.cells.append(self.cell(where, figure, group, label)[0])
        return spec


def _slug_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", label).strip("_")


def _ordered_unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _methods_needing_a_teacher(config: dict[str, Any]) -> set[str]:
    """Labels of method variants whose method reads a teacher."""
    catalog = registry_catalog()
    return {label for label, v in config["methods"].items() if catalog.method(v["method"]).needs_teacher}


def _add_teacher_run(runs: dict[str, Run], config, dataset_key: str, name: str, seed: int,
                     chain: tuple[str, ...] = ()) -> str:
    """The teacher run a student of ``seed`` learns from: one shared teacher or one per student seed.
    A teacher may have a teacher of its own (TAKD's assistants: ResNet26 -> ResNet20 -> ResNet14)."""
    if name in chain:
        raise ConfigError(f"teachers.{name}: teaches itself through {' -> '.join((*chain, name))}")
    teacher = config["teachers"][name]
    teacher_seed = config["seeds"][0] if teacher["shared"] else _shifted_seed(config["seeds"], seed, teacher["seed_shift"])
    if teacher_seed != seed and config["datasets"][dataset_key].get("split") == "per_seed":
        raise ConfigError(f"teachers.{name}: dataset {dataset_key!r} draws a test split per seed (split: "
                          f"per_seed), so a teacher of seed {teacher_seed} was trained on test images of its "
                          f"student of seed {seed}; give it `shared: false` and `seed_shift: 0`")
    own_teacher = None
    if teacher.get("teacher"):
        own_teacher = _add_teacher_run(runs, config, dataset_key, teacher["teacher"], seed, (*chain, name))
    group = {"model": teacher["model"], "budget": teacher["budget"]}
    return _add_runs(runs, config, dataset_key, group, config["methods"][teacher["method"]], teacher_seed,
                     teacher_id=own_teacher, kind="teacher")


def _shifted_seed(seeds: list[int], seed: int, shift: int) -> int:
    """The seed ``shift`` places after ``seed`` in ``seeds`` (cyclically). A BAN peer of the student's
    own seed would share its initialisation and data order, so peers use the next seed's CE run."""
    if not shift:
        return seed
    if seed in seeds and len(seeds) > 1:
        return seeds[(seeds.index(seed) + shift) % len(seeds)]
    return seed + 1000 * shift


def _add_runs(runs: dict[str, Run], config, dataset_key: str, group, variant: dict, seed: int, *,
              teacher_id: str | None = None, kind: str | None = None, selection: Selection | None = None) -> str:
    budget = dict(config["budgets"][group["budget"]])
    hyper = {k: v for k, v in variant.items() if k not in ("method", "sweep")}
    if selection is not None:  # the swept values come from the selection file when the run starts
        for key in selection.grid[0]:
            hyper.pop(key, None)
    if "warmup_fraction" in hyper:
        hyper["warmup_epochs"] = int(round(hyper.pop("warmup_fraction") * budget["epochs"]))
    prefix = f"{dataset_key}/{group['model']}/{group['budget']}-e{budget['epochs']}"
    base = _base_spec(config, dataset_key, group["model"], budget, seed)
    spec = {**base, "method": {"name": variant["method"], **hyper}}
    slug = _slug(variant["method"], hyper)
    if selection is not None:
        slug += f"-sel_{selection.selection_id.rsplit('-', 1)[1]}"
        spec["hyperparameters_from"] = selection.path
    depends_on = []
    if teacher_id:
        # which teacher taught it is part of what a student run computes (model + digest of its run id)
        digest = hashlib.sha1(teacher_id.encode()).hexdigest()[:8]
        slug += f"-from_{teacher_id.split('/')[1]}-{digest}"
        spec["teacher"] = str(Path(config["results_dir"]) / "runs" / teacher_id / "model.pt")
        depends_on.append(teacher_id)
    run_id = f"{prefix}/{slug}/seed{seed}"
    warmup = hyper.get("warmup_epochs", 0)
    if warmup > 0:
        warmup_id = f"{prefix}/warmup-w{warmup}/seed{seed}"
        runs.setdefault(warmup_id, Run(warmup_id, {**base, "run_id": warmup_id, "method": {"name": "ce"},
                                                   "stop_epoch": warmup}, "warmup"))
        spec["init_from"] = str(Path(config["results_dir"]) / "runs" / warmup_id / "model.pt")
        runs.setdefault(run_id, Run(run_id, {**spec, "run_id": run_id}, "stage2", [warmup_id, *depends_on],
                                    selection and selection.selection_id))
    else:
        kind = kind or ("student" if teacher_id else "train")
        runs.setdefault(run_id, Run(run_id, {**spec, "run_id": run_id}, kind, depends_on,
                                    selection and selection.selection_id))
    return run_id


def _base_spec(config, dataset_key: str, model: str, budget: dict, seed: int) -> dict[str, Any]:
    dataset = dict(config["datasets"][dataset_key])
    dataset["name"] = dataset.pop("source")
    dataset["root"] = config["data_root"]
    return {"dataset": dataset, "model": model, "budget": budget, "seed": seed,
            "eval_batch_size": config["eval_batch_size"], "performance": dict(config["performance"])}


def _slug(method: str, hyper: dict[str, Any]) -> str:
    parts = [method] + [f"{k}{_fmt(v)}" for k, v in sorted(hyper.items())]
    return "-".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_spec_json(plan: Plan, run_id: str, fail_at_epoch: int | None = None) -> str:
    spec = dict(plan.runs[run_id].spec)
    if fail_at_epoch is not None:
        spec["fail_at_epoch"] = fail_at_epoch
    return json.dumps(spec, sort_keys=True)
