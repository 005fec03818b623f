"""From a validated config to the set of runs and the tables that view them (pure functions).

A run is identified by what it computes: dataset, model, budget, method with its hyper-parameters,
seed. The CE baseline of resnet14 shown in Tables 2 and 6 is one run. LE runs that share a model,
budget, seed and warm-up length share one warm-up run, which they name as their input.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


@dataclass
class Cell:
    group: str  # row/column label of the model (e.g. "ResNet14")
    method: str  # method label (e.g. "LE(Grad-CAM)")
    model: str
    paper_dataset: str | None
    run_ids: list[str]  # one per seed


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
class Plan:
    config: dict[str, Any]
    runs: dict[str, Run]
    tables: dict[str, TableSpec]

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
        kinds = {kind: len(self.ids(kind)) for kind in RUN_KINDS}
        epochs = sum(_run_epochs(run.spec) for run in self.runs.values())
        gpu_hours = sum(self.run_seconds(r) for r in self.runs) / 3600
        return {"runs": len(self.runs), "by_kind": kinds, "runs_per_table": per_table, "epochs": epochs,
                "gpu_hours": gpu_hours}


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


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH, *,
                    check_references: bool = True) -> dict[str, Any]:
    """Check ``config`` against the JSON schema, then the cross-references a schema cannot express
    (these import torch for the model and method registries: ``check_references=False`` skips them
    in processes that only run jobs of an already validated workflow).

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
    if check_references:
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
    from .methods import hyperparameter_names, method_class
    from .models import available_models

    for label, variant in config["methods"].items():
        name = variant["method"]
        try:
            cls = method_class(name)
        except KeyError as error:
            raise ConfigError(f"methods.{label}.method: {error.args[0]}") from None
        known = set(hyperparameter_names(cls)) | {"warmup_fraction"}
        for key in variant:
            if key != "method" and key not in known:
                raise ConfigError(f"methods.{label}.{key}: method {name!r} has no such hyper-parameter "
                                  f"(it accepts: {', '.join(sorted(known - {'warmup_fraction'}))})")
    models = set(available_models())
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
        if t["dataset"] not in config["datasets"]:
            raise ConfigError(f"tables.{table}.dataset: {t['dataset']!r} is not under datasets")
        for i, group in enumerate(t["groups"]):
            if group.get("dataset", t["dataset"]) not in config["datasets"]:
                raise ConfigError(f"tables.{table}.groups[{i}].dataset: {group['dataset']!r} is not under datasets")
        for label in t["methods"] + t.get("compare_to", []):
            if label not in config["methods"]:
                raise ConfigError(f"tables.{table}: method {label!r} is not defined under methods")
        for i, group in enumerate(t["groups"]):
            where = f"tables.{table}.groups[{i}]"
            if group["model"] not in models:
                raise ConfigError(f"{where}.model: unknown model {group['model']!r} "
                                  f"(known: {', '.join(sorted(models))})")
            if group["budget"] not in config["budgets"]:
                raise ConfigError(f"{where}.budget: {group['budget']!r} is not under budgets")
            if group.get("teacher") and group["teacher"] not in config.get("teachers", {}):
                raise ConfigError(f"{where}.teacher: {group['teacher']!r} is not under teachers")
            for label, name in group.get("teacher_overrides", {}).items():
                if name not in config.get("teachers", {}):
                    raise ConfigError(f"{where}.teacher_overrides.{label}: {name!r} is not under teachers")
            for label in list(group.get("method_overrides", {})) + group.get("exclude", []):
                if label not in t["methods"]:
                    raise ConfigError(f"{where}: {label!r} is not one of the table's methods")


def build_plan(config: dict[str, Any], *, check_references: bool = True) -> Plan:
    """All runs the config's tables need, their dependencies, and the tables' cells."""
    config = validate_config(config, check_references=check_references)
    runs: dict[str, Run] = {}
    tables: dict[str, TableSpec] = {}
    students = _methods_needing_a_teacher(config, always=check_references)
    for table_name, table in config["tables"].items():
        cells, teachers = [], {}
        for group in table["groups"]:
            dataset = group.get("dataset", table["dataset"])
            for label in table["methods"]:
                if label in group.get("exclude", []):
                    continue
                variant = {**config["methods"][label], **group.get("method_overrides", {}).get(label, {})}
                teacher = group.get("teacher_overrides", {}).get(label, group.get("teacher"))
                teacher_ids: dict[int, str] = {}
                if label in students:
                    if not teacher:
                        raise ConfigError(f"tables.{table_name}: {label} needs a teacher; give group "
                                          f"{group['label']!r} a `teacher:` (one of the config's teachers)")
                    teacher_ids = {seed: _add_teacher_run(runs, config, dataset, teacher, seed)
                                   for seed in config["seeds"]}
                    caption = f"{config['teachers'][teacher]['model']} ({teacher})"
                    teachers[caption] = sorted(set(teacher_ids.values()))
                ids = [_add_runs(runs, config, dataset, group, variant, seed, teacher_id=teacher_ids.get(seed))
                       for seed in config["seeds"]]
                cells.append(Cell(group["label"], label, group["model"],
                                  group.get("paper_dataset", table.get("paper_dataset")), ids))
        budgets = {g["budget"]: config["budgets"][g["budget"]] for g in table["groups"]}
        datasets = _ordered_unique([g.get("dataset", table["dataset"]) for g in table["groups"]])
        settings = {"dataset": ", ".join(datasets), "seeds": config["seeds"], "budgets": budgets,
                    "methods": {m: config["methods"][m] for m in table["methods"]}}
        tables[table_name] = TableSpec(table_name, table, cells, settings, teachers)
    return Plan(config, runs, tables)


def _ordered_unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _methods_needing_a_teacher(config: dict[str, Any], always: bool) -> set[str]:
    """Labels of method variants whose method reads a teacher. The method registry imports torch:
    job processes (``always=False``) ask it only when some table has a teacher at all."""
    if not always and not config.get("teachers"):
        return set()
    from .methods import method_class

    return {label for label, v in config["methods"].items() if method_class(v["method"]).needs_teacher}


def _add_teacher_run(runs: dict[str, Run], config, dataset_key: str, name: str, seed: int,
                     chain: tuple[str, ...] = ()) -> str:
    """The teacher run a student of ``seed`` learns from: one shared teacher or one per student seed.
    A teacher may have a teacher of its own (TAKD's assistants: ResNet26 -> ResNet20 -> ResNet14)."""
    if name in chain:
        raise ConfigError(f"teachers.{name}: teaches itself through {' -> '.join((*chain, name))}")
    teacher = config["teachers"][name]
    teacher_seed = config["seeds"][0] if teacher["shared"] else seed
    own_teacher = None
    if teacher.get("teacher"):
        own_teacher = _add_teacher_run(runs, config, dataset_key, teacher["teacher"], seed, (*chain, name))
    group = {"model": teacher["model"], "budget": teacher["budget"]}
    return _add_runs(runs, config, dataset_key, group, config["methods"][teacher["method"]], teacher_seed,
                     teacher_id=own_teacher, kind="teacher")


def _add_runs(runs: dict[str, Run], config, dataset_key: str, group, variant: dict, seed: int, *,
              teacher_id: str | None = None, kind: str | None = None) -> str:
    budget = dict(config["budgets"][group["budget"]])
    hyper = {k: v for k, v in variant.items() if k != "method"}
    if "warmup_fraction" in hyper:
        hyper["warmup_epochs"] = int(round(hyper.pop("warmup_fraction") * budget["epochs"]))
    prefix = f"{dataset_key}/{group['model']}/{group['budget']}-e{budget['epochs']}"
    base = _base_spec(config, dataset_key, group["model"], budget, seed)
    spec = {**base, "method": {"name": variant["method"], **hyper}}
    slug = _slug(variant["method"], hyper)
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
        runs.setdefault(run_id, Run(run_id, {**spec, "run_id": run_id}, "stage2", [warmup_id, *depends_on]))
    else:
        kind = kind or ("student" if teacher_id else "train")
        runs.setdefault(run_id, Run(run_id, {**spec, "run_id": run_id}, kind, depends_on))
    return run_id


def _base_spec(config, dataset_key: str, model: str, budget: dict, seed: int) -> dict[str, Any]:
    dataset = dict(config["datasets"][dataset_key])
    dataset["name"] = dataset.pop("source")
    dataset["root"] = config["data_root"]
    return {"dataset": dataset, "model": model, "budget": budget, "seed": seed,
            "eval_batch_size": config["eval_batch_size"]}


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
