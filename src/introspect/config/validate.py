"""The one check of a config, before any job starts: every problem at once, each starting with the key
path it is about, raised as one :class:`~introspect.config.model.ConfigError` by :func:`validate_config`.

A config is shared, copied from papers and edited by hand, so nothing in it may run a command, write
outside ``results_dir``, hang the planner or start hours of jobs that fail at the end:

- its size as expanded (aliases) and its depth are bounded; YTE template keys are refused;
- the JSON schema (package data), with its defaults filled in and the enums of the registries
  (:mod:`introspect.config.registry_facts`), the closed sets and the defaults of the typed model's and the run
  spec's types injected (:func:`load_schema`: each written once, there); every number that sizes work has an
  upper bound there or on its method's dataclass field;
- names that become file names or reach shell commands are plain names (:data:`NAME_RULE`); method
  labels are display text and reach paths only through a slug;
- ``results_dir``, ``data_root`` and ``reported_results`` are relative paths below the working
  directory (no ``..``), or absolute paths the user chose (not ``/``), made of plain names, never
  starting with ``-``;
- a baseline a table names (not the default one) is a method variant: what the document says, before its
  defaults are filled in;
- then, in the same pass, the typed model is built once and every check that relates the config's parts reads
  it (:mod:`introspect.config.model_checks`: names that must exist, hyper-parameters, warm-ups, Grad-CAM,
  combinations a training job would refuse, labels that render alike, claims, the plan's size, teachers,
  analyses, extra seeds, cluster requests). No check reads the document after the model is built.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import PurePath
from typing import Any, get_args

from ..errors import InputError
from ..methods.hyperparameters import NAME_RULE, is_name, shown
from ..runs.spec import AMP_MODES, BATCHED_BACKWARDS, LOADERS, SPLITS, Budget, DatasetSpec, Performance, RunOptions
from ..runs.typed import encode
from .claim import DIRECTIONS
from .model import (
    SWEEP_USES,
    ClaimSettings,
    Config,
    FigureKind,
    GpuRequest,
    MetricKind,
    SweepMetric,
    TableLayout,
    TableMetric,
    reject,
)
from .overlays import template_problem
from .registry_facts import Catalog
from .schemas import schema_path
from .seeds_overlay import SeedsOverlayError, merge_seeds_overlay
from .yaml_input import YamlInputError, check_data_size

NAMED_SECTIONS = ("datasets", "budgets", "tables", "figures", "analyses", "teachers")
PATH_KEYS = ("results_dir", "data_root", "reported_results")
# Directories a results_dir must not be or lie in (resolved, symlinks followed): the workflow writes,
# renames and deletes files below it.
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr",
               "/var")
SEED_KEYS = (("seeds",), ("sweeps", "seeds"))

__all__ = ["NAME_RULE", "config_problems", "validate_config"]


def validate_config(config: dict[str, Any] | Config, catalog: Catalog | None = None) -> Config:
    """The typed model of ``config``, or one :class:`ConfigError` listing every problem."""
    if isinstance(config, Config):
        return config
    from .registry_facts import registry_catalog

    document, claims, problems, model = config_problems(config, catalog or registry_catalog())
    reject(problems)
    assert model is not None  # no problem: the schema passed, and the model was built (or its error raised)
    return model


def config_problems(config: Any, catalog: Catalog
                    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str], Config | None]:
    """The config with schema defaults filled in, its claims (the catalogue's that apply, then its own), every
    problem found in it, and its typed model (None when the schema refused the document: a model is built
    from a schema-valid document, and its own checks run in the same pass)."""
    if not isinstance(config, dict):
        return {}, [], [f"(top level): a config is a mapping of keys, not {shown(config)}"], None
    try:
        check_data_size(config)
    except YamlInputError as error:
        return {}, [], [f"(top level): {error}"], None
    refused = template_problem(config)
    if refused:
        return {}, [], [refused], None
    try:  # claims_next.yaml, named by --config seeds_from=...: it may only add seeds (config.seeds_overlay)
        config = merge_seeds_overlay(config)
    except SeedsOverlayError as error:
        return {}, [], [str(error)], None
    document = _with_integer_seeds(copy.deepcopy(config))
    problems = schema_problems(document, catalog)
    claims, claim_errors = expanded_claims(document)
    problems += claim_errors
    checks: list[Callable[[], list[str]]] = [
        lambda: list(_non_finite_problems(document)),
        lambda: _name_and_path_problems(document),
        lambda: _baseline_problems(config, document),
    ]
    schema_passed = not problems
    for check in checks:
        problems += _guarded(check, tolerate=bool(problems))
    model = _typed_model(document, claims, tolerate=bool(problems))
    if model is not None:
        from .model_checks import model_checks

        for check in model_checks(model, catalog):
            problems += _guarded(check, tolerate=bool(problems))
    return document, claims, list(dict.fromkeys(problems)), model if schema_passed else None


def _typed_model(document: dict[str, Any], claims: list[dict[str, Any]], tolerate: bool) -> Config | None:
    """The typed model, built once, with the catalogue's claims that apply. With the schema's problems it is
    built where it can be (``lenient``: a part it cannot hold is left out), so the relational checks of every
    other part report in the same pass."""
    from ..claims.catalogue import applicable_claims
    from .build import build_model

    try:
        return applicable_claims(build_model(document, claims, lenient=tolerate))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        if not tolerate:
            raise  # a schema-valid document the model cannot hold: a bug
        return None


def _guarded(check: Callable[[], list[str]], tolerate: bool) -> list[str]:
    """With schema problems, a check may meet the malformed values the schema already named: it then
    reports what it can instead of failing. Without them, an exception here is a bug and surfaces."""
    if not tolerate:
        return check()
    try:
        return check()
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        return []


def _with_integer_seeds(config: dict[str, Any]) -> dict[str, Any]:
    """``snakemake --config seeds=[0,1,2]`` passes the seeds as strings: digit strings become integers."""
    for path in SEED_KEYS:
        parent = config
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(path[-1]), list):
            parent[path[-1]] = [int(s) if isinstance(s, str) and re.fullmatch(r"[0-9]{1,10}", s) else s
                                for s in parent[path[-1]]]
    return config


# --- the schema ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _schema_text() -> dict[str, Any]:
    from .yaml_input import read_yaml_file

    return read_yaml_file(schema_path("config"))


def load_schema(catalog: Catalog) -> dict[str, Any]:
    """The config's JSON schema with the enums that come from the registries and the typed model."""
    schema = copy.deepcopy(_schema_text())
    props = schema["properties"]
    dataset = props["datasets"]["additionalProperties"]["properties"]
    dataset["source"]["enum"] = sorted(catalog.datasets)
    dataset["augment"]["enum"] = list(catalog.augmentations)
    dataset["split"]["enum"] = list(SPLITS)
    dataset["loader"]["enum"] = list(LOADERS)
    props["performance"]["properties"]["amp"]["enum"] = list(AMP_MODES)
    props["performance"]["properties"]["batched_backward"]["enum"] = list(BATCHED_BACKWARDS)
    panel = props["figures"]["additionalProperties"]["properties"]["panels"]["items"]["properties"]
    panel["explainer"]["enum"] = list(catalog.explainers)
    props["claims"]["items"]["properties"]["direction"]["enum"] = list(DIRECTIONS)
    props["sweeps"]["properties"]["use"]["enum"] = list(SWEEP_USES)
    props["sweeps"]["properties"]["metric"]["enum"] = list(get_args(SweepMetric))
    props["table_metric"]["enum"] = list(get_args(TableMetric))
    table = props["tables"]["additionalProperties"]["properties"]
    table["metric"]["enum"], table["layout"]["enum"] = list(get_args(MetricKind)), list(get_args(TableLayout))
    props["figures"]["additionalProperties"]["properties"]["kind"]["enum"] = list(get_args(FigureKind))
    props["cluster"]["properties"]["gpu_request"]["enum"] = list(get_args(GpuRequest))
    type_defaults(props["datasets"]["additionalProperties"], DatasetSpec)
    type_defaults(props["budgets"]["additionalProperties"], Budget)
    type_defaults(props["performance"], Performance)
    type_defaults(props["claim_settings"], ClaimSettings)
    type_defaults(schema, RunOptions)  # data_root, eval_batch_size
    return schema


def type_defaults(section: dict[str, Any], cls: type) -> None:
    """The defaults of ``cls`` (a run spec's type the config shares) as ``section``'s schema defaults: written
    once, on the type."""
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        prop = section["properties"].get(f.name)
        if prop is None or default is dataclasses.MISSING:
            continue
        if default is not None or "null" in prop.get("type", ()):  # an unset optional value stays unset
            prop["default"] = encode(default)


def expanded_claims(document: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The config's claims: its catalogue's, then its own (:func:`introspect.claims.catalogue.config_claims`; those
    of the catalogue that apply are kept once the model is built), and the problem reading the catalogue, if any.
    The document keeps only its own claims, so a validated document validates again unchanged."""
    from ..claims.catalogue import config_claims

    own = document.get("claims", [])
    try:
        return config_claims(document), []
    except InputError as error:
        return own if isinstance(own, list) else [], [str(error)]
    except (KeyError, TypeError, AttributeError):  # a malformed section: the schema named it
        return own if isinstance(own, list) else [], []


def schema_problems(document: dict[str, Any], catalog: Catalog) -> list[str]:
    """Every schema violation of ``document`` (which gets the schema's defaults filled in)."""
    import jsonschema

    schema = load_schema(catalog)
    validator = _with_defaults(strict_integers(jsonschema.validators.validator_for(schema)))(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{key_path(e.absolute_path)}: {_message(e)}{_hint(e)}" for e in errors]


def strict_integers(validator_cls):
    """A JSON-schema validator class whose ``integer`` excludes floats such as 3.0 (JSON Schema accepts
    them; epochs: 3.0 would then name runs ``...-e3.0`` and fail in ``range``)."""
    import jsonschema

    checker = validator_cls.TYPE_CHECKER.redefine(
        "integer", lambda _, instance: isinstance(instance, int) and not isinstance(instance, bool))
    return jsonschema.validators.extend(validator_cls, type_checker=checker)


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


def _message(error) -> str:
    message = " ".join(error.message.split())
    return message if len(message) <= 200 else message[:197] + "..."


def _hint(error) -> str:
    if error.validator == "type" and error.validator_value == "boolean" and str(error.instance).lower() in (
            "true", "false"):
        return " (snakemake --config reads only True and False as booleans)"
    if error.validator == "type" and error.validator_value in ("integer", "number") and isinstance(error.instance, str):
        return f" ({_number_text_hint(error.instance)}snakemake --config passes values inside lists and mappings " \
               "as text: put them in a config file)"
    return ""


def _number_text_hint(text: str) -> str:
    """YAML 1.1 reads 1e-4 (no dot, or an unsigned exponent) as text, not as a number."""
    if not re.fullmatch(r"[-+]?[0-9]*\.?[0-9]+[eE][-+]?[0-9]+", text) or not math.isfinite(float(text)):
        return ""
    return f"YAML reads {text} as text: write it as {float(text):.1e}; "


def key_path(path) -> str:
    parts: list[str] = []
    for part in path:
        parts.append(f"[{part}]" if isinstance(part, int) else (("." if parts else "") + str(part)))
    return "".join(parts) or "(top level)"


# --- values, names and paths -----------------------------------------------------------------------

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


def _name_and_path_problems(config: dict[str, Any]) -> list[str]:
    problems = [p for section in NAMED_SECTIONS if isinstance(config.get(section), dict)
                for key in config[section] if (p := name_problem(f"{section}.{key}", key))]
    problems += [p for key in PATH_KEYS if key in config and (p := path_problem(key, config[key]))]
    if isinstance(config.get("results_dir"), str) and not path_problem("results_dir", config["results_dir"]):
        problems += [p for p in [results_dir_problem(config["results_dir"])] if p]
    if isinstance(config.get("name"), str):
        problems += [p for p in [name_problem("name", config["name"])] if p]
    gpu_model = config.get("cluster", {}).get("gpu_model")
    if gpu_model is not None:
        problems += [p for p in [name_problem("cluster.gpu_model", gpu_model)] if p]
    problems += [p for label in config.get("methods", {}) if (p := label_problem(f"methods.{label}", label))]
    return problems


def name_problem(where: str, name: Any) -> str | None:
    if is_name(name):
        return None
    return f"{where}: {shown(name)} is not a valid name: use only {NAME_RULE} (it becomes part of file names)"


def path_problem(where: str, path: Any) -> str | None:
    """A path the workflow writes to or passes to shell commands: a relative path below the working
    directory, or an absolute path other than ``/``, made of plain names, none starting with '-' (a
    command would read it as an option)."""
    if isinstance(path, str) and path:
        parts = PurePath(path).parts
        parts = parts[1:] if PurePath(path).is_absolute() else parts
        if parts and all(part != ".." and re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*", part) for part in parts):
            return None
    return (f"{where}: {shown(path)} must be a relative path inside the working directory (no '..') or an "
            "absolute path below '/', whose parts hold only letters, digits, '_', '.' and '-' and do not "
            "start with '-'")


def results_dir_problem(results_dir: str) -> str | None:
    """The resolved results_dir is no system directory, nor a home directory itself."""
    resolved = os.path.realpath(results_dir)
    homes = {os.path.realpath(os.path.expanduser("~")), "/home", "/root", "/tmp"}
    if resolved in homes or any(resolved == d or resolved.startswith(d + os.sep) for d in SYSTEM_DIRS):
        return (f"results_dir: {results_dir!r} resolves to {resolved}, a system or home directory; the workflow "
                "writes and deletes files below it: give a directory of its own")
    return None


def label_problem(where: str, label: str) -> str | None:
    """Method and group labels are display text (``LE(Grad×Input)``): any printable characters."""
    if isinstance(label, str) and label.strip() and label.isprintable() and len(label) <= 200:
        return None
    return (f"{where}: {shown(label)} is not a valid label: it must be non-empty printable text of at most "
            "200 characters")


def _baseline_problems(given: dict[str, Any], document: dict[str, Any]) -> list[str]:
    """A baseline a table names must be a method variant; the default one (CE) may be absent (then no
    sanity flag compares with it)."""
    tables = given.get("tables") if isinstance(given.get("tables"), dict) else {}
    return [f"tables.{name}.baseline: {table['baseline']!r} is not defined under methods (the sanity flags "
            "compare teachers and collapsed students with it)"
            for name, table in tables.items() if isinstance(table, dict) and "baseline" in table
            and table["baseline"] not in document["methods"]]
