"""Configs as a base plus overlays (``extends: base.yaml``, :mod:`introspect.config.overlays`).

``tests/data/plan_runs.json`` holds every run of every shipped config with the digest of what it trains (the
rerun trigger of its rule, ``job_files.record_digest``). The overlay refactor changed none of them. A change
that is meant to retrain runs (new seeds, another budget, a renamed method variant) regenerates it with

    python tests/test_config_overlays.py --write

and the diff of that file in the commit shows which runs it retrains.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from introspect.config.model import ConfigError, load_config  # noqa: E402
from introspect.config.overlays import (  # noqa: E402
    OverlayError,
    declaring_directory,
    merge_overlay,
    read_config_file,
    resolve_extends,
)
from introspect.plan.build import build_plan  # noqa: E402
from introspect.plan.job_files import digest  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "plan_runs.json"
SHIPPED = ("config.yaml", "smoke.yaml", "mnist5k.yaml", "paper.yaml")


def run_digests() -> dict[str, dict[str, str]]:
    return {name: {run_id: digest(run.identity())
                   for run_id, run in sorted(build_plan(load_config(ROOT / "config" / name)).runs.items())}
            for name in SHIPPED}


def test_every_shipped_config_plans_the_runs_of_the_fixture():
    expected = json.loads(FIXTURE.read_text())
    actual = run_digests()
    for name in SHIPPED:
        missing = sorted(set(expected[name]) - set(actual[name]))
        added = sorted(set(actual[name]) - set(expected[name]))
        changed = sorted(r for r in set(actual[name]) & set(expected[name]) if actual[name][r] != expected[name][r])
        assert not (missing or added or changed), (
            f"{name}: {len(missing)} runs gone (e.g. {missing[:2]}), {len(added)} new (e.g. {added[:2]}), "
            f"{len(changed)} train something else (e.g. {changed[:2]}). If intended: "
            "python tests/test_config_overlays.py --write")
    # the sizes the README states
    assert {name: len(runs) for name, runs in actual.items()} == {
        "config.yaml": 305, "smoke.yaml": 57, "mnist5k.yaml": 50, "paper.yaml": 427}


def test_the_papers_tables_are_defined_once():
    """Only base.yaml says which paper table a table reproduces; the overlays change datasets and groups."""
    for path in sorted((ROOT / "config").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if path.name == "base.yaml":
            assert text.count("paper_table:") == 6 and text.count("paper_figure:") == 3
        else:
            assert "paper_table:" not in text and "paper_figure:" not in text, path.name
            assert text.count("\nextends: base.yaml") == 1, path.name


def test_a_mapping_merges_a_list_replaces_and_null_removes():
    base = {"a": {"x": 1, "y": [1, 2], "z": {"deep": 1, "keep": 2}}, "b": 1, "c": [1]}
    overlay = {"a": {"y": [3], "z": {"deep": None}, "new": {"n": None, "m": 1}}, "b": None, "c": [2, 3], "d": 4}
    assert merge_overlay(base, overlay) == {"a": {"x": 1, "y": [3], "z": {"keep": 2}, "new": {"m": 1}},
                                            "c": [2, 3], "d": 4}
    assert base == {"a": {"x": 1, "y": [1, 2], "z": {"deep": 1, "keep": 2}}, "b": 1, "c": [1]}  # not modified


def test_extends_is_relative_to_the_file_that_names_it_and_chains(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "root.yaml").write_text("seeds: [0, 1]\nname: root\n"
                                                    "tables: {t: {title: T, methods: [CE]}}\n")
    (tmp_path / "shared" / "mid.yaml").write_text("extends: root.yaml\nname: mid\ndevice: cpu\n")
    (tmp_path / "mine.yaml").write_text("extends: shared/mid.yaml\nname: mine\ntables: {t: {methods: [KD]}}\n")
    assert read_config_file(tmp_path / "mine.yaml") == {
        "seeds": [0, 1], "name": "mine", "device": "cpu", "tables": {"t": {"title": "T", "methods": ["KD"]}}}


@pytest.mark.parametrize("files,fragment", [
    ({"a.yaml": "extends: missing.yaml\n"}, "extends: missing.yaml: does not exist"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "a cycle of extends"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "__use_yte__: true\n"}, "__use_yte__: a YTE template"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "- 1\n"}, "extends: b.yaml: it must hold a mapping"),
    ({"a.yaml": "extends: [b.yaml]\n"}, "extends: must name a config file"),
])
def test_a_bad_base_is_one_line_naming_it(tmp_path, files, fragment):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "a.yaml")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_long_chain_is_refused(tmp_path):
    for i in range(12):
        (tmp_path / f"c{i}.yaml").write_text(f"extends: c{i + 1}.yaml\n")
    (tmp_path / "c12.yaml").write_text("name: end\n")
    with pytest.raises(OverlayError, match="more than 8 config files"):
        read_config_file(tmp_path / "c0.yaml")


def test_snakemakes_merged_config_finds_the_file_that_named_its_base(tmp_path):
    """Snakemake merges its --configfile files itself; the base is relative to the last one naming it."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text("name: base\nseeds: [0, 1, 2]\n")
    (tmp_path / "sub" / "over.yaml").write_text("extends: base.yaml\nname: over\n")
    (tmp_path / "more.yaml").write_text("seeds: [5]\n")
    merged = {"extends": "base.yaml", "name": "over", "seeds": [5]}  # what Snakemake holds
    directory = declaring_directory(merged, [tmp_path / "sub" / "over.yaml", tmp_path / "more.yaml"])
    assert directory == tmp_path / "sub"
    assert resolve_extends(merged, directory) == {"name": "over", "seeds": [5]}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_config_overlays.py --write   (regenerates tests/data/plan_runs.json)")
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(run_digests(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE.relative_to(ROOT)}")
