"""The line a local run starts with (Snakefile onstart): the training runs left and, once the pre-flight has
measured this machine, their time."""
from __future__ import annotations

import json

import pytest

from introspect.cluster.calibration import CALIBRATION_VERSION, calibration_paths
from introspect.cluster.resources import outlook, run_epochs
from introspect.config.model import load_config
from introspect.plan.build import build_plan
from workflow_helpers import ROOT


@pytest.fixture
def plan(tmp_path):
    config = load_config(ROOT / "config" / "smoke.yaml")
    table2 = {**config["tables"]["table2"], "methods": ["CE", "LE(Grad-CAM)"]}
    config.update(tables={"table2": table2}, figures={}, analyses={}, claims=[], teachers={},
                  results_dir=str(tmp_path / "results"), threads_per_run=1)
    return build_plan(config)


def test_before_the_pre_flight_it_counts_the_runs_and_says_when_the_time_comes(plan):
    epochs = sum(run_epochs(run) for run in plan.runs.values())
    assert outlook(plan, 2) == (f"{len(plan.runs)} training runs to do ({epochs} epochs); the time they take "
                                "follows the pre-flight, which measures this machine first.")
    assert outlook(plan, None) == (f"{len(plan.runs)} training runs to do ({epochs} epochs); the time left is shown "
                                   "as they finish.")


def test_after_the_pre_flight_the_time_is_the_measured_epochs_over_the_parallel_runs(plan):
    for key, path in calibration_paths(plan).items():  # one file per step kind: 20 s per epoch of each
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": CALIBRATION_VERSION, "device": {"device": "cpu"},
                                    "kinds": {key: {"epoch_seconds": 20.0}}}))
    epochs = sum(run_epochs(run) for run in plan.runs.values())
    expected = epochs * 20.0 / 2 / 60  # two runs at a time on 2 cores, one thread each
    assert f": about {expected:.0f} min of training with 2 at a time" in outlook(plan, 2)
    assert f"about {epochs * 20.0 / 60:.0f} min of training with 1 at a time" in outlook(plan, 1)
