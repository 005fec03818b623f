"""The training loop: determinism, kill-and-resume, warm-start equivalence, NaN and bad input."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from introspect.runs.record import CHECKPOINT, METRICS
from introspect.train import InjectedFailure, NonFiniteLossError, RunSpec, TrainingError, train
from introspect.train.progress import progress_line

ROOT = Path(__file__).resolve().parents[1]


def spec(run_id="t", model="mlp1024", method=None, epochs=3, **extra) -> RunSpec:
    data = {
        "run_id": run_id,
        "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
        "model": model,
        "method": method or {"name": "ce"},
        "budget": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "lr_milestones": [0.5]},
        "seed": 3,
        **extra,
    }
    return RunSpec.from_dict(data)


def history(run_dir):
    return (Path(run_dir) / "epochs.csv").read_text().splitlines()


def numbers(metrics):
    keys = ("test_acc_final", "val_acc_final", "test_acc_best_val", "train_acc_final", "epochs")
    return {k: metrics[k] for k in keys}


@pytest.mark.slow
def test_same_spec_and_seed_give_identical_numbers(tmp_path):
    a = train(spec(), tmp_path / "a")
    b = train(spec(), tmp_path / "b")
    assert numbers(a) == numbers(b)

    def strip(rows):  # the seconds column differs
        return [r.rsplit(",", 1)[0] for r in rows]

    assert strip(history(tmp_path / "a")) == strip(history(tmp_path / "b"))
    c = train(RunSpec.from_dict({**spec().to_dict(), "seed": 4}), tmp_path / "c")
    assert numbers(c) != numbers(a)


def test_metrics_record_provenance_and_hyperparameters(tmp_path):
    metrics = train(spec(method={"name": "ls", "alpha": 0.8}), tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / METRICS).read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for key in ("dataset", "model", "method", "hyperparameters", "seed", "test_acc_final", "test_acc_best_val",
                "val_acc_final", "epochs", "wall_time_seconds", "versions", "git_commit"):
        assert key in on_disk
    assert on_disk["hyperparameters"] == {"alpha": 0.8}
    assert on_disk["versions"]["torch"] == torch.__version__.split("+")[0]
    assert on_disk["git_commit"]  # a commit hash, or "unknown" outside a checkout
    assert not (tmp_path / "run" / CHECKPOINT).exists()
    assert (tmp_path / "run" / "model.pt").exists()
    header = history(tmp_path / "run")[0].split(",")
    assert header == ["epoch", "stage", "lr", "loss", "loss_terms", "train_acc", "val_acc", "test_acc",
                      "dead_explanations", "dead_maps_all_classes", "seconds"]


@pytest.mark.slow
def test_failure_then_resume_equals_an_uninterrupted_run(tmp_path):
    with pytest.raises(InjectedFailure):
        train(spec(epochs=4, fail_at_epoch=2), tmp_path / "run")
    assert (tmp_path / "run" / CHECKPOINT).exists() and not (tmp_path / "run" / METRICS).exists()
    resumed = train(spec(epochs=4), tmp_path / "run")
    straight = train(spec(epochs=4), tmp_path / "straight")
    assert numbers(resumed) == numbers(straight)


@pytest.mark.slow
def test_a_truncated_checkpoint_is_moved_aside_and_the_run_restarts_from_scratch(tmp_path, caplog):
    run = tmp_path / "run"
    with pytest.raises(InjectedFailure):
        train(spec(epochs=3, fail_at_epoch=2), run)
    data = (run / CHECKPOINT).read_bytes()
    (run / CHECKPOINT).write_bytes(data[: len(data) // 3])  # a copy cut short
    (run / ".metrics.json.abc123.tmp").write_text("{")  # a write that a kill interrupted
    with caplog.at_level("WARNING", logger="introspect.train"):
        restarted = train(spec(epochs=3), run)
    assert f"{run / CHECKPOINT} is corrupt" in caplog.text and "training from scratch" in caplog.text
    assert (run / f"{CHECKPOINT}.corrupt").read_bytes() == data[: len(data) // 3]
    assert not list(run.glob(".*.tmp"))
    assert numbers(restarted) == numbers(train(spec(epochs=3), tmp_path / "straight"))


@pytest.mark.system
def test_a_corrupt_teacher_checkpoint_is_an_error_naming_it(tmp_path):
    teacher = tmp_path / "teacher" / "model.pt"
    teacher.parent.mkdir()
    teacher.write_bytes(b"PK\x03\x04 not a checkpoint")
    kd = tmp_path / "kd.json"
    kd.write_text(json.dumps(spec(method={"name": "kd"}, teacher=str(teacher)).to_dict()))
    result = subprocess.run([sys.executable, "-m", "introspect", "train", "--spec", str(kd), "--out",
                             str(tmp_path / "run")], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{teacher} is corrupt or not a run's checkpoint" in result.stderr and "snakemake" in result.stderr


@pytest.mark.system
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    """A real kill -9 of the CLI (no handler runs) after at least one epoch's checkpoint."""
    run_spec = spec(epochs=8, model="resnet8", method={"name": "le", "explainer": "grad", "warmup_epochs": 1})
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "introspect", "train", "--spec", spec_file(tmp_path, run_spec),
           "--out", str(run_dir), "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / CHECKPOINT).exists():
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside a later epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / METRICS).exists()
    done = torch.load(run_dir / CHECKPOINT, weights_only=False)["epoch"]
    assert 1 <= done < 8
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"resuming after epoch {done}" in result.stderr
    resumed = json.loads((run_dir / METRICS).read_text())
    straight = train(run_spec, tmp_path / "straight")
    assert numbers(resumed) == numbers(straight)


@pytest.mark.system
def test_sigterm_stops_with_a_checkpoint_and_a_nonzero_exit(tmp_path):
    run_spec = spec(epochs=30, model="resnet8")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "introspect", "train", "--spec", spec_file(tmp_path, run_spec), "--out", str(run_dir)]
    process = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / CHECKPOINT).exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "interrupted" in stderr and (run_dir / CHECKPOINT).exists() and not (run_dir / METRICS).exists()


@pytest.mark.slow
def test_le_stage_two_from_a_shared_warmup_equals_inline_warmup(tmp_path):
    le = {"name": "le", "explainer": "grad_cam", "warmup_epochs": 2}
    inline = train(spec(model="resnet8", method=le, epochs=4), tmp_path / "inline")
    train(spec(run_id="w", model="resnet8", epochs=4, stop_epoch=2), tmp_path / "warmup")
    staged = train(spec(model="resnet8", method=le, epochs=4, init_from=str(tmp_path / "warmup" / "model.pt")),
                   tmp_path / "staged")
    assert numbers(staged) == numbers(inline)
    rows = history(tmp_path / "staged")
    assert [r.split(",")[1] for r in rows[1:]] == ["1", "1", "2", "2"]


def test_nan_loss_stops_with_a_clear_error_and_no_metrics(tmp_path):
    bad = RunSpec.from_dict({**spec().to_dict(), "budget": {"epochs": 2, "batch_size": 64, "lr": 1e30}})
    with pytest.raises(NonFiniteLossError, match="non-finite loss at epoch 0"):
        train(bad, tmp_path / "run")
    assert not (tmp_path / "run" / METRICS).exists()


def _poison_ce(monkeypatch, nan_at, error_at=None):
    """Make the CE loss NaN at (epoch, batch) ``nan_at`` and, optionally, raise at ``error_at``."""
    from introspect.methods.ce import CrossEntropy

    loss = CrossEntropy.loss

    def poisoned(self, ctx):
        if (ctx.epoch, ctx.step) == error_at:
            raise RuntimeError("an operation that NaN inputs broke")
        terms = loss(self, ctx)
        if (ctx.epoch, ctx.step) == nan_at:
            terms["ce"] = terms["ce"] * float("nan")
        return terms

    monkeypatch.setattr(CrossEntropy, "loss", poisoned)


def test_the_first_non_finite_batch_is_named_though_the_nan_spreads(tmp_path, monkeypatch):
    """The check is read once per epoch; the NaN weights make every later batch non-finite too,
    and the error still names the first one."""
    _poison_ce(monkeypatch, nan_at=(1, 3))
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch 1, batch 3 \(ce=nan\)"):
        train(spec(epochs=3), tmp_path / "run")
    assert not (tmp_path / "run" / METRICS).exists()
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)["epoch"] == 1  # nothing of epoch 1


def test_an_error_after_a_non_finite_batch_is_reported_as_that_batch(tmp_path, monkeypatch):
    _poison_ce(monkeypatch, nan_at=(0, 2), error_at=(0, 4))
    with pytest.raises(NonFiniteLossError, match="non-finite loss at epoch 0, batch 2") as caught:
        train(spec(epochs=2), tmp_path / "run")
    assert isinstance(caught.value.__cause__, RuntimeError)
    monkeypatch.undo()
    _poison_ce(monkeypatch, nan_at=None, error_at=(0, 4))  # without a NaN the error is itself
    with pytest.raises(RuntimeError, match="NaN inputs broke"):
        train(spec(epochs=2), tmp_path / "other")


def test_progress_line_names_run_epoch_loss_accuracies_time_and_eta():
    row = {"epoch": 3, "lr": 0.1, "loss": 1.23456, "train_acc": 55.1, "val_acc": 52.0, "test_acc": 51.8,
           "seconds": 12.34}
    assert progress_line("ce-s0", 200, row, seconds_per_epoch=12.0) == (  # 197 epochs x 12 s = 39 min 24 s
        "ce-s0 epoch 3/200 lr 0.1 loss 1.2346 acc train 55.10 val 52.00 test 51.80 time 12.3s ETA 0:39:24")


def test_every_epoch_prints_one_progress_line_to_stdout_and_the_log(tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="introspect.train")
    train(spec(epochs=3), tmp_path / "run")
    lines = capsys.readouterr().out.splitlines()
    pattern = (r"t epoch {}/3 lr \S+ loss \d+\.\d{{4}} acc train [\d.]+ val [\d.]+ test [\d.]+ "
               r"time [\d.]+s ETA \d+:\d\d:\d\d")
    assert len(lines) == 3 and all(re.fullmatch(pattern.format(i + 1), line) for i, line in enumerate(lines)), lines
    assert lines[-1].endswith("ETA 0:00:00")
    assert [line for line in lines if line in caplog.messages] == lines


def test_resuming_with_a_different_spec_is_refused(tmp_path):
    with pytest.raises(InjectedFailure):
        train(spec(epochs=3, fail_at_epoch=1), tmp_path / "run")
    with pytest.raises(TrainingError, match="different run configuration"):
        train(spec(epochs=3, method={"name": "cp", "beta": 1.0}), tmp_path / "run")


@pytest.mark.system
def test_cli_rejects_a_bad_spec_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"run_id": "x", "colour": 1}')
    result = subprocess.run([sys.executable, "-m", "introspect", "train", "--spec", str(bad),
                             "--out", str(tmp_path)], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown key(s): colour" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(bad) in result.stderr


def spec_file(directory, run_spec) -> str:
    """The CLI reads a run spec from a file."""
    path = directory / f"{run_spec.run_id}.spec.json"
    path.write_text(json.dumps(run_spec.to_dict()))
    return str(path)


def test_a_missing_warmup_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="init_from checkpoint .* does not exist"):
        train(spec(init_from=str(tmp_path / "nowhere" / "model.pt")), tmp_path / "run")
