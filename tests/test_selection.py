"""Choosing a swept hyper-parameter on the validation split, and runs that read the choice."""
import json

import pytest

from introspect.analysis.selection import describe, select_hyperparameters
from introspect.plan.views import Selection
from introspect.runs.chosen import with_selected_hyperparameters
from introspect.runs.record import ResultsLayout, RunFileError
from introspect.runs.spec import RunSpec


def _runs(tmp_path, values):
    for seed, (run_id, metrics) in enumerate(values.items()):
        files = ResultsLayout(tmp_path).run(run_id)
        files.directory.mkdir(parents=True)
        files.metrics.write_text(json.dumps({"seed": seed, "run_id": run_id, "spec": {"run_id": run_id}, **metrics}))


def _selection(candidates, results_dir):
    return Selection("sel", "CP", "ResNet8", [{"beta": 0.5}, {"beta": 2}, {"beta": 4}], candidates,
                     "val_acc_final", str(results_dir))


def test_the_best_mean_validation_score_wins_and_ties_go_to_the_earlier_point(tmp_path):
    _runs(tmp_path, {"a0": {"val_acc_final": 90.0, "test_acc_final": 99.0}, "a1": {"val_acc_final": 94.0},
                     "b0": {"val_acc_final": 93.0, "test_acc_final": 10.0}, "b1": {"val_acc_final": 93.0},
                     "c0": {"val_acc_final": 91.0}, "c1": {"val_acc_final": 93.0}})
    record = select_hyperparameters(_selection([["a0", "a1"], ["b0", "b1"], ["c0", "c1"]], tmp_path))
    # a: 92, b: 93, c: 92 -- the test accuracies (99 vs 10) play no part
    assert record["chosen"] == {"beta": 2} and record["score"] == 93.0
    assert [s["score"] for s in record["scores"]] == [92.0, 93.0, 92.0]
    assert describe(record).startswith("CP (ResNet8): beta=2 selected by val_acc_final")
    _runs(tmp_path, {"d": {"val_acc_final": 93.0}, "e": {"val_acc_final": 93.0}, "f": {"val_acc_final": 80.0}})
    assert select_hyperparameters(_selection([["d"], ["e"], ["f"]], tmp_path))["chosen"] == {"beta": 0.5}


def test_a_missing_sweep_run_is_a_clear_error(tmp_path):
    _runs(tmp_path, {"a": {"val_acc_final": 90.0}})
    with pytest.raises(RunFileError, match="b/metrics.json does not exist: run b has not finished"):
        select_hyperparameters(_selection([["a"], ["b"], ["a"]], tmp_path))


def test_a_corrupt_sweep_run_is_an_error_naming_the_file_and_the_fix(tmp_path):
    _runs(tmp_path, {"a": {"val_acc_final": 90.0}})
    ResultsLayout(tmp_path).run("a").metrics.write_text('{"seed": 0, "val_acc')  # a truncated write
    with pytest.raises(RunFileError, match=r"a/metrics.json is corrupt .*delete .*snakemake"):
        select_hyperparameters(_selection([["a"], ["a"], ["a"]], tmp_path))


def test_a_run_spec_takes_the_chosen_values_from_its_selection_file(tmp_path):
    spec = RunSpec.from_dict({"run_id": "r", "dataset": {"name": "digits"}, "model": "resnet8",
                              "method": {"name": "cp"}, "budget": {"epochs": 1, "batch_size": 8, "lr": 0.1},
                              "seed": 0, "hyperparameters_from": str(tmp_path / "sel.json")})
    with pytest.raises(ValueError, match="run its sweep and selection first"):
        with_selected_hyperparameters(spec)
    (tmp_path / "sel.json").write_text(json.dumps({"chosen": {"beta": 2}, "scores": [{"point": {"beta": 2}}]}))
    resolved = with_selected_hyperparameters(spec)
    assert resolved.method == {"name": "cp", "beta": 2} and spec.method == {"name": "cp"}
