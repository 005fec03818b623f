"""A sweep point that fails for good is scored as failed and reported, not a blocker of its cell; a final
run that fails still fails the workflow (workflow/rules/sweep_points.smk, analysis.selection)."""
from __future__ import annotations

import json

import pytest

from introspect.config.model import load_config
from workflow_helpers import ROOT, snakemake, write_config

pytestmark = pytest.mark.workflow
FAILING_POINT = "digits/resnet8/resnet-e3/dropout-rate0.5/seed100000"  # a sweep point: only the selection reads it


def views() -> dict:
    smoke = load_config(ROOT / "config" / "smoke.yaml")
    table2 = {**smoke["tables"]["table2"], "methods": ["CE", "Dropout"], "compare_to": []}
    return {"tables": {"table2": table2}, "figures": {}, "analyses": {}, "claims": [], "teachers": {}}


def test_a_failed_sweep_point_is_scored_as_failed_and_the_cell_is_built(tmp_path):
    write_config(tmp_path, fail_runs={FAILING_POINT: 1}, **views())
    snakemake(tmp_path, "--cores", "2")
    results = tmp_path / "results"
    outcome = json.loads((results / "runs" / FAILING_POINT / "outcome.json").read_text())
    assert outcome["failed"].startswith("exit 3 in attempt 3: ") and "failure injected at epoch 1" in outcome["failed"]
    (selection_file,) = (results / "selection").glob("digits/resnet8/*/Dropout-rate-*.json")
    selection = json.loads(selection_file.read_text())
    assert selection["chosen"] == {"rate": 0.1}
    failed = [s for s in selection["scores"] if s["score"] is None]
    assert [s["point"] for s in failed] == [{"rate": 0.5}] and FAILING_POINT in failed[0]["failed"][0]
    assert "rate=0.5: failed" in (results / "smoke" / "tables" / "table2.md").read_text()
    finals = list(results.glob("runs/digits/resnet8/*/dropout-sel_*/seed*/metrics.json"))
    assert len(finals) == 2 and all(json.loads(p.read_text())["hyperparameters"]["rate"] == 0.1 for p in finals)
    again = snakemake(tmp_path, "--cores", "2", "-n")  # recorded: nothing left to do
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_failed_final_run_still_fails(tmp_path):
    final_ce = "digits/resnet8/resnet-e3/ce/seed1"
    write_config(tmp_path, fail_runs={final_ce: 1}, **views())
    result = snakemake(tmp_path, "--cores", "2", "-k", check=False)
    assert result.returncode != 0
    assert not (tmp_path / "results" / "runs" / final_ce / "outcome.json").exists()
    assert not (tmp_path / "results" / "smoke" / "tables" / "table2.md").exists()
    assert f"train: {tmp_path / 'results' / 'runs' / final_ce / 'train.log'}" in result.stdout + result.stderr
