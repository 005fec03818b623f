"""What a config must satisfy beyond its JSON schema, checked at planning, before any job starts.

A config is shared, copied from papers and edited by hand, so nothing in it may run a command,
write outside ``results_dir`` or start hours of jobs that fail at the end:

- names that become file names or reach shell commands (dataset, budget, table, figure, analysis
  and teacher keys) are plain names (:data:`NAME_RULE`); method labels are display text and reach
  paths only through a slug;
- ``results_dir``, ``data_root`` and ``reported_results`` are relative paths below the working
  directory (no ``..``) or absolute paths the user chose, made of plain names;
- every method hyper-parameter, wherever it is given (``methods``, ``method_overrides``, sweep
  values), has the type and range its dataclass field declares (:func:`hp`; the registries'
  catalog carries them, so this needs no torch);
- an LE warm-up leaves at least one epoch of each stage of every budget it is used with;
- cross-references (``compare_to``, ``teacher_overrides``, analyses) name entries that exist;
- every planned output lies inside ``results_dir`` (:func:`ensure_inside`).

Functions here return lists of problems, each starting with the key path it is about; planning
raises them as one ``ConfigError``. Pure functions: no torch, no file access.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalog import Catalog
    from .plan import Plan

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# No '+': table, figure and analysis names are joined unescaped into Snakemake wildcard regexes.
NAME_RULE = ("letters, digits, '_', '.' and '-', starting with a letter or digit, without '..', "
             "at most 64 characters")
NAMED_SECTIONS = ("datasets", "budgets", "tables", "figures", "analyses", "teachers")
PATH_KEYS = ("results_dir", "data_root", "reported_results")

HP_KEY = "hyperparameter"
WARMUP_KEYS = ("warmup_fraction", "warmup_epochs")
# Not a field of any method: planning turns it into the method's warmup_epochs for each budget.
WARMUP_FRACTION_SPEC = {"type": "number", "gt": 0, "lt": 1}
WARMUP_EPOCHS_SPEC = {"type": "integer", "ge": 0}
_TYPES = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}
_BOUND_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@lru_cache(maxsize=4)
def load_schema(path: str) -> dict[str, Any]:
    """The config's JSON schema, parsed once per process (the YAML parse costs ~0.1 s). Read-only."""
    import yaml

    with open(path) as handle:
        return yaml.safe_load(handle)


def strict_integers(validator_cls):
    """A JSON-schema validator class whose ``integer`` excludes floats such as 3.0 (JSON Schema accepts
    them; epochs: 3.0 would then name runs ``...-e3.0`` and fail in ``range``)."""
    import jsonschema

    checker = validator_cls.TYPE_CHECKER.redefine(
        "integer", lambda _, instance: isinstance(instance, int) and not isinstance(instance, bool))
    return jsonschema.validators.extend(validator_cls, type_checker=checker)


# --- hyper-parameter declarations (used by the method dataclasses) ----------------------------

def hp(*, gt: float | None = None, ge: float | None = None, lt: float | None = None,
       le: float | None = None, choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Field metadata declaring a hyper-parameter's range or choices, e.g.
    ``temperature: float = field(default=4.0, metadata=hp(gt=0))``. The type comes from the annotation."""
    bounds: dict[str, Any] = {k: v for k, v in {"gt": gt, "ge": ge, "lt": lt, "le": le}.items() if v is not None}
    if choices is not None:
        bounds["choices"] = list(choices)
    return {HP_KEY: bounds}


def field_spec(annotation: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able spec of one dataclass field: ``{"type": "number", "gt": 0}``."""
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    if name not in _TYPES:
        raise TypeError(f"hyper-parameters must be float, int, bool or str, not {name}")
    return {"type": _TYPES[name], **metadata.get(HP_KEY, {})}


def value_problem(value: Any, spec: dict[str, Any]) -> str | None:
    """Why ``value`` does not fit ``spec`` (None if it does). Booleans are not numbers; ints are."""
    kind = spec["type"]
    if kind == "boolean":
        fits = isinstance(value, bool)
    elif kind == "integer":
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        fits = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        fits = isinstance(value, str) and (value in spec["choices"] if "choices" in spec else _is_name(value))
    if fits and kind in ("integer", "number"):
        fits = all(_within(value, bound, limit) for bound, limit in spec.items() if bound in _BOUND_SYMBOLS)
    return None if fits else f"expected {describe(spec)}, got {_shown(value)}"


def describe(spec: dict[str, Any]) -> str:
    """``a number in (0, 1]``, ``an integer >= 1``, ``one of 'grad', 'grad_cam'``..."""
    kind = spec["type"]
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return ("one of " + ", ".join(map(repr, spec["choices"]))) if "choices" in spec else f"a name ({NAME_RULE})"
    noun = "an integer" if kind == "integer" else "a number"
    low = next(((b, spec[b]) for b in ("gt", "ge") if b in spec), None)
    high = next(((b, spec[b]) for b in ("lt", "le") if b in spec), None)
    if low and high:
        return f"{noun} in {'(' if low[0] == 'gt' else '['}{low[1]:g}, {high[1]:g}{')' if high[0] == 'lt' else ']'}"
    if low or high:
        bound, limit = low or high
        return f"{noun} {_BOUND_SYMBOLS[bound]} {limit:g}"
    return noun


def _within(value: float, bound: str, limit: float) -> bool:
    return {"gt": value > limit, "ge": value >= limit, "lt": value < limit, "le": value <= limit}[bound]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- names and paths ----------------------------------------------------------------------------

def _is_name(name: Any) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None and ".." not in name


def name_problem(where: str, name: Any) -> str | None:
    if _is_name(name):
        return None
    return f"{where}: {_shown(name)} is not a valid name: use only {NAME_RULE} (it becomes part of file names)"


def path_problem(where: str, path: Any) -> str | None:
    """A path the workflow writes to or passes to shell commands unquoted: a relative path below the
    working directory, or an absolute path, made of plain names (no spaces, no shell characters)."""
    if isinstance(path, str) and path:
        parts = PurePath(path).parts
        parts = parts[1:] if PurePath(path).is_absolute() else parts
        if all(part != ".." and re.fullmatch(r"[A-Za-z0-9_.-]+", part) for part in parts):
            return None
    return (f"{where}: {_shown(path)} must be a relative path inside the working directory (no '..') or an "
            "absolute path, whose parts hold only letters, digits, '_', '.' and '-'")


def label_problem(where: str, label: str) -> str | None:
    """Method and group labels are display text (``LE(Grad×Input)``): any printable characters."""
    if label.strip() and label.isprintable():
        return None
    return f"{where}: {_shown(label)} is not a valid label: it must be non-empty printable text"


def ensure_inside(results_dir: str | Path, path: str | Path) -> None:
    """Raise ValueError unless ``path`` lies inside ``results_dir`` (lexically: after resolving
    '.' and '..' against the working directory, without following symlinks the user made)."""
    root = os.path.abspath(results_dir)
    target = os.path.abspath(path)
    if target == root or os.path.commonpath([root, target]) != root:
        raise ValueError(f"{path} is not inside results_dir {results_dir}")


# --- the checks planning runs ---------------------------------------------------------------------

def config_problems(config: dict[str, Any], catalog: Catalog) -> list[str]:
    """Every problem of a schema-valid config whose names were checked by plan._check_references."""
    gpu_model = config["cluster"]["gpu_model"]
    problems = [
        *_non_finite_problems(config),
        *(p for section in NAMED_SECTIONS for key in config.get(section, {})
          if (p := name_problem(f"{section}.{key}", key))),
        *(p for key in PATH_KEYS if (p := path_problem(key, config[key]))),
        *([p] if gpu_model is not None and (p := name_problem("cluster.gpu_model", gpu_model)) else []),
        *(p for label in config["methods"] if (p := label_problem(f"methods.{label}", label))),
        *_cross_reference_problems(config),
    ]
    for where, variant in _variants(config):
        problems += _variant_problems(where, variant, catalog)
    reported = set()
    for where, label, variant, budget in _method_uses(config):
        warmup = tuple(variant[k][1] for k in WARMUP_KEYS if k in variant)  # key paths: values may be lists
        if warmup and (warmup, budget) not in reported:  # once per warm-up value and budget
            reported.add((warmup, budget))
            problems += _warmup_problems(where, label, variant, budget, config["budgets"][budget]["epochs"])
    return list(dict.fromkeys(problems))


def output_problems(plan: Plan) -> list[str]:
    """Planned outputs outside results_dir, and files two entries would both write."""
    results_dir, problems, writers = plan.config["results_dir"], [], {}
    for owner, path in planned_outputs(plan):
        try:
            ensure_inside(results_dir, path)
        except ValueError as error:
            problems.append(f"{owner}: {error}")
        if owner.split(".")[0] in ("tables", "figures", "analyses"):
            other = writers.setdefault(os.path.normpath(path), owner)
            if other != owner:
                problems.append(f"{owner}: writes {path}, as {other} does; rename one of them")
    return list(dict.fromkeys(problems))


def planned_outputs(plan: Plan) -> list[tuple[str, Path]]:
    """(owner, path) of every file or run directory the workflow writes or reads, from the run layer."""
    layout = plan.layout
    outputs: list[tuple[str, Path]] = []
    for run_id, run in plan.runs.items():
        outputs.append((f"run {run_id}", run.files.directory))
        outputs += [(f"run {run_id}: input", path) for path in run.input_files()]
    outputs += [(f"selection {s.selection_id}", layout.selection(s.selection_id)) for s in plan.selections.values()]
    for name in plan.tables:
        outputs += [(f"tables.{name}", path) for path in layout.table_files(name)]
    for name in plan.figures:
        outputs += [(f"figures.{name}", path) for path in layout.figure_files(name)]
    for name in plan.analyses:
        outputs += [(f"analyses.{name}", path) for path in layout.analysis_files(name)]
    if plan.claims:
        outputs += [("claims", path) for path in layout.claims_files()]
    return outputs


def warmup_epochs(fraction: float, epochs: int) -> int:
    """Warm-up epochs of ``fraction`` of a budget (the one rounding planning and its checks share)."""
    return int(round(fraction * epochs))


def warmup_summary(config: dict[str, Any]) -> list[str]:
    """One line per warm-up the plan chose, e.g. ``warm-up: 1 of 3 epochs (warmup_fraction 0.34 of
    budget 'resnet'): LE(Grad-CAM), LE-Permut``."""
    chosen: dict[tuple[str, float], list[str]] = {}
    for _, label, variant, budget in _method_uses(config):
        if "warmup_fraction" in variant:
            chosen.setdefault((budget, variant["warmup_fraction"][0]), []).append(label)
    lines = []
    for (budget, fraction), labels in chosen.items():
        epochs = config["budgets"][budget]["epochs"]
        lines.append(f"warm-up: {warmup_epochs(fraction, epochs)} of {epochs} epochs (warmup_fraction {fraction:g} "
                     f"of budget {budget!r}): {', '.join(dict.fromkeys(labels))}")
    return lines


# A method variant as checked: key -> (value, key path where it was given).
Variant = dict[str, tuple[Any, str]]


def _variants(config: dict[str, Any]) -> Iterator[tuple[str, Variant]]:
    """Every method variant as configured, and as each group's ``method_overrides`` change it."""
    for label, variant in config["methods"].items():
        yield f"methods.{label}", _located(f"methods.{label}", variant)
    for where, _container, group in _groups(config):
        for label, override in group.get("method_overrides", {}).items():
            at = f"{where}.method_overrides.{label}"
            yield at, {**_located(f"methods.{label}", config["methods"][label]), **_located(at, override)}


def _non_finite_problems(node: Any, where: str = "") -> Iterator[str]:
    """NaN and infinities pass every JSON-schema range (all comparisons with NaN are false)."""
    if isinstance(node, float) and not math.isfinite(node):
        yield f"{where or '(top level)'}: expected a finite number, got {node!r}"
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite_problems(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_finite_problems(value, f"{where}[{i}]")


def _located(where: str, variant: dict[str, Any]) -> Variant:
    return {key: (value, f"{where}.{key}") for key, value in variant.items()}


def _groups(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for section in ("tables", "figures"):
        for name, container in config[section].items():
            for key in ("groups", "panels"):
                for i, group in enumerate(container.get(key, [])):
                    yield f"{section}.{name}.{key}[{i}]", container, group


def _method_uses(config: dict[str, Any]) -> Iterator[tuple[str, str, Variant, str]]:
    """(where, label, variant, budget name) of every place a method variant is trained."""
    for where, container, group in _groups(config):
        labels = [group["method"]] if "method" in group else container.get("methods", [])
        for label in labels:
            if label in group.get("exclude", []):
                continue
            override = group.get("method_overrides", {}).get(label, {})
            variant = {**_located(f"methods.{label}", config["methods"][label]),
                       **_located(f"{where}.method_overrides.{label}", override)}
            yield where, label, variant, group["budget"]
    for name, teacher in config["teachers"].items():
        label = teacher["method"]
        yield f"teachers.{name}", label, _located(f"methods.{label}", config["methods"][label]), teacher["budget"]


def _variant_problems(where: str, variant: Variant, catalog: Catalog) -> list[str]:
    """Hyper-parameters the variant's method does not have, and values of the wrong type or range."""
    name, name_at = variant["method"]
    if not isinstance(name, str) or name not in catalog.methods:
        return [f"{name_at}: unknown method {_shown(name)}; known methods: {', '.join(sorted(catalog.methods))}"]
    specs = dict(catalog.method(name).hyperparameter_specs)
    if "warmup_epochs" in specs:
        specs["warmup_fraction"] = WARMUP_FRACTION_SPEC
    problems = []
    for key, (value, at) in variant.items():
        if key == "method":
            if ".method_overrides." in at:
                problems.append(f"{at}: an override changes hyper-parameters, not the method; "
                                "define another method variant instead")
            continue
        if key == "sweep":
            problems += _sweep_problems(at, value, specs, name)
        elif key not in specs:
            problems.append(_unknown_key(at, name, specs))
        elif problem := value_problem(value, specs[key]):
            problems.append(f"{at}: {problem}")
    if "warmup_fraction" in variant and "warmup_epochs" in variant:
        problems.append(f"{where}: give warmup_fraction or warmup_epochs, not both")
    return problems


def _sweep_problems(where: str, sweep: Any, specs: dict[str, dict[str, Any]], method: str) -> list[str]:
    if not isinstance(sweep, dict) or not sweep:
        return [f"{where}: expected a mapping of hyper-parameter -> list of values, got {_shown(sweep)}"]
    problems = []
    for key, values in sweep.items():
        at = f"{where}.{key}"
        if key in WARMUP_KEYS:
            problems.append(f"{at}: the warm-up length cannot be swept (its warm-up runs are planned before "
                            "any selection); define one method variant per warm-up instead")
        elif key not in specs:
            problems.append(_unknown_key(at, method, specs))
        elif not isinstance(values, list) or not values:
            problems.append(f"{at}: expected a non-empty list of values, got {_shown(values)}")
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


def _cross_reference_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    for name, table in config["tables"].items():
        methods = table["methods"]
        problems += [f"tables.{name}.compare_to[{i}]: {label!r} is not one of the table's methods "
                     f"({', '.join(methods)})"
                     for i, label in enumerate(table.get("compare_to", [])) if label not in methods]
        labels = [group["label"] for group in table["groups"]]
        problems += [f"tables.{name}.groups[{i}].label: {label!r} is the label of an earlier group too"
                     for i, label in enumerate(labels) if label in labels[:i]]
    for where, container, group in _groups(config):
        owner = where.rsplit(".", 1)[0]
        problems += [f"{where}.teacher_overrides.{label}: {label!r} is not one of the methods of {owner}"
                     for label in group.get("teacher_overrides", {}) if label not in container.get("methods", [])]
        problems += [p for p in [label_problem(f"{where}.label", group["label"])] if p]
    for name, analysis in config["analyses"].items():
        where = f"analyses.{name}"
        problems += [f"{where}.tables[{i}]: {t!r} is not under tables" for i, t in enumerate(analysis["tables"])
                     if t not in config["tables"]]
        studied = {m for t in analysis["tables"] if t in config["tables"] for m in config["tables"][t]["methods"]}
        problems += [f"{where}.methods[{i}]: {m!r} is not a method of its tables ({', '.join(analysis['tables'])})"
                     for i, m in enumerate(analysis.get("methods", [])) if m not in studied]
        if analysis.get("figure_table", analysis["tables"][0]) not in analysis["tables"]:
            problems.append(f"{where}.figure_table: {analysis['figure_table']!r} is not one of its tables")
    return problems
