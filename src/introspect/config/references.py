"""The checks of a config that relate its parts, read on the typed model (:mod:`introspect.config.model_checks`
runs them in its one pass once the schema passes): names that must exist, method hyper-parameters against their
methods' declarations (the registries' catalog carries them, so no torch), LE warm-ups against their budgets,
Grad-CAM against the models it explains, a compile backend against the explainers it would train, and the plan's
size.

Each function returns problems, each starting with its key path; none raises on a model built from a schema-valid
document, whatever names it gives (a name that does not exist is a problem, not an error).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..methods.hyperparameters import shown, value_problem
from .model import Config, Figure, Group, MethodVariant, Table
from .registry_facts import Catalog

WARMUP_KEYS = ("warmup_fraction", "warmup_epochs")
# Not a field of any method: planning turns it into the method's warmup_epochs for each budget.
WARMUP_FRACTION_SPEC = {"type": "number", "gt": 0, "lt": 1}
WARMUP_EPOCHS_SPEC = {"type": "integer", "ge": 0}
# A method variant as checked: key -> (value, key path where it was given).
Variant = dict[str, tuple[Any, str]]
MAX_GRID_POINTS = 1_000
# What `snakemake -n` plans within about a minute on 2 shared cores (docs/trust.md), counted on the estimate
# below, which is at least the plan's run count.
MAX_RUNS = 3_000


def warmup_epochs(fraction: float, epochs: int) -> int:
    """Warm-up epochs of ``fraction`` of a budget (the one rounding planning and its checks share)."""
    return int(round(fraction * epochs))


# --- where method variants are trained -------------------------------------------------------------------

def located(variant: MethodVariant) -> Variant:
    """A method variant as ``methods.<label>`` gives it, each key with its key path."""
    at = f"methods.{variant.label}"
    out = {"method": (variant.method, f"{at}.method")}
    out.update({key: (value, f"{at}.{key}") for key, value in variant.hyperparameters.items()})
    if variant.sweep != {}:  # given (a value the schema refused is kept as given)
        out["sweep"] = (variant.sweep, f"{at}.sweep")
    return out


def overridden(where: str, variant: MethodVariant, override: Mapping[str, Any]) -> Variant:
    """The variant as a group's ``method_overrides`` change it (``where``: the group's key path)."""
    at = f"{where}.method_overrides.{variant.label}"
    return {**located(variant), **{key: (value, f"{at}.{key}") for key, value in override.items()}}


def method_uses(config: Config) -> Iterator[tuple[str, str, Variant, str, str]]:
    """(where, label, variant, budget name, model) of every place a method variant is trained."""
    for where, view, group in config.located_groups():
        for label in group.trained_labels(view.methods):
            if label in group.exclude or label not in config.methods:
                continue
            variant = overridden(where, config.methods[label], group.method_overrides.get(label, {}))
            yield where, label, variant, group.budget, group.model
    for name, teacher in config.teachers.items():
        if teacher.method in config.methods:
            yield f"teachers.{name}", teacher.method, located(config.methods[teacher.method]), teacher.budget, \
                teacher.model


def _uses_of(config: Config, key: str, value: Any) -> Iterator[tuple[str, str, str, str]]:
    """(where used, label, key path of the value, model trained) of each use of ``key: value``."""
    for where, label, variant, _, model in method_uses(config):
        if key in variant and variant[key][0] == value:
            yield where, label, variant[key][1], model
        sweep, at = variant.get("sweep", ({}, ""))
        if isinstance(sweep, Mapping) and value in (sweep.get(key) or ()):
            yield where, label, f"{at}.{key}", model


def variants_using(config: Config, key: str, value: Any) -> list[tuple[str, str]]:
    """(label, key path) of every trained method variant whose ``key`` is (or sweeps over) ``value``."""
    return list(dict.fromkeys((label, at) for _, label, at, _ in _uses_of(config, key, value)))


# --- names that must exist ---------------------------------------------------------------------------------

def name_checks(config: Config, catalog: Catalog) -> list[Callable[[], list[str]]]:
    """Datasets, models, budgets, methods and teachers each name, and the labels groups refer to: one check per
    view, so a value the schema refused stops only its own view's."""
    models = set(catalog.models)
    checks = [lambda: _split_problems(config, catalog), lambda: _teacher_name_problems(config, models)]
    return checks + [lambda where=f"{section}.{name}", view=view: _view_problems(where, view, config, models)
                     for section, views in (("tables", config.tables), ("figures", config.figures))
                     for name, view in views.items()]


def _split_problems(config: Config, catalog: Catalog) -> list[str]:
    problems = []
    for name, dataset in config.datasets.items():
        facts = catalog.datasets.get(dataset.name)
        if dataset.split == "per_seed" and facts is not None and facts.own_test_split:
            problems.append(f"datasets.{name}.split: {dataset.name} ships its own test set; per_seed applies "
                            f"only to {', '.join(n for n, f in catalog.datasets.items() if not f.own_test_split)}")
    return problems


def _teacher_name_problems(config: Config, models: set[str]) -> list[str]:
    problems = []
    for name, teacher in config.teachers.items():
        where = f"teachers.{name}"
        problems += _model_problem(f"{where}.model", teacher.model, models)
        problems += _missing(config, f"{where}.budget", teacher.budget, "budgets")
        problems += _missing(config, f"{where}.method", teacher.method, "methods")
        if teacher.teacher:
            problems += _missing(config, f"{where}.teacher", teacher.teacher, "teachers")
    return problems


def _missing(config: Config, where: str, name: str, section: str) -> list[str]:
    return [] if config.has(section, name) else [f"{where}: {shown(name)} is not under {section}"]


def _model_problem(where: str, model: str, models: set[str]) -> list[str]:
    return [] if model in models else [f"{where}: unknown model {shown(model)} (known: {', '.join(sorted(models))})"]


def _view_problems(where: str, view: Table | Figure, config: Config, models: set[str]) -> list[str]:
    labels = list(view.methods)
    problems = _missing(config, f"{where}.dataset", view.dataset, "datasets")
    problems += [f"{where}.methods[{i}]: method {label!r} is not defined under methods"
                 for i, label in enumerate(labels) if not config.has("methods", label)]
    compare_to = view.compare_to if isinstance(view, Table) else ()
    problems += [f"{where}.compare_to[{i}]: {label!r} is not one of the table's methods ({', '.join(labels)})"
                 for i, label in enumerate(compare_to) if label not in labels]
    seen: set[str] = set()
    parts = [("groups", view.groups)] + ([("panels", view.panels)] if isinstance(view, Figure) else [])
    for key, groups in parts:
        for i, group in enumerate(groups):
            problems += _group_problems(f"{where}.{key}[{i}]", group, view, config, models)
            if key == "groups" and group.label in seen:
                problems.append(f"{where}.{key}[{i}].label: {group.label!r} is the label of an earlier group too")
            seen.add(group.label)
    return problems


def _group_problems(at: str, group: Group, view: Table | Figure, config: Config, models: set[str]) -> list[str]:
    """A group's names; its own dataset only where it differs from its view's (the view's line names that)."""
    where = at.rsplit(".", 1)[0]
    problems = [] if group.dataset == view.dataset else _missing(config, f"{at}.dataset", group.dataset, "datasets")
    problems += _model_problem(f"{at}.model", group.model, models)
    problems += _missing(config, f"{at}.budget", group.budget, "budgets")
    if group.teacher:
        problems += _missing(config, f"{at}.teacher", group.teacher, "teachers")
    if group.method is not None:
        problems += _missing(config, f"{at}.method", group.method, "methods")
    for label, name in group.teacher_overrides.items():
        problems += _missing(config, f"{at}.teacher_overrides.{label}", name, "teachers")
        if label not in view.methods:
            problems.append(f"{at}.teacher_overrides.{label}: {label!r} is not one of the methods of {where}")
    problems += [f"{at}.method_overrides.{label}: {label!r} is not one of the methods of {where}"
                 for label in group.method_overrides if label not in view.methods]
    problems += [f"{at}.exclude[{j}]: {label!r} is not one of the methods of {where}"
                 for j, label in enumerate(group.exclude) if label not in view.methods]
    if not (isinstance(group.label, str) and group.label.strip() and group.label.isprintable()):
        problems.append(f"{at}.label: {shown(group.label)} is not a valid label: it must be non-empty printable text")
    return problems


# --- method variants, warm-ups, explainers and the plan's size ---------------------------------------------

def variant_problems(config: Config, catalog: Catalog) -> list[str]:
    """Every method variant as configured, and as each group's ``method_overrides`` change it."""
    variants = [(f"methods.{label}", located(variant)) for label, variant in config.methods.items()]
    variants += [(f"{where}.method_overrides.{label}", overridden(where, config.methods[label], override))
                 for where, _, group in config.located_groups() for label, override in group.method_overrides.items()
                 if label in config.methods]
    return [p for where, variant in variants for p in _variant_problems(where, variant, catalog)]


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
    if not isinstance(sweep, Mapping) or not sweep:
        return [f"{where}: expected a mapping of hyper-parameter -> list of values, got {shown(sweep)}"]
    problems = []
    for key, values in sweep.items():
        at = f"{where}.{key}"
        if key in WARMUP_KEYS:
            problems.append(f"{at}: the warm-up length cannot be swept (its warm-up runs are planned before "
                            "any selection); define one method variant per warm-up instead")
        elif key not in specs:
            problems.append(_unknown_key(at, method, specs))
        elif not isinstance(values, (list, tuple)) or not values:
            problems.append(f"{at}: expected a non-empty list of values, got {shown(values)}")
        else:
            problems += [f"{at}[{i}]: {p}" for i, v in enumerate(values) if (p := value_problem(v, specs[key]))]
    return problems


def _unknown_key(at: str, method: str, specs: dict[str, Any]) -> str:
    return f"{at}: method {method!r} has no such hyper-parameter (it accepts: {', '.join(sorted(specs))})"


def warmup_problems(config: Config) -> list[str]:
    problems, reported = [], set()
    for where, label, variant, budget, _ in method_uses(config):
        warmup = tuple(variant[k][1] for k in WARMUP_KEYS if k in variant)  # key paths: values may be lists
        if warmup and (warmup, budget) not in reported and budget in config.budgets:
            reported.add((warmup, budget))  # once per warm-up value and budget
            problems += _warmup_problems(where, label, variant, budget, config.budgets[budget].epochs)
    return problems


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


def grad_cam_problems(config: Config, catalog: Catalog) -> list[str]:
    """Grad-CAM needs a convolutional explanation layer, which some models (the MLP) do not have."""
    if not catalog.grad_cam_models:
        return []
    problems = [f"{at}: {label} explains {model} with Grad-CAM (used at {where}), but {model} has no "
                "convolutional layer to explain; use an input-gradient explainer (grad, grad_input, guided_bp)"
                for where, label, at, model in _uses_of(config, "explainer", "grad_cam")
                if model not in catalog.grad_cam_models]
    problems += [f"{where}.explainer: {group.model} has no convolutional layer for Grad-CAM; use an "
                 "input-gradient explainer (grad, grad_input, guided_bp)"
                 for where, _, group in config.located_groups()
                 if group.explainer == "grad_cam" and group.model not in catalog.grad_cam_models]
    return problems


def compile_problems(config: Config, catalog: Catalog) -> list[str]:
    """A torch.compile backend that exists, and no compiled model that guided backprop explains."""
    backend = config.performance.compile if "performance" not in config.unbuilt else None
    if backend is None:
        return []
    if catalog.compile_backends and backend not in catalog.compile_backends:
        return [f"performance.compile: unknown torch.compile backend {shown(backend)} "
                f"(known: {', '.join(catalog.compile_backends)})"]
    # the training loop refuses to compile a model that guided backprop explains (its hooks change the
    # backward pass of the compiled graph)
    return [f"performance.compile: {backend!r} cannot train {label} ({at} is guided_bp: the training loop "
            "refuses to compile guided backprop); set performance.compile to null or drop that method"
            for label, at in variants_using(config, "explainer", "guided_bp")]


def size_problems(config: Config) -> list[str]:
    """Sweep grids and the whole plan stay of a size a workflow can hold (an upper bound, counted
    before any run is planned)."""
    if "sweeps" in config.unbuilt:
        return []
    problems, total = [], 0
    seeds, sweep_seeds = len(config.seeds), len(config.sweeps.seeds)
    for _, _, variant, _, _ in method_uses(config):
        sweep, at = variant.get("sweep", ({}, ""))
        points = math.prod(len(v) for v in sweep.values() if isinstance(v, (list, tuple))) \
            if isinstance(sweep, Mapping) else 1
        if points > MAX_GRID_POINTS:
            problems.append(f"{at}: a grid of {points:,} points (at most {MAX_GRID_POINTS:,})")
        total += seeds + (points * sweep_seeds if points > 1 or sweep else 0)
    total += sum(len(seeds) for groups in config.extra_seeds.values() for methods in groups.values()
                 for seeds in methods.values())
    if total > MAX_RUNS:
        problems.append(f"(top level): about {total:,} training runs (seeds x groups x methods x sweep points, and "
                        f"extra_seeds); at most {MAX_RUNS:,} fit one workflow")
    return list(dict.fromkeys(problems))
