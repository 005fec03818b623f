"""The checks of a config that relate its parts (part of :func:`introspect.config.validate.config_problems`):
names that must exist, method hyper-parameters against their methods' declarations (the registries'
catalog carries them, so no torch), LE warm-ups against their budgets, teachers, analyses and claims.

Each function returns problems, each starting with its key path; none raises on a schema-valid config.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from ..methods.hyperparameters import shown, value_problem
from .registry_facts import Catalog
from .view_checks import claim_problems

WARMUP_KEYS = ("warmup_fraction", "warmup_epochs")
# Not a field of any method: planning turns it into the method's warmup_epochs for each budget.
WARMUP_FRACTION_SPEC = {"type": "number", "gt": 0, "lt": 1}
WARMUP_EPOCHS_SPEC = {"type": "integer", "ge": 0}
# A method variant as checked: key -> (value, key path where it was given).
Variant = dict[str, tuple[Any, str]]


def reference_checks(config: dict[str, Any], catalog: Catalog) -> list[Callable[[], list[str]]]:
    """The checks, each run on its own (so a malformed part the schema named stops only its own)."""
    return [*_name_checks(config, catalog), lambda: _all_variant_problems(config, catalog),
            lambda: _all_warmup_problems(config),
            lambda: _grad_cam_problems(config, catalog), lambda: claim_problems(config),
            lambda: _size_problems(config)]


MAX_GRID_POINTS = 1_000
# What `snakemake -n` plans within about a minute on 2 shared cores (docs/trust.md: 2,311 runs took 36 s and
# 3,315 took 74 s, growing as n^1.7); counted on the estimate below, which is at least the plan's run count.
# The paper's config estimates 545.
MAX_RUNS = 3_000


def _size_problems(config: dict[str, Any]) -> list[str]:
    """Sweep grids and the whole plan stay of a size a workflow can hold (an upper bound, counted
    before any run is planned)."""
    problems, total = [], 0
    seeds, sweep_seeds = len(config["seeds"]), len(config["sweeps"]["seeds"])
    for _, _, variant, _ in method_uses(config):
        sweep, at = variant.get("sweep", ({}, ""))
        points = math.prod(len(v) for v in sweep.values() if isinstance(v, list)) if isinstance(sweep, dict) else 1
        if points > MAX_GRID_POINTS:
            problems.append(f"{at}: a grid of {points:,} points (at most {MAX_GRID_POINTS:,})")
        total += seeds + (points * sweep_seeds if points > 1 or sweep else 0)
    extra = config.get("extra_seeds") if isinstance(config.get("extra_seeds"), dict) else {}
    total += sum(len(seeds) for groups in extra.values() if isinstance(groups, dict) for methods in groups.values()
                 if isinstance(methods, dict) for seeds in methods.values() if isinstance(seeds, list))
    if total > MAX_RUNS:
        problems.append(f"(top level): about {total:,} training runs (seeds x groups x methods x sweep points, and "
                        "extra_seeds); "
                        f"at most {MAX_RUNS:,} fit one workflow")
    return list(dict.fromkeys(problems))


def _all_variant_problems(config: dict[str, Any], catalog: Catalog) -> list[str]:
    return [p for where, variant in _variants(config) for p in _variant_problems(where, variant, catalog)]


def _all_warmup_problems(config: dict[str, Any]) -> list[str]:
    problems, reported = [], set()
    for where, label, variant, budget in method_uses(config):
        warmup = tuple(variant[k][1] for k in WARMUP_KEYS if k in variant)  # key paths: values may be lists
        if warmup and (warmup, budget) not in reported and budget in config["budgets"]:
            reported.add((warmup, budget))  # once per warm-up value and budget
            problems += _warmup_problems(where, label, variant, budget, config["budgets"][budget]["epochs"])
    return problems


def warmup_epochs(fraction: float, epochs: int) -> int:
    """Warm-up epochs of ``fraction`` of a budget (the one rounding planning and its checks share)."""
    return int(round(fraction * epochs))


def variants_using(config: dict[str, Any], key: str, value: Any) -> list[tuple[str, str]]:
    """(label, key path) of every trained method variant whose ``key`` is (or sweeps over) ``value``."""
    return list(dict.fromkeys((label, at) for _, label, at, _ in _uses_of(config, key, value)))


def _uses_of(config: dict[str, Any], key: str, value: Any) -> Iterator[tuple[str, str, str, str | None]]:
    """(where used, label, key path of the value, model trained) of each use of ``key: value``."""
    for where, label, variant, _ in method_uses(config):
        model = _model_at(config, where)
        if key in variant and variant[key][0] == value:
            yield where, label, variant[key][1], model
        sweep, at = variant.get("sweep", ({}, ""))
        if isinstance(sweep, dict) and value in (sweep.get(key) or []):
            yield where, label, f"{at}.{key}", model


def _model_at(config: dict[str, Any], where: str) -> str | None:
    """The model of a group given by its key path (``tables.t.groups[0]``) or of a teacher."""
    section, name, *rest = where.split(".", 2)
    if section == "teachers":
        return config["teachers"][name]["model"]
    key, index = rest[0].rstrip("]").split("[")
    return config[section][name][key][int(index)]["model"]


def _grad_cam_problems(config: dict[str, Any], catalog: Catalog) -> list[str]:
    """Grad-CAM needs a convolutional explanation layer, which some models (the MLP) do not have."""
    if not catalog.grad_cam_models:
        return []
    problems = [f"{at}: {label} explains {model} with Grad-CAM (used at {where}), but {model} has no "
                "convolutional layer to explain; use an input-gradient explainer (grad, grad_input, guided_bp)"
                for where, label, at, model in _uses_of(config, "explainer", "grad_cam")
                if model not in catalog.grad_cam_models]
    problems += [f"{where}.explainer: {group['model']} has no convolutional layer for Grad-CAM; use an "
                 "input-gradient explainer (grad, grad_input, guided_bp)"
                 for where, _, group in groups(config)
                 if group.get("explainer") == "grad_cam" and group["model"] not in catalog.grad_cam_models]
    return problems


def groups(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for section in ("tables", "figures"):
        for name, container in config[section].items():
            for key in ("groups", "panels"):
                for i, group in enumerate(container.get(key, [])):
                    yield f"{section}.{name}.{key}[{i}]", container, group


def method_uses(config: dict[str, Any]) -> Iterator[tuple[str, str, Variant, str]]:
    """(where, label, variant, budget name) of every place a method variant is trained."""
    methods = config["methods"]
    for where, container, group in groups(config):
        labels = [group["method"]] if "method" in group else container.get("methods", [])
        for label in labels:
            if label in group.get("exclude", []) or label not in methods:
                continue
            override = group.get("method_overrides", {}).get(label, {})
            variant = {**_located(f"methods.{label}", methods[label]),
                       **_located(f"{where}.method_overrides.{label}", override)}
            yield where, label, variant, group["budget"]
    for name, teacher in config["teachers"].items():
        label = teacher["method"]
        if label in methods:
            yield f"teachers.{name}", label, _located(f"methods.{label}", methods[label]), teacher["budget"]


def _located(where: str, variant: dict[str, Any]) -> Variant:
    return {key: (value, f"{where}.{key}") for key, value in variant.items()}


# --- names that must exist ---------------------------------------------------------------------------

def _name_checks(config: dict[str, Any], catalog: Catalog) -> list[Callable[[], list[str]]]:
    models = set(catalog.models)
    checks = [lambda: _split_problems(config, catalog), lambda: _teacher_name_problems(config, models)]
    sections = [s for s in ("tables", "figures") if isinstance(config.get(s), dict)]  # else the schema said why
    checks += [lambda where=f"{section}.{name}", container=container: _container_problems(where, container, config,
                                                                                            models)
               for section in sections for name, container in config[section].items()]
    return checks


def _split_problems(config: dict[str, Any], catalog: Catalog) -> list[str]:
    problems = []
    for name, dataset in config["datasets"].items():
        facts = catalog.datasets.get(dataset["source"])
        if dataset.get("split") == "per_seed" and facts is not None and facts.own_test_split:
            problems.append(f"datasets.{name}.split: {dataset['source']} ships its own test set; per_seed applies "
                            f"only to {', '.join(n for n, f in catalog.datasets.items() if not f.own_test_split)}")
    return problems


def _teacher_name_problems(config: dict[str, Any], models: set[str]) -> list[str]:
    problems, teachers = [], config["teachers"]
    for name, teacher in teachers.items():
        where = f"teachers.{name}"
        problems += _model_problem(f"{where}.model", teacher["model"], models)
        problems += _missing(f"{where}.budget", teacher["budget"], config["budgets"], "budgets")
        problems += _missing(f"{where}.method", teacher["method"], config["methods"], "methods")
        if teacher.get("teacher"):
            problems += _missing(f"{where}.teacher", teacher["teacher"], teachers, "teachers")
    return problems


def _missing(where: str, name: str, section: dict[str, Any], section_name: str) -> list[str]:
    return [] if name in section else [f"{where}: {shown(name)} is not under {section_name}"]


def _model_problem(where: str, model: str, models: set[str]) -> list[str]:
    return [] if model in models else [f"{where}: unknown model {shown(model)} (known: {', '.join(sorted(models))})"]


def _container_problems(where: str, container: dict[str, Any], config: dict[str, Any], models: set[str]) -> list[str]:
    methods, teachers = config["methods"], config["teachers"]
    problems = _missing(f"{where}.dataset", container["dataset"], config["datasets"], "datasets")
    labels = list(container.get("methods", []))
    problems += [f"{where}.methods[{i}]: method {label!r} is not defined under methods"
                 for i, label in enumerate(labels) if label not in methods]
    problems += [f"{where}.compare_to[{i}]: {label!r} is not one of the table's methods ({', '.join(labels)})"
                 for i, label in enumerate(container.get("compare_to", [])) if label not in labels]
    seen: set[str] = set()
    for key in ("groups", "panels"):
        for i, group in enumerate(container.get(key, [])):
            at = f"{where}.{key}[{i}]"
            if "dataset" in group:
                problems += _missing(f"{at}.dataset", group["dataset"], config["datasets"], "datasets")
            problems += _model_problem(f"{at}.model", group["model"], models)
            problems += _missing(f"{at}.budget", group["budget"], config["budgets"], "budgets")
            if group.get("teacher"):
                problems += _missing(f"{at}.teacher", group["teacher"], teachers, "teachers")
            if "method" in group:
                problems += _missing(f"{at}.method", group["method"], methods, "methods")
            for label, name in group.get("teacher_overrides", {}).items():
                problems += _missing(f"{at}.teacher_overrides.{label}", name, teachers, "teachers")
                if label not in labels:
                    problems.append(f"{at}.teacher_overrides.{label}: {label!r} is not one of the methods of {where}")
            for label in group.get("method_overrides", {}):
                if label not in labels:
                    problems.append(f"{at}.method_overrides.{label}: {label!r} is not one of the methods of {where}")
            for j, label in enumerate(group.get("exclude", [])):
                if label not in labels:
                    problems.append(f"{at}.exclude[{j}]: {label!r} is not one of the methods of {where}")
            if not (isinstance(group["label"], str) and group["label"].strip() and group["label"].isprintable()):
                problems.append(f"{at}.label: {shown(group['label'])} is not a valid label: it must be non-empty "
                                "printable text")
            if key == "groups" and group["label"] in seen:
                problems.append(f"{at}.label: {group['label']!r} is the label of an earlier group too")
            seen.add(group["label"])
    return problems


# --- method variants and warm-ups --------------------------------------------------------------------

def _variants(config: dict[str, Any]) -> Iterator[tuple[str, Variant]]:
    """Every method variant as configured, and as each group's ``method_overrides`` change it."""
    for label, variant in config["methods"].items():
        yield f"methods.{label}", _located(f"methods.{label}", variant)
    for where, _container, group in groups(config):
        for label, override in group.get("method_overrides", {}).items():
            if label in config["methods"] and isinstance(override, dict):
                at = f"{where}.method_overrides.{label}"
                yield at, {**_located(f"methods.{label}", config["methods"][label]), **_located(at, override)}


def _variant_problems(where: str, variant: Variant, catalog: Catalog) -> list[str]:
    """Hyper-parameters the variant's method does not have, and values of the wrong type or range."""
    name, name_at = variant["method"]
    if not isinstance(name, str) or name not in catalog.methods:
        if ".method_overrides." in name_at:
            return []  # reported where the variant is defined
        return [f"{name_at}: unknown method {shown(name)}; known methods: {', '.join(sorted(catalog.methods))}"]
    specs = dict(catalog.method(name).hyperparameter_specs)
    if "warmup_epochs" in specs:
        specs["warmup_fraction"] = WARMUP_FRACTION_SPEC
    problems = []
    for key, (value, at) in variant.items():
        if key == "method":
            if ".method_overrides." in at:
                problems.append(f"{at}: an override changes hyper-parameters, not the method; "
                                "define another method variant instead")
        elif key == "sweep":
            problems += [] if ".method_overrides." in where and "method_overrides" not in at else \
                _sweep_problems(at, value, specs, name)
        elif key not in specs:
            problems.append(_unknown_key(at, name, specs))
        elif problem := value_problem(value, specs[key]):
            problems.append(f"{at}: {problem}")
    if "warmup_fraction" in variant and "warmup_epochs" in variant:
        problems.append(f"{where}: give warmup_fraction or warmup_epochs, not both")
    return problems


def _sweep_problems(where: str, sweep: Any, specs: dict[str, dict[str, Any]], method: str) -> list[str]:
    if not isinstance(sweep, dict) or not sweep:
        return [f"{where}: expected a mapping of hyper-parameter -> list of values, got {shown(sweep)}"]
    problems = []
    for key, values in sweep.items():
        at = f"{where}.{key}"
        if key in WARMUP_KEYS:
            problems.append(f"{at}: the warm-up length cannot be swept (its warm-up runs are planned before "
                            "any selection); define one method variant per warm-up instead")
        elif key not in specs:
            problems.append(_unknown_key(at, method, specs))
        elif not isinstance(values, list) or not values:
            problems.append(f"{at}: expected a non-empty list of values, got {shown(values)}")
        else:
            problems += [f"{at}[{i}]: {p}" for i, v in enumerate(values) if (p := value_problem(v, specs[key]))]
    return problems


def _unknown_key(at: str, method: str, specs: dict[str, Any]) -> str:
    return f"{at}: method {method!r} has no such hyper-parameter (it accepts: {', '.join(sorted(specs))})"


def _warmup_problems(where: str, label: str, variant: Variant, budget: str, epochs: int) -> list[str]:
    """An LE run needs at least one warm-up epoch (when a fraction asks for one) and one Stage-2 epoch;
    otherwise it would be reported as LE without ever learning from explanations. Values of the wrong
    type are left to :func:`_variant_problems`."""
    if any(value_problem(variant[k][0], spec) for k, spec in
           (("warmup_fraction", WARMUP_FRACTION_SPEC), ("warmup_epochs", WARMUP_EPOCHS_SPEC)) if k in variant):
        return []
    if "warmup_fraction" in variant:
        fraction, at = variant["warmup_fraction"]
        warmup, lowest = warmup_epochs(fraction, epochs), 1
        chosen = f"{fraction:g} of budget {budget!r} ({epochs} epochs) rounds to {warmup} warm-up epochs"
    elif "warmup_epochs" in variant:
        warmup, at = variant["warmup_epochs"]
        lowest = 0
        chosen = f"{warmup} of budget {budget!r} ({epochs} epochs)"
    else:
        return []
    if lowest <= warmup <= epochs - 1:
        return []
    return [f"{at}: {chosen} and {epochs - warmup} Stage-2 epochs; {label} needs at least {lowest} warm-up and "
            f"1 Stage-2 epoch (first used at {where})"]
