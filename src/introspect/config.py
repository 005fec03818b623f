"""Config files: loading, and validation before any job starts.

A config is checked against the JSON schema (``workflow/schemas/config.schema.yaml``, which also
fills in defaults), then for what a schema cannot express: the method, model, dataset, budget and
teacher names it refers to must exist (checked against the registries' cached catalog, so no torch
import). Every error is a :class:`ConfigError` whose message names the key.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .catalog import registry_catalog
from .schemas import schema_path
from .validation import config_problems, load_schema, strict_integers

SCHEMA_PATH = schema_path("config")


class ConfigError(ValueError):
    """A config value is wrong; the message names the key."""


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

    schema = load_schema(str(schema_path))
    config = copy.deepcopy(config)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = _with_defaults(strict_integers(validator_cls))(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key(e.absolute_path)}: {e.message}{_hint(e)}" for e in errors[:10]]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    _check_references(config)
    reject(config_problems(config, registry_catalog()))
    return config


def reject(problems: list[str]) -> None:
    """One ConfigError listing (up to ten of) the problems found, each naming its key."""
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {p}" for p in problems[:10]))


def _hint(error) -> str:
    boolean_text = str(error.instance).lower() in ("true", "false")
    if error.validator == "type" and error.validator_value == "boolean" and boolean_text:
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
    catalog = registry_catalog()
    for label, variant in config["methods"].items():
        name = variant["method"]
        try:
            known = set(catalog.method(name).hyperparameters)
        except KeyError as error:
            raise ConfigError(f"methods.{label}.method: {error.args[0]}") from None
        keys = [k for k in variant if k not in ("method", "sweep")] + [f"sweep.{k}" for k in variant.get("sweep", {})]
        for key in keys:
            if key.removeprefix("sweep.") not in known | {"warmup_fraction"}:
                raise ConfigError(f"methods.{label}.{key}: method {name!r} has no such hyper-parameter "
                                  f"(it accepts: {', '.join(sorted(known))})")
    models = set(catalog.models)
    for name, dataset in config["datasets"].items():
        if dataset.get("split") == "per_seed" and dataset["source"] not in ("digits", "mnist5k"):
            raise ConfigError(f"datasets.{name}.split: {dataset['source']} ships its own test set; "
                              "per_seed applies only to digits and mnist5k")
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
