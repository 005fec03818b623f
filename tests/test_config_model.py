"""The typed config model and its one collect-all check: every problem of a config at once, each with
its key path; hostile config text (alias bombs, huge files, duplicate keys, templates, other encodings)
refused in one line; absurd numbers refused at planning naming the key. Tiny configs built here."""
import copy
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from introspect.config.model import Claim, Config, Group
from introspect.config.validate import validate_config
from introspect.plan.build import ConfigError, build_plan, load_config

ROOT = Path(__file__).resolve().parents[1]


def tiny() -> dict:
    return {
        "seeds": [0, 1],
        "datasets": {"digits": {"source": "digits", "image_size": 8}, "other": {"source": "digits"}},
        "budgets": {"short": {"epochs": 4, "batch_size": 32, "lr": 0.1}},
        "methods": {"CE": {"method": "ce"}, "KD": {"method": "kd", "temperature": 4.0},
                    "LE(Grad-CAM)": {"method": "le", "explainer": "grad_cam", "warmup_fraction": 0.5}},
        "teachers": {"big": {"model": "resnet14", "budget": "short", "method": "CE"}},
        "tables": {"t": {"title": "T", "dataset": "digits", "methods": ["CE", "KD", "LE(Grad-CAM)"],
                         "groups": [{"label": "R8", "model": "resnet8", "budget": "short", "teacher": "big"},
                                    {"label": "R8 other", "model": "resnet8", "budget": "short", "teacher": "big",
                                     "dataset": "other"}]}},
        "claims": [{"name": "le-over-ce", "table": "t", "group": "R8", "a": "LE(Grad-CAM)", "b": "CE",
                    "direction": "greater"}],
    }


def problems_of(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_plan(config)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid config:"
    return [line.strip() for line in lines[1:]]


def test_the_model_is_typed_with_defaults_and_resolved_groups():
    config = validate_config(tiny())
    assert isinstance(config, Config) and config.name == "default" and config.seeds == (0, 1)
    first, second = config.tables["t"].groups
    assert isinstance(first, Group) and (first.dataset, second.dataset) == ("digits", "other")
    assert config.tables["t"].baseline == "CE" and config.datasets["other"].val_fraction == 0.1
    assert config.claims == (Claim("le-over-ce", "t", "R8", "LE(Grad-CAM)", "CE", "greater", None, "all", ""),)
    with pytest.raises(AttributeError):
        config.results_dir = "elsewhere"  # frozen


def test_several_independent_mistakes_are_reported_at_once_each_with_its_key_path():
    config = tiny()
    config["budgets"]["short"]["lr"] = -1  # schema
    config["colour"] = "red"  # schema, top level
    config["methods"]["KD"]["temperature"] = 0  # hyper-parameter range
    config["methods"]["LE(Grad-CAM)"]["alhpa"] = 0.5  # unknown hyper-parameter
    config["tables"]["t"]["groups"][0]["model"] = "resnet9"  # registry reference
    config["teachers"]["big"]["budget"] = "long"  # cross-reference
    config["claims"][0]["b"] = "Dropout"  # a claim's method
    config["results_dir"] = "-rf"  # a path read as an option
    problems = problems_of(config)
    for expected in ("budgets.short.lr:", "(top level): Additional properties are not allowed ('colour'",
                     "methods.KD.temperature: expected a number in (0, 1000], got 0",
                     "methods.LE(Grad-CAM).alhpa: method 'le' has no such hyper-parameter",
                     "tables.t.groups[0].model: unknown model 'resnet9'",
                     "teachers.big.budget: 'long' is not under budgets",
                     "claims[0].b: 'Dropout' is not a method of t group 'R8'",
                     "results_dir: '-rf' must be a relative path"):
        assert sum(p.startswith(expected) for p in problems) == 1, (expected, problems)


def test_a_malformed_part_stops_only_the_checks_of_that_part():
    config = tiny()
    del config["tables"]["t"]["groups"][0]["model"]  # schema: the table's checks cannot run
    config["teachers"]["big"]["model"] = "resnet9"
    config["methods"]["KD"]["temperature"] = -1
    problems = problems_of(config)
    for expected in ("tables.t.groups[0]: 'model' is a required property", "teachers.big.model: unknown model",
                     "methods.KD.temperature: expected a number in (0, 1000]"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_the_relational_checks_read_a_model_built_once_leaving_out_what_it_cannot_hold():
    """Every relational check reads the typed model; with the schema's problems it is built without the parts it
    cannot hold (kept in Config.unbuilt), whose names still exist, so no line blames their users."""
    from introspect.config.build import build_model
    from introspect.config.registry_facts import registry_catalog
    from introspect.config.validate import config_problems

    config = tiny()
    config["budgets"]["short"]["lrr"] = 0.1  # schema: an unknown key; the budget cannot be built
    config["teachers"]["big"]["budget"] = "long"  # a name that does not exist
    document, claims, problems, model = config_problems(config, registry_catalog())
    assert model is None  # the schema refused the document: no model to plan
    assert any(p.startswith("budgets.short: Additional properties are not allowed ('lrr'") for p in problems)
    assert "teachers.big.budget: 'long' is not under budgets" in problems
    assert not [p for p in problems if "'short' is not under budgets" in p], problems  # the groups' budget exists
    lenient = build_model(document, claims, lenient=True)
    assert lenient.unbuilt == {"budgets.short"} and lenient.budgets == {} and lenient.has("budgets", "short")
    with pytest.raises(TypeError):
        build_model(document, claims)  # what only a schema-valid document may be: built whole


def test_two_views_writing_one_file_are_reported_in_the_same_pass_as_a_missing_name():
    """The views' output files are known from the config alone: their collision is one of the one pass's lines
    (before any run is planned), beside a relational problem."""
    config = tiny()
    config["analyses"] = {"t": {"title": "Students of t", "tables": ["t"]}}  # writes tables/t.md, as table t does
    config["teachers"]["big"]["budget"] = "long"
    problems = problems_of(config)
    assert "teachers.big.budget: 'long' is not under budgets" in problems
    assert any(p.startswith("analyses.t: writes ") and p.endswith("as tables.t does; rename one of them")
               for p in problems), problems


def test_checks_that_once_failed_while_planning_are_collected_too():
    config = tiny()
    del config["tables"]["t"]["groups"][0]["teacher"]  # KD without a teacher
    config["teachers"]["big"].update(method="KD", teacher="big")  # a teacher cycle, and KD needs a teacher
    config["claims"].append(dict(config["claims"][0], direction="equivalent"))  # duplicate name, no margin
    problems = problems_of(config)
    for expected in ("tables.t.groups[0]: KD needs a teacher", "teachers.big: teaches itself through big -> big",
                     "claims[1].name: 'le-over-ce' is used by another claim", "claims[1].margin:"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_a_baseline_with_another_label_still_finds_its_reference_runs():
    config = tiny()
    config["methods"] = {"Cross-entropy" if k == "CE" else k: v for k, v in config["methods"].items()}
    config["teachers"]["big"]["method"] = "Cross-entropy"
    config["claims"] = []
    config["tables"]["t"].update(methods=["Cross-entropy", "KD"], baseline="Cross-entropy")
    config["tables"]["students"] = {"title": "S", "dataset": "digits", "methods": ["KD"], "baseline": "Cross-entropy",
                                    "groups": [{"label": "R8", "model": "resnet8", "budget": "short",
                                                "teacher": "big"}]}
    plan = build_plan(config)
    ce = {c.method: c.run_ids for c in plan.tables["t"].cells if c.group == "R8"}["Cross-entropy"]
    assert plan.tables["students"].references == {"R8": ce}
    assert plan.tables["students"].baseline == "Cross-entropy"
    config["tables"]["students"]["baseline"] = "CE"  # named, but not a method of this config
    assert any(p.startswith("tables.students.baseline: 'CE' is not defined under methods") for p in problems_of(config))


@pytest.mark.parametrize("edit,key", [
    (lambda c: c["datasets"]["digits"].update(loader_workers=10**6), "datasets.digits.loader_workers"),
    (lambda c: c["datasets"]["digits"].update(image_size=100000), "datasets.digits.image_size"),
    (lambda c: c["budgets"]["short"].update(epochs=10**9), "budgets.short.epochs"),
    (lambda c: c["budgets"]["short"].update(batch_size=10**12), "budgets.short.batch_size"),
    (lambda c: c["budgets"]["short"].update(lr=1e308), "budgets.short.lr"),
    (lambda c: c["budgets"]["short"].update(weight_decay=1e308), "budgets.short.weight_decay"),
    (lambda c: c["budgets"]["short"].update(momentum=1e308), "budgets.short.momentum"),
    (lambda c: c["methods"]["KD"].update(temperature=1e308), "methods.KD.temperature"),
    (lambda c: c["methods"].update(e2KD={"method": "e2kd", "every": 10**300}), "methods.e2KD.every"),
    (lambda c: c.update(cluster={"epoch_seconds": {"default": 1e308}}), "cluster.epoch_seconds.default"),
    (lambda c: c.update(cluster={"runtime_margin": 1e308}), "cluster.runtime_margin"),
    (lambda c: c.update(threads_per_run=10**6), "threads_per_run"),
    (lambda c: c.update(eval_batch_size=10**12), "eval_batch_size"),
    (lambda c: c.update(seeds=[0, 10**30]), "seeds[1]"),
    (lambda c: c.update(seeds=list(range(101))), "seeds"),
    (lambda c: c["methods"]["KD"].update(sweep={"temperature": list(range(1, 101)), "ce_weight": [0.1] * 11}),
     "methods.KD.sweep"),
    (lambda c: c.update(results_dir="/"), "results_dir"),
    (lambda c: c.update(results_dir="/etc/introspect"), "results_dir"),
    (lambda c: c.update(results_dir="/usr"), "results_dir"),
    (lambda c: c.update(results_dir="/tmp"), "results_dir"),
    (lambda c: c.update(data_root="-data"), "data_root"),
    (lambda c: c.update(reported_results="--help"), "reported_results"),
    (lambda c: c.update(name="a/b"), "name"),
    (lambda c: c.update(performance={"compile": "no-such-backend"}), "performance.compile"),
])
def test_absurd_values_are_refused_at_planning_naming_the_key(edit, key):
    config = tiny()
    edit(config)
    assert any(p.startswith(f"{key}:") for p in problems_of(config))


def test_a_plan_too_large_for_one_workflow_is_refused_before_it_is_built():
    config = tiny()
    config["tables"]["t"]["groups"] = [dict(g, label=f"g{i}") for i in range(10_000)
                                       for g in config["tables"]["t"]["groups"][:1]]
    config["claims"] = []
    config["seeds"] = [0, 1, 2, 3]  # 10,000 groups x 3 methods x 4 seeds
    started = time.monotonic()
    problems = problems_of(config)
    assert any(p.startswith("(top level): about 120,") and "at most 3,000" in p for p in problems), problems
    assert time.monotonic() - started < 20


def test_compile_with_guided_backprop_is_refused_by_the_plan_not_by_the_job():
    config = tiny()
    config["methods"]["LE(GuidedBP)"] = {"method": "le", "explainer": "guided_bp", "warmup_fraction": 0.5}
    config["tables"]["t"]["methods"].append("LE(GuidedBP)")
    build_plan(config)  # without compile: fine
    config["performance"] = {"compile": "inductor"}
    [problem] = problems_of(config)
    assert problem.startswith("performance.compile:") and "methods.LE(GuidedBP).explainer" in problem
    swept = tiny()
    swept["methods"]["LE(Grad-CAM)"]["sweep"] = {"explainer": ["grad_cam", "guided_bp"]}
    swept["performance"] = {"compile": "inductor"}
    assert "methods.LE(Grad-CAM).sweep.explainer" in problems_of(swept)[0]
    config = tiny()
    config["performance"] = {"compile": "inductor"}
    build_plan(config)  # a backend torch has, and no guided backprop


def test_long_labels_and_values_keep_every_path_component_under_255_bytes():
    config = tiny()
    label = "LE " + "x" * 190
    config["methods"][label] = {"method": "dropout", "rate": 0.1, "sweep": {"rate": [0.1, 0.2]}}
    config["methods"]["e2KD"] = {"method": "e2kd", "every": 999999, "gamma": 0.123456789}
    config["tables"]["t"]["methods"] += [label, "e2KD"]
    plan = build_plan(config)
    paths = [str(plan.layout.run(r).directory) for r in plan.runs] + [s.path for s in plan.selections.values()]
    assert all(len(part.encode()) < 255 for path in paths for part in Path(path).parts)
    assert len(plan.selections) == 2  # one sweep per group (two datasets)


def test_seeds_given_as_snakemake_passes_them_are_integers():
    from snakemake.cli import parse_config

    overrides = parse_config(["seeds=[0,1,2]", "sweeps={seeds: [3]}"])
    assert overrides["seeds"] == ["0", "1", "2"]  # what the Snakefile receives
    config = tiny()
    config.update(overrides)
    config["sweeps"] = {**overrides["sweeps"]}
    plan = build_plan(config)
    assert plan.config.seeds == (0, 1, 2) and plan.config.sweeps.seeds == (3,)
    config = tiny()
    config["budgets"]["short"]["epochs"] = "4"
    assert any("budgets.short.epochs" in p and "put them in a config file" in p for p in problems_of(config))


def test_a_number_that_yaml_reads_as_text_gets_a_hint(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny()).replace("lr: 0.1", "lr: 1e-3"))
    [problem] = problems_of(load_config(path))
    assert problem.startswith("budgets.short.lr: '1e-3' is not of type 'number' (YAML reads 1e-3 as text: "
                              "write it as 1.0e-03;")


# --- config text ----------------------------------------------------------------------------------

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize("text,fragment", [
    (BOMB, "once its aliases are expanded"),
    ("seeds: [0]\nseeds: [1]\n", "line 2: key 'seeds' is given twice"),
    ("a: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than"),
    ("a: &x [*x]\n", "recursive alias"),
    ("a: !!python/object/apply:os.system [echo pwned]\n", "could not determine a constructor"),
    ("seeds: [0\n", "not valid YAML: line 2"),
    ("__use_yte__: true\nseeds: ?range(3)\n", "__use_yte__: a YTE template"),
    ("__definitions__: [import os]\n", "__definitions__: a YTE template"),
])
def test_hostile_config_text_is_refused_in_one_line(tmp_path, text, fragment):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.monotonic() - started < 1.0
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_an_alias_bomb_that_another_parser_built_is_refused_by_the_plan():
    import yaml

    config = {**tiny(), **yaml.safe_load(BOMB)}  # Snakemake's own YAML loading shares the aliased lists
    started = time.monotonic()
    assert problems_of(config)[0].startswith("(top level): more than")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("raw,fragment", [
    ("seeds: [0]\n".encode("utf-16"), "UTF-16 text; save it as UTF-8"),
    (b"seeds: [0]\ntitle: caf\xe9\n", "not UTF-8 text (byte 0xe9 on line 2)"),
    (b"# " + b"x" * 1_100_000 + b"\n", "larger than 1,000,000 bytes"),
])
@pytest.mark.system
def test_files_of_another_encoding_or_size_are_refused_by_introspect_plan(tmp_path, raw, fragment):
    path = tmp_path / "config.yaml"
    path.write_bytes(raw)
    result = subprocess.run([sys.executable, "-m", "introspect", "plan", "--config", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.system
def test_a_yte_config_is_refused_by_introspect_plan_without_evaluating_it(tmp_path):
    marker = tmp_path / "evaluated"
    path = tmp_path / "config.yaml"
    path.write_text(f"__use_yte__: true\nseeds: ?__import__('pathlib').Path({str(marker)!r}).touch() or [0]\n")
    result = subprocess.run([sys.executable, "-m", "introspect", "plan", "--config", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "__use_yte__" in result.stderr and not marker.exists()


def test_merge_keys_may_override_what_they_merge(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert load_config(path)["other"] == {"x": 1, "y": 3}
    assert copy.deepcopy(load_config(path))["base"] == {"x": 1, "y": 2}


def test_grad_cam_on_a_model_without_convolutions_is_refused_by_the_plan():
    config = tiny()
    config["tables"]["t"]["groups"][0]["model"] = "mlp1024"
    [problem] = problems_of(config)
    assert problem.startswith("methods.LE(Grad-CAM).explainer: LE(Grad-CAM) explains mlp1024 with Grad-CAM")
    config["tables"]["t"]["groups"][0]["method_overrides"] = {"LE(Grad-CAM)": {"explainer": "grad"}}
    config["tables"]["t"]["groups"][1]["model"] = "cnn6"
    build_plan(config)  # the override explains the MLP with gradients; CNN-6 has a convolutional layer
    config["figures"] = {"f": {"kind": "explanations", "title": "F", "dataset": "digits", "panels": [
        {"label": "p", "model": "mlp1024", "budget": "short", "method": "CE", "explainer": "grad_cam"}]}}
    assert problems_of(config) == ["figures.f.panels[0].explainer: mlp1024 has no convolutional layer for "
                                   "Grad-CAM; use an input-gradient explainer (grad, grad_input, guided_bp)"]


def test_allowed_values_come_from_the_registries_the_run_spec_and_the_model():
    from introspect.config.claim import DIRECTIONS
    from introspect.config.model import SWEEP_USES
    from introspect.config.registry_facts import registry_catalog
    from introspect.runs.spec import AMP_MODES, LOADERS, SPLITS

    config = tiny()
    config["sweeps"] = {"use": "always"}
    config["datasets"]["digits"].update(loader="gpu", split="random", augment="rotate", source="imagenet")
    config["performance"] = {"amp": "fp16"}
    config["claims"][0]["direction"] = "less"
    catalog = registry_catalog()
    expected = {"claims[0].direction": DIRECTIONS, "datasets.digits.loader": LOADERS,
                "datasets.digits.split": SPLITS, "performance.amp": AMP_MODES, "sweeps.use": SWEEP_USES,
                "datasets.digits.augment": catalog.augmentations, "datasets.digits.source": sorted(catalog.datasets)}
    problems = problems_of(config)
    for key, allowed in expected.items():
        assert f"{key}: " in "\n".join(problems) and any(
            p.startswith(f"{key}: ") and p.endswith(f"is not one of {list(allowed)}") for p in problems), key


def test_every_schema_key_has_a_field_in_the_model():
    """A key added to the schema without its field in the model would fail while building the model."""
    import dataclasses

    from introspect.config import model
    from introspect.config.schemas import schema_path

    schema = yaml.safe_load(schema_path("config").read_text())["properties"]

    def keys(node: dict) -> set[str]:
        node = node.get("additionalProperties", node) if "properties" not in node else node
        node = node.get("items", node)
        return set(node["properties"])

    sections = {model.Config: set(schema), model.Performance: keys(schema["performance"]),
                model.Sweeps: keys(schema["sweeps"]), model.Cluster: keys(schema["cluster"]),
                model.DatasetSpec: keys(schema["datasets"]) - {"source"} | {"name"},  # its name is the source
                model.Budget: keys(schema["budgets"]),
                model.Teacher: keys(schema["teachers"]),
                model.Claim: keys(schema["claims"]) - {"table", "a", "b"} | {"view", "method_a", "method_b"},  # renamed
                model.Analysis: keys(schema["analyses"]), model.Figure: keys(schema["figures"]),
                model.Table: keys(schema["tables"]),
                model.Group: keys(schema["tables"]["additionalProperties"]["properties"]["groups"])
                | keys(schema["figures"]["additionalProperties"]["properties"]["panels"])}
    for cls, schema_keys in sections.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert schema_keys <= fields, (cls.__name__, schema_keys - fields)
