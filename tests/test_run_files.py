"""Result files are data: metrics.json validated when read, model and checkpoint files loaded without
running code and checked against the architecture the run names."""
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from introspect.errors import ResultFileError
from introspect.models import build_model
from introspect.runs.loading import load_checkpoint, load_model, read_run
from introspect.runs.metrics import RunMetrics
from introspect.runs.record import CHECKPOINT, ResultsLayout, RunFileError
from introspect.train import RunSpec, TrainingError, train

RUN = "digits/mlp1024/b-e2/ce/seed3"


def spec(run_id=RUN, **extra) -> RunSpec:
    return RunSpec.from_dict({
        "run_id": run_id, "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
        "model": "mlp1024", "method": {"name": "ce"}, "budget": {"epochs": 2, "batch_size": 64, "lr": 0.05},
        "seed": 3, **extra})


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[ResultsLayout, dict]:
    layout = ResultsLayout(tmp_path_factory.mktemp("results"))
    metrics = train(spec(), layout.run(RUN).directory)
    return layout, metrics


def test_the_trainers_metrics_read_back_as_the_dataclass(finished):
    layout, metrics = finished
    run = read_run(layout, RUN)
    assert isinstance(run.record, RunMetrics) and run.metrics == json.loads(json.dumps(metrics))
    assert run.seed == 3 and run.value("test_acc_final") == metrics["test_acc_final"]
    assert run.record.device["device"] == "cpu" and run.record.device["torch"] == torch.__version__


@pytest.mark.parametrize("key,value,problem", [
    ("test_acc_final", "95.0", "test_acc_final must be a finite accuracy"),
    ("test_acc_final", 150.0, "test_acc_final must be a finite accuracy"),
    ("val_acc_final", True, "val_acc_final must be a finite accuracy"),
    ("test_acc_max", float("nan"), "NaN is not a finite number"),  # refused by the door, as JSON
    ("seed", 3.0, "seed must be a non-negative integer"),
    ("seed", 4, "seed 4 differs from its spec's seed 3"),
    ("run_id", "digits/mlp1024/b-e2/ce/seed9", "is not this run's id"),
    ("surprise", 1, "unknown key 'surprise'"),
])
def test_a_tampered_metrics_file_is_an_error_naming_the_file_and_the_fix(finished, tmp_path, key, value, problem):
    layout, metrics = finished
    copy = ResultsLayout(tmp_path)
    copy.run(RUN).directory.mkdir(parents=True)
    copy.run(RUN).metrics.write_text(json.dumps({**metrics, key: value}))  # json writes NaN as NaN
    with pytest.raises(ResultFileError, match=problem) as caught:
        read_run(copy, RUN)
    message = str(caught.value)
    assert str(copy.run(RUN).metrics) in message and "delete" in message and "snakemake" in message
    assert "\n" not in message


def test_a_metrics_file_copied_to_another_seeds_run_is_refused(finished, tmp_path):
    layout, metrics = finished
    other = RUN.replace("seed3", "seed4")
    copy = ResultsLayout(tmp_path)
    copy.run(other).directory.mkdir(parents=True)
    copy.run(other).metrics.write_text(json.dumps({k: v for k, v in metrics.items() if k != "run_id"}))
    with pytest.raises(RunFileError, match="seed 3 is not the seed of run"):
        read_run(copy, other)


class Payload:
    """Unpickling this creates a marker file: proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": {"name": "mlp1024"}, "model": {}, "history": [], "epoch": 0, "x": Payload(marker)}, path)


def test_a_planted_pickle_as_a_teachers_model_runs_nothing_and_fails_naming_the_file(tmp_path):
    marker, teacher = tmp_path / "pwned", tmp_path / "teacher" / "model.pt"
    _plant(teacher, marker)
    with pytest.raises(RunFileError, match=f"{teacher} holds Python objects.*Retrain it") as caught:
        train(spec(method={"name": "kd"}, teacher=str(teacher)), tmp_path / "student")
    assert not marker.exists() and "\n" not in str(caught.value)
    with pytest.raises(RunFileError):
        load_model(teacher)
    assert not marker.exists()


def test_a_planted_pickle_as_a_checkpoint_runs_nothing_and_the_run_retrains(tmp_path, caplog):
    marker, run = tmp_path / "pwned", tmp_path / "run"
    _plant(run / CHECKPOINT, marker)
    straight = train(spec(), tmp_path / "straight")
    with caplog.at_level("WARNING", logger="introspect.train"):
        again = train(spec(), run)
    assert not marker.exists()
    assert (run / f"{CHECKPOINT}.corrupt").exists() and "training from scratch" in caplog.text
    assert again["test_acc_final"] == straight["test_acc_final"]


def test_model_files_hold_only_tensors_and_plain_data(finished):
    layout, _ = finished
    saved = torch.load(layout.run(RUN).model, weights_only=True)
    assert saved["format"] == "introspect-run-state/1" and saved["arch"]["name"] == "mlp1024"
    assert load_checkpoint(layout.run(RUN).model)["epoch"] == 2


def test_a_teacher_of_another_architecture_is_an_error_naming_the_file(tmp_path):
    teacher_dir = tmp_path / "teacher"
    train(spec(run_id="t"), teacher_dir)  # an mlp1024
    with pytest.raises(RunFileError, match=f"{teacher_dir / 'model.pt'} holds a mlp1024 model, but the run names "
                                           "resnet8"):
        train(spec(method={"name": "kd"}, teacher=str(teacher_dir / "model.pt"), teacher_model="resnet8"),
              tmp_path / "student")


def test_weights_that_do_not_fit_their_architecture_name_the_file(tmp_path, finished):
    layout, _ = finished
    saved = torch.load(layout.run(RUN).model, weights_only=True)
    saved["model"] = build_model("mlp1024", 10, (1, 4, 4)).state_dict()  # another input size
    bad = tmp_path / "model.pt"
    torch.save(saved, bad)
    with pytest.raises(RunFileError, match=f"{bad}: its weights do not fit a mlp1024"):
        load_model(bad)


def test_a_checkpoint_of_another_run_configuration_is_refused(tmp_path):
    with pytest.raises(TrainingError):
        train(spec(fail_at_epoch=1), tmp_path / "run")
    with pytest.raises(TrainingError, match="belongs to a different run configuration"):
        train(spec(budget={"epochs": 2, "batch_size": 32, "lr": 0.05}), tmp_path / "run")


def test_an_old_format_pickle_of_plain_objects_is_refused_without_loading(tmp_path):
    old = tmp_path / "model.pt"
    with open(old, "wb") as handle:
        pickle.dump({"arch": {"name": "mlp1024"}, "spec": spec()}, handle)  # a dataclass: not plain data
    with pytest.raises(RunFileError, match="holds Python objects|corrupt"):
        load_checkpoint(old)


def test_the_runs_of_a_results_dir_are_its_metrics_files_but_not_the_kept_copies(tmp_path):
    from introspect.runs.record import FINISHED_DIR, ResultsLayout

    layout = ResultsLayout(tmp_path / "results")
    for run_id in ("digits/mlp/e2/ce/seed0", "digits/mlp/e2/ce/seed1", f"digits/mlp/e2/ce/seed0/{FINISHED_DIR}"):
        (layout.runs_dir / run_id).mkdir(parents=True)
        (layout.runs_dir / run_id / "metrics.json").write_text("{}")
    (layout.runs_dir / "digits/mlp/e2/ce/seed2").mkdir(parents=True)  # not finished: no metrics.json
    assert layout.finished_run_ids() == ["digits/mlp/e2/ce/seed0", "digits/mlp/e2/ce/seed1"]
