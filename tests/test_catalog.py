"""The registries' catalog: what planning reads instead of importing torch."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from introspect.config import registry_facts as catalog
from introspect.methods import available_methods, hyperparameter_names, method_class
from introspect.models import available_models

ROOT = Path(__file__).resolve().parents[1]


def test_the_catalog_is_the_registries():
    entries = catalog.registry_catalog()
    assert sorted(entries.methods) == available_methods()
    assert list(entries.models) == available_models()
    for name, info in entries.methods.items():
        assert list(info.hyperparameters) == hyperparameter_names(method_class(name))
        assert info.needs_teacher == method_class(name).needs_teacher
    assert entries.methods["kd"].needs_teacher and not entries.methods["le"].needs_teacher
    assert "explainer" in entries.methods["le"].hyperparameters
    from introspect.data import available_datasets
    from introspect.explain import available_explainers

    assert list(entries.datasets) == list(available_datasets())
    assert entries.explainers == tuple(available_explainers())
    assert {n for n, facts in entries.datasets.items() if not facts.own_test_split} >= {"digits", "mnist5k"}
    assert "inductor" in entries.compile_backends and "resnet8" in entries.grad_cam_models
    assert "mlp1024" not in entries.grad_cam_models


@pytest.mark.system
def test_a_warm_catalog_plans_the_paper_without_importing_torch(tmp_path):
    script = ("import sys; from introspect.plan.build import build_plan, load_config; "
              f"plan = build_plan(load_config({str(ROOT / 'config' / 'paper.yaml')!r})); "
              "print(len(plan.runs), 'torch' in sys.modules)")
    env = {**os.environ, "INTROSPECT_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}

    def plan() -> list[str]:
        return subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                              text=True).stdout.split()

    cold_runs, torch_imported = plan()
    assert torch_imported == "True"  # the first plan fills the cache from the registries
    [cached] = tmp_path.glob("catalog-*.json")
    assert set(json.loads(cached.read_text())["methods"]) == set(available_methods())
    assert plan() == [cold_runs, "False"]  # the same plan from the cache, without torch


def test_any_edit_to_the_package_changes_the_digest(tmp_path, monkeypatch):
    copy = tmp_path / "introspect"
    shutil.copytree(catalog.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(catalog, "PACKAGE_DIR", copy)
    before = catalog.source_digest()
    assert catalog.source_digest() == before
    (copy / "methods" / "mine.py").write_text("# a new method\n")
    added = catalog.source_digest()
    (copy / "methods" / "mine.py").write_text("# a new method, edited\n")
    assert len({before, added, catalog.source_digest()}) == 3


def test_a_corrupt_or_unwritable_cache_falls_back_to_the_registries(tmp_path, monkeypatch):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    catalog.registry_catalog.cache_clear()
    (tmp_path / f"catalog-{catalog.source_digest()}.json").write_text("{not json")
    assert sorted(catalog.registry_catalog().methods) == available_methods()
    catalog.registry_catalog.cache_clear()
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", "/proc/no-such-dir")
    assert sorted(catalog.registry_catalog().methods) == available_methods()
    catalog.registry_catalog.cache_clear()


def test_the_catalog_carries_the_dataset_and_explainer_registries():
    from introspect.data import available_datasets, dataset_source
    from introspect.explain import available_explainers, explainer_entry

    entries = catalog.registry_catalog()
    assert sorted(entries.datasets) == available_datasets() and entries.explainers == available_explainers()
    for name, facts in entries.datasets.items():
        source = dataset_source(name)
        assert (facts.channels, facts.num_classes, facts.own_test_split, facts.files) == (
            source.channels, source.num_classes, source.own_test_split, source.files)
    assert all(explainer_entry(name).name == name for name in entries.explainers)
    # the facts are those of the data each source loads
    from introspect.data import load_dataset

    for name in ("digits", "shapes"):
        data = load_dataset(name)
        facts = entries.datasets[name]
        assert data.input_shape == (facts.channels, facts.image_size, facts.image_size)
        assert data.num_classes == facts.num_classes == len(data.class_names)


def test_a_dataset_check_names_what_is_missing_under_data_root(tmp_path):
    facts = catalog.registry_catalog().datasets
    [problem] = facts["mnist"].check(tmp_path)
    assert "4 of its 4 files are missing" in problem and f"download mnist --root {tmp_path}" in problem
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in facts["mnist"].files:
        (tmp_path / name).write_bytes(b"")
    assert facts["mnist"].check(tmp_path) == [] and facts["shapes"].check(tmp_path / "nowhere") == []
    missing_package = catalog.DatasetFacts(1, 2, 8, False, False, (), "no_such_package_xy", "pip install it", False)
    assert missing_package.check(tmp_path) == ["the Python package no_such_package_xy is not installed; pip install it"]


def test_the_schema_takes_dataset_and_explainer_names_from_the_registries():
    import yaml

    from introspect.config.model import ConfigError
    from introspect.config.schemas import schema_path
    from introspect.config.validate import load_schema, validate_config

    entries = catalog.registry_catalog()
    text = schema_path("config").read_text()

    def enums(node):
        if isinstance(node, dict):
            yield from ([node["enum"]] if "enum" in node else [])
            for value in node.values():
                yield from enums(value)
        elif isinstance(node, list):
            for value in node:
                yield from enums(value)

    written = {value for enum in enums(yaml.safe_load(text)) for value in enum}
    # The schema writes no closed set the registries or the config model own (they are filled in by load_schema).
    assert not written & {*entries.datasets, *entries.explainers, "crop", "crop_flip"}
    schema = load_schema(entries)
    source = schema["properties"]["datasets"]["additionalProperties"]["properties"]["source"]
    assert source["enum"] == sorted(entries.datasets)
    config = {"seeds": [0], "datasets": {"d": {"source": "imagenet"}},
              "budgets": {"b": {"epochs": 1, "batch_size": 8, "lr": 0.1}}, "methods": {"CE": {"method": "ce"}},
              "tables": {"t": {"title": "t", "dataset": "d", "methods": ["CE"],
                               "groups": [{"label": "g", "model": "cnn6", "budget": "b"}]}}}
    with pytest.raises(ConfigError, match=r"datasets\.d\.source: 'imagenet' is not one of .*'shapes'"):
        validate_config(config)
    config["datasets"]["d"] = {"source": "cifar10", "split": "per_seed"}
    drawn = ", ".join(n for n in sorted(entries.datasets) if not entries.datasets[n].own_test_split)
    with pytest.raises(ConfigError, match=f"cifar10 ships its own test set; per_seed applies only to {drawn}"):
        validate_config(config)
    config["datasets"]["d"] = {"source": "shapes", "split": "per_seed"}
    validate_config(config)
