"""A run record or run spec handed to a job, checked with the config's own bounds.

The plan writes each run's record from a validated config, but the file lies in a shared results directory and a
job reads it back: a tampered ``batch_size: -16``, ``epochs: 1e9``, ``loader_workers: 100000``, ``image_size:
100000``, an unknown method, model or compile backend would otherwise reach training as a crash, an allocation
failure or days of work. So its dataset, budget and performance are validated against the same JSON-schema
sections as a config's (bounds, enums, strict integers), its method against the registries' declared
hyper-parameters, its model and compile backend against the registries (:mod:`.registry_facts`).
"""
from __future__ import annotations

from typing import Any

from ..methods.hyperparameters import value_problem
from .registry_facts import Catalog

MAX_SEED = 2**32 - 1


def run_problems(spec: dict[str, Any], method: Any, model: Any, seed: Any, catalog: Catalog | None = None
                 ) -> list[str]:
    """Every problem of a record's (or run spec's) settings, each naming its key; empty when it could have come
    from a valid config. ``spec`` holds ``dataset`` (``name`` for the config's ``source``), ``budget`` and
    ``performance``."""
    import jsonschema

    from .registry_facts import registry_catalog
    from .validate import load_schema, strict_integers

    catalog = catalog or registry_catalog()
    props = load_schema(catalog)["properties"]
    sections = {"dataset": props["datasets"]["additionalProperties"],
                "budget": props["budgets"]["additionalProperties"], "performance": props["performance"]}
    problems = []
    for key, schema in sections.items():
        value = spec.get(key) if isinstance(spec, dict) else None
        if isinstance(value, dict):  # an unset optional value (None) is the type's default, not a setting
            value = {("source" if k == "name" and key == "dataset" else k): v for k, v in value.items()
                     if v is not None and not (key == "dataset" and k == "root")}
        if value is None and key == "performance":  # a hand-written run spec may leave it at its defaults
            continue
        if not isinstance(value, dict):
            problems.append(f"spec.{key}: expected an object")
            continue
        schema = {**schema, "required": [], "additionalProperties": True}  # keys were checked by the decoder
        validator = strict_integers(jsonschema.validators.validator_for(schema))(schema)
        for error in validator.iter_errors(value):
            at = ".".join(map(str, error.absolute_path)) or "(object)"
            problems.append(f"spec.{key}.{at}: {' '.join(error.message.split())[:160]}")
    backend = (spec.get("performance") or {}).get("compile") if isinstance(spec, dict) else None
    if backend is not None and backend not in catalog.compile_backends:
        problems.append(f"spec.performance.compile: {backend!r:.40} is not a compile backend of this torch")
    if model not in catalog.models:
        problems.append(f"model: {model!r:.40} is not a registered model")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        problems.append(f"seed: {seed!r:.40} is not an integer in 0..{MAX_SEED}")
    problems += method_problems(method, catalog)
    return problems


def method_problems(method: Any, catalog: Catalog) -> list[str]:
    """A run's ``method`` ({"name": ..., hyper-parameter: value}): a registered method, its own hyper-parameters,
    each within its declared range."""
    if not isinstance(method, dict) or method.get("name") not in catalog.methods:
        name = method.get("name") if isinstance(method, dict) else method
        return [f"method: {name!r:.40} is not a registered method"]
    info = catalog.method(method["name"])
    problems = []
    for key, value in method.items():
        if key == "name":
            continue
        spec = info.hyperparameter_specs.get(key)
        if spec is None:
            problems.append(f"method.{key}: not a hyper-parameter of {method['name']}")
        elif problem := value_problem(value, spec):
            problems.append(f"method.{key}: {problem}")
    return problems
