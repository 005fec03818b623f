"""Random edits of the smoke config (values replaced by arbitrary JSON, keys renamed or deleted) are
either planned, with every output inside results_dir and every run's spec and method buildable as its
job will build them, or rejected by a ConfigError whose message starts with a key path: never another
exception. Planning only: nothing trains.

INTROSPECT_FUZZ_EXAMPLES sets the number of configs tried (default 300: ~15 s, 50 ms per plan).
"""
import copy
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from introspect.config.schemas import schema_path
from introspect.methods import build_method
from introspect.plan.build import ConfigError, build_plan, load_config
from introspect.runs.record import RunRecord
from introspect.runs.spec import RunSpec

ROOT = Path(__file__).resolve().parents[1]
SMOKE = load_config(ROOT / "config" / "smoke.yaml")
SCHEMA_KEYS = set(yaml.safe_load(schema_path("config").read_text())["properties"])
EXAMPLES = int(os.environ.get("INTROSPECT_FUZZ_EXAMPLES", "300"))

# Strings that attack paths and shells, and names the config already uses (so edits reach the deeper checks).
HOSTILE = ["../", "../../outside", "a;touch pwned", "$(id)", "`id`", "a b", "a/b", "/abs", "..", ".", "",
           "x\n", "é", "LE(Grad×Input)", "-rf", "a+b", "C:\\x"]
KNOWN = ["digits", "resnet", "mlp", "cnn", "CE", "KD", "LE(Grad)", "Dropout", "table1", "table5", "cnn8",
         "resnet14", "resnet8", "mlp1024", "grad", "grad_cam", "kd", "le", "temperature", "warmup_fraction",
         "students", "figure1"]


def all_paths(node, prefix=()):
    """Key/index paths of every node below the root."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        yield prefix + (key,)
        yield from all_paths(child, prefix + (key,))


PATHS = list(all_paths(SMOKE))
strings = st.text(max_size=10) | st.sampled_from(HOSTILE + KNOWN)
scalars = (st.none() | st.booleans() | st.integers(-3, 200) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1, 0.5, 0.99, 1e-9, 3]) | strings)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(strings, inner, max_size=3), max_leaves=6)
edits = st.lists(st.tuples(st.sampled_from(["replace", "rename", "delete"]), st.sampled_from(PATHS),
                           scalars | json_values, strings), min_size=1, max_size=3)


def parent_of(config, path):
    node = config
    for key in path[:-1]:
        node = node[key] if has(node, key) else None
    return node if has(node, path[-1]) else None


def has(node, key) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and key < len(node)


def edited(edit_list):
    config = copy.deepcopy(SMOKE)
    for action, path, value, new_name in edit_list:
        parent = parent_of(config, path)
        if parent is None:
            continue  # an earlier edit removed it
        key = path[-1]
        if action == "replace":
            parent[key] = value
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict) and new_name not in parent:
            parent[new_name] = parent.pop(key)
    return config


def first_key(message: str) -> str:
    """The head of the key path the (first) problem is about: ``tables`` of ``tables.t1.groups[0]: ...``."""
    line = message.removeprefix("invalid config:\n").strip().splitlines()[0]
    if line.startswith("(top level)"):
        return "(top level)"
    return re.match(r"[A-Za-z_]*", line).group(0)


def outputs_of(plan):
    """Every planned output path, laid out as workflow/rules write them."""
    results = Path(plan.config.results_dir)
    yield from (results / "runs" / run_id for run_id in plan.runs)
    specs = [run.run_spec() for run in plan.runs.values()]
    yield from (Path(path) for spec in specs for path in (spec.teacher, spec.init_from, spec.hyperparameters_from)
                if path)
    yield from (Path(s.path) for s in plan.selections.values())
    for name in [*plan.tables, *plan.analyses]:
        yield plan.layout.table(name, "md")
    for name in plan.figures:
        yield plan.layout.figure(name, "png")


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(edits)
def test_an_edited_config_is_planned_safely_or_rejected_naming_a_key(edit_list):
    config = edited(edit_list)
    try:
        plan = build_plan(config)
    except ConfigError as error:
        assert first_key(str(error)) in set(config) | SCHEMA_KEYS | {"(top level)"}, str(error)
        return
    root = os.path.abspath(plan.config.results_dir)
    for path in outputs_of(plan):
        target = os.path.abspath(path)
        assert target.startswith(root.rstrip(os.sep) + os.sep), (path, root)
    for run_id in plan.runs:  # run ids reach shell commands and wildcard regexes
        assert re.fullmatch(r"[A-Za-z0-9_.+/-]+", run_id) and ".." not in run_id.split("/"), run_id
        # what a job does first: parse its spec (strict JSON: no NaN) and build its method
        record = RunRecord.from_dict(json.loads(json.dumps(plan.runs[run_id].to_dict(), allow_nan=False)))
        spec = RunSpec.from_dict(record.run_spec_dict())
        assert isinstance(spec.budget.epochs, int) and isinstance(spec.seed, int)
        build_method(spec.method["name"], **spec.method_hyperparameters())
