"""The registries' catalog: what planning reads instead of importing torch."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from introspect import catalog
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
    from introspect.data import DATASETS, DRAWN_TEST_SETS
    from introspect.explain import EXPLAINERS

    assert list(entries.datasets) == list(DATASETS) and entries.explainers == EXPLAINERS
    assert {n for n, facts in entries.datasets.items() if not facts.own_test_split} == set(DRAWN_TEST_SETS)
    assert "inductor" in entries.compile_backends and "resnet8" in entries.grad_cam_models
    assert "mlp1024" not in entries.grad_cam_models


def test_a_warm_catalog_plans_the_paper_without_importing_torch(tmp_path):
    script = ("import sys; from introspect.plan import build_plan, load_config; "
              f"plan = build_plan(load_config({str(ROOT / 'config' / 'paper.yaml')!r})); "
              "print(len(plan.runs), 'torch' in sys.modules)")
    env = {**os.environ, "INTROSPECT_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}

    def plan() -> list[str]:
        return subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                              text=True).stdout.split()

    assert plan()[1] == "True"  # the first plan fills the cache from the registries
    [cached] = tmp_path.glob("catalog-*.json")
    assert set(json.loads(cached.read_text())["methods"]) == set(available_methods())
    runs, torch_imported = plan()
    assert int(runs) > 400 and torch_imported == "False"


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
