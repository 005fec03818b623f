"""One family of domain types: each class name is defined once in the package, and the types a run spec shares
with the config are the same objects on both sides (no second definition, no dict handoff between them)."""
from __future__ import annotations

import ast
import dataclasses
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import introspect
from introspect.config import claim as claim_type
from introspect.config import model
from introspect.config.model import load_config
from introspect.config.registry_facts import registry_catalog
from introspect.config.validate import load_schema, validate_config
from introspect.runs import spec
from introspect.runs.record import RunRecord

SRC = Path(introspect.__file__).parent

# Names still defined twice, each with why; the test fails when one is resolved (drop it here) or a new one
# appears (define it once and import it).
KNOWN_DUPLICATES = {
    "Plan": "plan.outputs.Plan is a Protocol of plan.build.Plan (outputs may not import build: a cycle)",
}


def _class_definitions() -> dict[str, list[str]]:
    defined: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                defined[node.name].append(str(path.relative_to(SRC)))
    return defined


def test_each_class_name_is_defined_once():
    twice = {name: paths for name, paths in _class_definitions().items() if len(paths) > 1}
    assert set(twice) - set(KNOWN_DUPLICATES) == set(), f"defined more than once: {twice}"
    assert set(KNOWN_DUPLICATES) - set(twice) == set(), "resolved: drop from KNOWN_DUPLICATES"


def test_the_config_holds_the_run_specs_types():
    assert model.Budget is spec.Budget and model.Performance is spec.Performance
    assert model.DatasetSpec is spec.DatasetSpec
    hints = {f.name: f.type for f in dataclasses.fields(model.Config)}
    assert hints["performance"] == "Performance" and hints["budgets"] == "Mapping[str, Budget]"
    assert hints["datasets"] == "Mapping[str, DatasetSpec]"
    record_hints = {f.name: f.type for f in dataclasses.fields(RunRecord)}
    assert record_hints["spec"] == "RunSettings"  # typed from the plan to the job; JSON only at the file


def test_shared_types_are_frozen():
    for cls in (spec.Budget, spec.Performance, spec.DatasetSpec, spec.RunSettings, spec.RunSpec):
        assert cls.__dataclass_params__.frozen, cls


def test_schema_defaults_come_from_the_types():
    """Each default of a shared type is written on the type only; the schema the validator uses carries it."""
    schema = load_schema(registry_catalog())["properties"]
    budget = schema["budgets"]["additionalProperties"]["properties"]
    assert {k: v.get("default") for k, v in budget.items()} == {
        "epochs": None, "batch_size": None, "lr": None,
        "lr_milestones": [], "lr_gamma": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
    performance = schema["performance"]["properties"]
    assert {k: v["default"] for k, v in performance.items()} == {"channels_last": True, "amp": "none",
                                                                 "compile": None, "tf32": False,
                                                                 "batched_backward": "auto", "native_kernels": False}
    dataset = schema["datasets"]["additionalProperties"]["properties"]
    assert {k: v["default"] for k, v in dataset.items() if "default" in v} == {
        "val_fraction": 0.1, "test_fraction": 0.2, "split_seed": 0, "loader": "device", "loader_workers": 0}
    raw = (SRC / "config" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8")
    sections = (("  datasets:", "  budgets:"), ("  budgets:", "  methods:"), ("  performance:", "  local_worker:"))
    for start, end in sections:
        section = raw[raw.index(start):raw.index(end)]
        assert "default:" not in section[section.index("properties:"):], start


def test_a_record_carries_the_config_models_objects(tmp_path):
    """The plan hands the job the config's own dataset, budget and performance (no copy through a dict), and
    the record's file holds the dataset's optional settings only where the config gives them."""
    from introspect.plan.build import build_plan

    plan = build_plan({"results_dir": str(tmp_path), "seeds": [0],
                       "datasets": {"d": {"source": "digits", "image_size": 8}},
                       "budgets": {"b": {"epochs": 2, "batch_size": 32, "lr": 0.1}},
                       "methods": {"CE": {"method": "ce"}},
                       "tables": {"t": {"title": "t", "dataset": "d", "methods": ["CE"],
                                        "groups": [{"label": "g", "model": "mlp1024", "budget": "b"}]}}})
    (record,) = plan.runs.values()
    assert record.spec.dataset is plan.config.datasets["d"] and record.spec.budget is plan.config.budgets["b"]
    assert record.spec.performance is plan.config.performance
    assert record.to_dict()["spec"]["dataset"] == {"name": "digits", "image_size": 8, "val_fraction": 0.1,
                                                   "test_fraction": 0.2, "split_seed": 0, "loader": "device",
                                                   "loader_workers": 0}
    assert RunRecord.from_dict(record.to_dict()) == record
    run = record.run_spec()
    assert run.dataset is record.spec.dataset and run.data_root == "data"
    assert run.to_dict()["dataset"]["root"] == "data" and run.to_dict()["dataset"]["split"] == "fixed"
    assert spec.RunSpec.from_dict(run.to_dict()) == replace(run, dataset=replace(run.dataset, split="fixed"))


def test_a_budget_round_trips_through_its_json_form():
    budget = spec.Budget(epochs=160, batch_size=128, lr=0.1, lr_milestones=(0.5, 0.75))
    data = budget.to_dict()
    assert data == {"epochs": 160, "batch_size": 128, "lr": 0.1, "lr_milestones": [0.5, 0.75], "lr_gamma": 0.1,
                    "momentum": 0.9, "weight_decay": 1e-4}
    assert spec.Budget.from_dict(data) == budget
    assert budget.milestone_epochs() == [80, 120]


def test_closed_sets_are_written_once_and_reach_the_schema_and_the_specs():
    """Each closed set is a Literal of the config model; the schema's enum, the view specs' and the claims engine's
    types are it (a spec file with any of its values decodes)."""
    from typing import get_args, get_type_hints

    from introspect.claims import engine
    from introspect.plan import views
    from introspect.runs.typed import decode

    schema = load_schema(registry_catalog())["properties"]
    table = schema["tables"]["additionalProperties"]["properties"]
    enums = {"table_metric": (schema["table_metric"], model.TableMetric),
             "sweeps.metric": (schema["sweeps"]["properties"]["metric"], model.SweepMetric),
             "tables.metric": (table["metric"], model.MetricKind),
             "tables.layout": (table["layout"], model.TableLayout),
             "figures.kind": (schema["figures"]["additionalProperties"]["properties"]["kind"], model.FigureKind),
             "cluster.gpu_request": (schema["cluster"]["properties"]["gpu_request"], model.GpuRequest)}
    for key, (prop, closed) in enums.items():
        assert prop["enum"] == list(get_args(closed)), key
    raw = (SRC / "config" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8")
    assert "enum:" not in raw.split("\nproperties:", 1)[1].replace("# enum:", "")
    assert get_type_hints(claim_type.Claim)["direction"] is claim_type.Direction
    assert get_type_hints(views.SweepSettings)["use"] is model.SweepUse
    assert get_type_hints(views.Selection)["metric"] is model.SweepMetric
    assert engine.DIRECTIONS == get_args(claim_type.Direction) == ("greater", "equivalent", "not_better",
                                                                   "less_variable", "cheaper", "similar_pairs")
    claim = {"name": "c", "view": "t", "group": "g", "model": "m", "method_a": "A", "method_b": "B",
             "direction": "not_better", "margin": None, "family": "all", "text": "", "dataset": "digits",
             "paper_dataset": None, "paper_table": None, "metric_kind": "accuracy"}
    assert claim_type.Claim.from_dict(claim).direction == "not_better"
    assert decode(views.ClaimsSpec, {"results_dir": "r", "claims": [claim], "cells": {}}, "").claims[0].view == "t"


def test_the_traversals_of_views_are_methods_of_the_model():
    """Which methods a group trains and which views claims name: one spelling each, on the typed model."""
    group = model.Group("g", "m", "b", "d", None, None, {}, ("B",), {})
    assert group.trained_labels(["A", "B", "C"]) == ["A", "C"]
    panel = model.Group("p", "m", "b", "d", None, None, {}, (), {}, method="LE", explainer="grad_cam")
    assert panel.trained_labels(["A", "B"]) == ["LE"]
    config = validate_config(load_config(SRC.parents[1] / "config" / "config.yaml"))
    accuracy_figures = {n for n, f in config.document["figures"].items() if f["kind"] == "accuracy"}
    assert set(config.claim_views) == set(config.document["tables"]) | accuracy_figures
    cells = config.claim_cells()
    for name, table in config.document["tables"].items():
        for g in table["groups"]:
            for label in table["methods"]:
                assert ((name, g["label"], label) in cells) == (label not in g.get("exclude", []))


def test_claim_settings_defaults_are_written_once():
    """The schema's, the claims spec's and the engine's defaults are ClaimSettings' own."""
    from introspect.claims import engine
    from introspect.plan import views

    assert views.ClaimSettings is model.ClaimSettings
    schema = load_schema(registry_catalog())["properties"]["claim_settings"]["properties"]
    assert {k: v["default"] for k, v in schema.items() if "default" in v} == {
        "alpha": 0.05, "power": 0.8, "smallest_effect_pp": 0.5, "max_seeds": 20, "compare_magnitudes": True}
    assert (engine.ALPHA, engine.POWER, engine.SMALLEST_EFFECT_PP) == (0.05, 0.8, 0.5)
    config = validate_config({**load_config(SRC.parents[1] / "config" / "smoke.yaml"),
                              "claim_settings": {"alpha": 0.01, "cost_config": "config/paper.yaml"}})
    assert config.claim_settings == model.ClaimSettings(alpha=0.01, seeds=config.seeds)
    assert config.cost_config == "config/paper.yaml"


def test_job_option_defaults_are_written_once():
    """data_root and eval_batch_size: RunOptions' defaults are the schema's and the run spec's."""
    schema = load_schema(registry_catalog())["properties"]
    assert (schema["data_root"]["default"], schema["eval_batch_size"]["default"]) == ("data", 1000)
    assert spec.RunOptions() == spec.RunOptions(schema["data_root"]["default"], schema["eval_batch_size"]["default"])
    run = spec.RunSpec.from_dict({"run_id": "r", "dataset": {"name": "digits"}, "model": "mlp1024",
                                  "method": {"name": "ce"}, "budget": {"epochs": 1, "batch_size": 8, "lr": 0.1},
                                  "seed": 0})
    assert (run.data_root, run.eval_batch_size) == ("data", 1000)


def test_a_yte_template_is_refused_in_one_wording_wherever_it_is_found(tmp_path):
    from introspect.config.overlays import read_config_file, template_problem
    from introspect.config.validate import config_problems
    from introspect.errors import InputError

    expected = ("__use_yte__: a YTE template (Snakemake would evaluate its expressions as Python); a config is "
                "data: write the values out")
    assert template_problem({"__use_yte__": True, "seeds": [0]}) == expected
    assert template_problem({"seeds": [0]}) is None
    assert config_problems({"__use_yte__": True}, registry_catalog())[2] == [expected]
    (tmp_path / "c.yaml").write_text("__use_yte__: true\nseeds: [0]\n")
    try:
        read_config_file(tmp_path / "c.yaml")
    except InputError as error:
        assert str(error).endswith(expected)
    else:
        raise AssertionError("a templated file was read")


def test_the_typed_models_checks_run_in_the_same_pass_as_the_documents():
    """A problem only the typed model's checks find (a student group without a teacher) is reported together with
    one the document's reference checks find (an unknown budget), in one error."""
    from introspect.config.model import ConfigError

    config = load_config(SRC.parents[1] / "config" / "smoke.yaml")
    student = next(g for g in config["tables"]["table5"]["groups"] if g.get("teacher"))
    del student["teacher"]
    config["tables"]["table2"]["groups"][0]["budget"] = "nope"
    try:
        validate_config(config)
    except ConfigError as error:
        lines = str(error).splitlines()
    else:
        raise AssertionError("accepted")
    assert any(line.strip().startswith("tables.table2.groups[0].budget: 'nope' is not under budgets")
               for line in lines), lines
    assert any("needs a teacher; give group" in line and line.strip().startswith("tables.table5.groups[")
               for line in lines), lines


def test_no_default_is_written_both_in_the_schema_and_on_a_type():
    """A default the schema file writes is not repeated on a field of the same name of a config, plan or run type
    (the types whose defaults the schema takes are listed in load_schema, and the file then leaves them out)."""
    import yaml

    from introspect.plan import views
    from introspect.runs import record

    raw = yaml.safe_load((SRC / "config" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    written: list[tuple[str, object]] = []

    def walk(node: object, name: str | None) -> None:
        if not isinstance(node, dict):
            return
        if name and "default" in node:
            written.append((name, node["default"]))
        for key, child in node.get("properties", {}).items():
            walk(child, key)
        for key in ("additionalProperties", "items"):
            walk(node.get(key), None)

    walk(raw, None)
    assert ("seeds", [0]) in written and len(written) > 20  # the walk reaches nested sections
    on_types = {}
    for module in (model, claim_type, views, spec, record):
        for cls in vars(module).values():
            if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__:
                for f in dataclasses.fields(cls):
                    if f.default is not dataclasses.MISSING:
                        on_types.setdefault(f.name, []).append((f.default, cls.__name__))
    twice = [(name, value, cls) for name, value in written for default, cls in on_types.get(name, [])
             if default == value and type(default) is type(value)]
    assert twice == []


def test_later_performance_options_enter_a_record_only_when_they_differ_from_the_types_default():
    assert spec.Performance().to_dict() == {"channels_last": True, "amp": "none", "compile": None}
    assert spec.Performance(tf32=True, batched_backward="vmap").to_dict() == {
        "channels_last": True, "amp": "none", "compile": None, "tf32": True, "batched_backward": "vmap"}
    assert set(spec.LATER_OPTIONS) <= {f.name for f in dataclasses.fields(spec.Performance)}


def test_a_claim_is_one_type_from_the_config_to_the_engine():
    """The config's claim, the plan's (its view's facts added) and the engine's input are one frozen class; the
    claims spec file holds what the config and the plan say, and the claims job's own facts never reach it."""
    import json

    import pytest

    from introspect.errors import InputError
    from introspect.plan.build import build_plan
    from introspect.plan.job_files import spec_text

    plan = build_plan(load_config(SRC.parents[1] / "config" / "smoke.yaml"))
    stated = {c.name: c for c in plan.config.claims}
    planned = [c for c in plan.claims.claims if c.direction != "similar_pairs"]
    assert planned and all(type(c) is claim_type.Claim for c in [*stated.values(), *plan.claims.claims])
    first = planned[0]
    unplanned = replace(first, model=None, dataset=None, paper_dataset=None, paper_table=None, metric_kind=None,
                        epochs=None)
    assert unplanned == stated[first.name] and first.model and first.epochs
    data = json.loads(spec_text(plan.claims))["claims"][0]
    assert set(data) == {"name", "view", "group", "method_a", "method_b", "direction", "margin", "family", "text",
                         "part_of", "pairs", "model", "dataset", "paper_dataset", "paper_table", "metric_kind",
                         "epochs"}
    assert claim_type.Claim.from_dict(data) == plan.claims.claims[0]
    judged = replace(first, paper_effect=1.5, paper_sd=0.2, seed_gpu_hours=3.0, paper_setting=False)
    assert judged.to_dict() == first.to_dict() and judged.values_key == f"{first.view} · {first.group}"
    with pytest.raises(InputError, match="paper_effect"):
        claim_type.Claim.from_dict({**data, "paper_effect": 1.5})
