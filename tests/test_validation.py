"""Hostile or inconsistent configs are rejected at planning, naming the key; hyper-parameter checks
come from the methods' dataclass fields; no planned output leaves results_dir."""
import copy
import dataclasses
import math
import os
import re
from pathlib import Path

import pytest

from introspect.claims.catalogue import config_claims
from introspect.config.registry_facts import registry_catalog
from introspect.config.validate import path_problem, validate_config
from introspect.methods import available_methods, build_method, method_class
from introspect.methods.hyperparameters import describe, value_problem
from introspect.plan.build import ConfigError, build_plan, load_config, warmup_summary
from introspect.plan.outputs import ensure_inside

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke():
    """The smoke config with its catalogue claims written out, so that renaming a table or method renames
    them too."""
    config = load_config(ROOT / "config" / "smoke.yaml")
    applying = {claim.name for claim in validate_config(config).claims}  # the catalogue's that apply, and its own
    config["claims"] = [{k: v for k, v in claim.items() if k != "from_catalogue"} for claim in config_claims(config)
                        if claim["name"] in applying]
    del config["claim_settings"]
    return config


def rename_dataset(config, new):
    config["datasets"] = {new: config["datasets"].pop("digits")}
    for section in ("tables", "figures"):
        for entry in config[section].values():
            entry["dataset"] = new


def rename_budget(config, old, new):
    config["budgets"][new] = config["budgets"].pop(old)
    groups = [g for s in ("tables", "figures") for e in config[s].values()
              for g in e.get("groups", []) + e.get("panels", [])] + list(config["teachers"].values())
    for group in groups:
        if group["budget"] == old:
            group["budget"] = new


def rename_table(config, old, new):
    config["tables"][new] = config["tables"].pop(old)
    for analysis in config["analyses"].values():
        analysis["tables"] = [new if t == old else t for t in analysis["tables"]]
        if analysis.get("figure_table") == old:
            analysis["figure_table"] = new
    for claim in config.get("claims", []):
        claim["table"] = new if claim["table"] == old else claim["table"]


HOSTILE = {
    # names reach file names and shell commands
    "dataset key running a command": (lambda c: rename_dataset(c, "digits;touch pwned"),
                                      ["datasets.digits;touch pwned", "not a valid name", "letters, digits"]),
    "dataset key with a space": (lambda c: rename_dataset(c, "my digits"), ["datasets.my digits", "not a valid name"]),
    "budget key escaping results_dir": (lambda c: rename_budget(c, "resnet", "../../../escape"),
                                        ["budgets.../../../escape", "not a valid name"]),
    "table name escaping results_dir": (lambda c: rename_table(c, "table2", "../../outside"),
                                        ["tables.../../outside", "not a valid name"]),
    "figure name with a slash": (lambda c: c["figures"].update({"a/b": c["figures"].pop("figure3")}),
                                 ["figures.a/b", "not a valid name"]),
    "teacher name with a quote": (lambda c: c["teachers"].update({"x'y": c["teachers"].pop("cnn8")})
                                  or c["tables"]["table1"]["groups"][0].update(teacher="x'y"),
                                  ["teachers.x'y", "not a valid name"]),
    "results_dir going up": (lambda c: c.update(results_dir="../results"), ["results_dir", "no '..'"]),
    "results_dir with a shell character": (lambda c: c.update(results_dir="out;rm -rf x"), ["results_dir"]),
    "reported_results with a space": (lambda c: c.update(reported_results="my results.csv"), ["reported_results"]),
    # LE warm-up
    "warm-up rounding to every epoch": (lambda c: c["methods"]["LE(Grad-CAM)"].update(warmup_fraction=0.99),
                                        ["methods.LE(Grad-CAM).warmup_fraction", "budget 'resnet'",
                                         "0 Stage-2 epochs"]),
    "warm-up rounding to no epoch": (lambda c: c["methods"]["LE(Grad)"].update(warmup_fraction=0.1),
                                     ["methods.LE(Grad).warmup_fraction", "rounds to 0 warm-up epochs"]),
    "warm-up epochs filling the budget": (lambda c: c["methods"]["LE(Grad)"].update(warmup_epochs=2) or
                                          c["methods"]["LE(Grad)"].pop("warmup_fraction"),
                                          ["methods.LE(Grad).warmup_epochs", "budget 'mlp'"]),
    "warm-up fraction of a method without warm-up": (lambda c: c["methods"]["KD"].update(warmup_fraction=0.5),
                                                     ["methods.KD.warmup_fraction", "no such hyper-parameter"]),
    "swept warm-up": (lambda c: c["methods"]["LE(Grad)"].update(sweep={"warmup_fraction": [0.3, 0.5]}),
                      ["methods.LE(Grad).sweep.warmup_fraction", "cannot be swept"]),
    # hyper-parameter types and ranges
    "a string for a number": (lambda c: c["methods"]["DML"].update(kl_weight="abc"),
                              ["methods.DML.kl_weight: expected a number in [0, 1000000], got 'abc'"]),
    "a string in a sweep": (lambda c: c["methods"]["BAN"]["sweep"].update(temperature=[1, "hot"]),
                            ["methods.BAN.sweep.temperature[1]: expected a number in (0, 1000], got 'hot'"]),
    "a boolean for a number": (lambda c: c["methods"]["KD"].update(temperature=True),
                               ["methods.KD.temperature: expected a number in (0, 1000], got True"]),
    "a float for an integer": (lambda c: c["methods"]["e2KD"].update(every=1.5),
                               ["methods.e2KD.every: expected an integer in [1, 1000000], got 1.5"]),
    "an out-of-range override": (lambda c: c["tables"]["table6"]["groups"][0]["method_overrides"]["LE-Permut"]
                                 .update(alpha=0), ["tables.table6.groups[0].method_overrides.LE-Permut.alpha",
                                                    "expected a number in (0, 1], got 0"]),
    "an unknown explainer in an override": (lambda c: c["tables"]["table6"]["groups"][0]["method_overrides"]
                                            ["LE-Permut"].update(explainer="lime"),
                                            ["method_overrides.LE-Permut.explainer", "one of 'grad'"]),
    "an infinite weight": (lambda c: c["methods"]["KD"].update(ce_weight=math.inf), ["methods.KD.ce_weight"]),
    "a NaN learning rate": (lambda c: c["budgets"]["cnn"].update(lr=math.nan),
                            ["budgets.cnn.lr: expected a finite number, got nan"]),
    "a float number of epochs": (lambda c: c["budgets"]["cnn"].update(epochs=2.0),
                                 ["budgets.cnn.epochs", "not of type 'integer'"]),
    "an override changing the method": (lambda c: c["tables"]["table6"]["groups"][0]["method_overrides"]
                                        ["LE-Permut"].update(method="kd"),
                                        ["tables.table6.groups[0].method_overrides.LE-Permut.method",
                                         "not the method"]),
    "a GPU model with a shell character": (lambda c: c.update(cluster={"gpu_model": "a100 --x"}),
                                           ["cluster.gpu_model", "not a valid name"]),
    # cross-references
    "compare_to a method not in the table": (lambda c: c["tables"]["table1"].update(compare_to=["LS"]),
                                             ["tables.table1.compare_to[0]", "'LS' is not one of the table's methods"]),
    "teacher_overrides of a method not in the table": (
        lambda c: c["tables"]["table4"]["groups"][0]["teacher_overrides"].update(BNA="peer_resnet8"),
        ["tables.table4.groups[0].teacher_overrides.BNA"]),
    "an analysis of a method its tables lack": (lambda c: c["analyses"]["students"].update(methods=["LS"]),
                                                ["analyses.students.methods[0]", "'LS'"]),
    "two groups with one label": (lambda c: c["tables"]["table6"]["groups"][1].update(label="MLP1024"),
                                  ["tables.table6.groups[1].label", "earlier group"]),
    "a table and an analysis writing one file": (lambda c: rename_table(c, "table3", "students"),
                                                 ["analyses.students", "as tables.students does"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_or_inconsistent_configs_are_rejected_naming_the_key(smoke, case):
    mutate, fragments = HOSTILE[case]
    config = copy.deepcopy(smoke)
    mutate(config)
    with pytest.raises(ConfigError) as info:
        build_plan(config)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_display_labels_reach_paths_only_as_slugs(smoke):
    config = copy.deepcopy(smoke)
    config["methods"]["../../LE; rm"] = config["methods"].pop("Dropout")
    for table in config["tables"].values():
        table["methods"] = ["../../LE; rm" if m == "Dropout" else m for m in table["methods"]]
    for claim in config["claims"]:
        claim.update({k: "../../LE; rm" for k in ("a", "b") if claim[k] == "Dropout"})
    plan = build_plan(config)
    paths = [s.path for s in plan.selections.values()] + [str(plan.layout.run(r).directory) for r in plan.runs]
    assert any("LE_rm" in p for p in paths)
    assert not any(";" in p or " " in p or "/../" in p for p in paths)


def test_an_absolute_results_dir_is_the_users_choice(smoke, tmp_path):
    plan = build_plan({**copy.deepcopy(smoke), "results_dir": str(tmp_path / "out")})
    assert all(Path(run.run_spec().init_from or tmp_path / "out" / "x").is_relative_to(tmp_path / "out")
               for run in plan.runs.values())


def test_ensure_inside_resolves_dots_but_not_symlinks():
    ensure_inside("results", "results/runs/a/../b")
    ensure_inside("/abs/results", "/abs/results/tables/t.md")
    for outside in ("results/../x", "results", "resultsX/a", "/elsewhere/results/a", "results/runs/../../x"):
        with pytest.raises(ValueError, match="not inside results_dir"):
            ensure_inside("results", outside)


@pytest.mark.parametrize("path,ok", [
    ("results", True), ("out/smoke-1.2", True), ("/scratch/u_1/results", True), ("./results", True),
    ("../results", False), ("a/../../b", False), ("my results", False), ("r;ls", False), ("$HOME/r", False),
    ("~/r", False), ("", False), (None, False), ("rés", False),
])
def test_paths_are_plain_relative_or_absolute(path, ok):
    assert (path_problem("results_dir", path) is None) == ok


@pytest.mark.parametrize("value,spec,expected", [
    (2, {"type": "number", "gt": 0}, None),  # ints are numbers
    (0.0, {"type": "number", "gt": 0}, "expected a number > 0, got 0.0"),
    (True, {"type": "number"}, "expected a number, got True"),  # booleans are not
    (float("nan"), {"type": "number"}, "expected a number, got nan"),
    (1, {"type": "number", "gt": 0, "le": 1}, None),
    (1.5, {"type": "number", "ge": 0, "lt": 1}, "expected a number in [0, 1), got 1.5"),
    (3.0, {"type": "integer", "ge": 1}, "expected an integer >= 1, got 3.0"),
    (0, {"type": "integer", "ge": 1}, "expected an integer >= 1, got 0"),
    (1, {"type": "boolean"}, "expected true or false, got 1"),
    ("grad", {"type": "string", "choices": ["grad", "grad_cam"]}, None),
    ("lime", {"type": "string", "choices": ["grad", "grad_cam"]}, "expected one of 'grad', 'grad_cam', got 'lime'"),
    ("../x", {"type": "string"}, "expected a name"),  # free strings reach run ids through the slug
])
def test_value_problems_spell_out_the_expected_range(value, spec, expected):
    problem = value_problem(value, spec)
    assert problem == expected if expected is None else expected in problem


def test_every_hyperparameter_check_comes_from_its_dataclass_field():
    """The catalog carries each field's type and bounds; building the method enforces the same bounds:
    each bound admits its limit or not as declared (tried one method and value at a time)."""
    catalog = registry_catalog()
    for name in available_methods():
        fields = {f.name: f for f in dataclasses.fields(method_class(name)) if f.init}
        specs = catalog.method(name).hyperparameter_specs
        assert set(specs) == set(fields), name
        for key, spec in specs.items():
            python_type = {"number": "float", "integer": "int", "boolean": "bool", "string": "str"}[spec["type"]]
            assert fields[key].type == python_type, (name, key)
            for bound, limit in spec.items():
                if bound not in ("gt", "ge", "lt", "le"):
                    continue
                rejects_limit = bound in ("gt", "lt")
                if rejects_limit:
                    with pytest.raises(ValueError, match=f"{name}.{key}"):
                        build_method(name, **{key: limit})
                else:
                    build_method(name, **{key: limit})
                beyond = limit - 1 if bound in ("gt", "ge") else limit + 1
                with pytest.raises(ValueError, match=re.escape(f"{name}.{key}: expected {describe(spec)}")):
                    build_method(name, **{key: beyond})


def test_a_subclass_changing_a_default_keeps_the_parents_range():
    assert registry_catalog().method("e2kd").hyperparameter_specs["temperature"] == {"type": "number", "gt": 0,
                                                                                     "le": 1000}
    with pytest.raises(ValueError, match="e2kd.temperature"):
        build_method("e2kd", temperature=0)


def test_the_plan_reports_the_warmup_it_chose(smoke):
    config = copy.deepcopy(smoke)
    config["budgets"]["resnet"]["epochs"] = 4
    config["methods"]["LE(Grad-CAM)"]["warmup_fraction"] = 0.5
    plan = build_plan(config)
    lines = warmup_summary(plan.config)
    assert "warm-up: 2 of 4 epochs (warmup_fraction 0.5 of budget 'resnet'): LE(Grad-CAM)" in lines
    stage2 = [r for r in plan.runs.values() if r.kind == "stage2" and r.method["name"] == "le"
              and r.spec.budget.epochs == 4 and r.method["explainer"] == "grad_cam"]
    assert stage2 and all(r.method["warmup_epochs"] == 2 for r in stage2)


def test_no_planned_output_of_the_shipped_configs_leaves_results_dir():
    for path in sorted(set((ROOT / "config").glob("*.yaml")) - {ROOT / "config" / "base.yaml"}):
        plan = build_plan(load_config(path))
        root = os.path.abspath(plan.config.results_dir)
        for run_id in plan.runs:
            assert os.path.abspath(plan.layout.run(run_id).directory).startswith(root + os.sep)
