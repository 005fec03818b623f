"""The one training set-up (introspect.train.device.configure, introspect.train.probe.StepRunner) that the
loop, the pre-flight and the benches share: fp32 unless TF32 is asked for, device-mismatch errors reported
as bugs rather than driver failures, and the pre-flight stepping through the trainer's own code."""
import json

import pytest
import torch

from introspect import kernels
from introspect.cluster.preflight import PreflightError, preflight_spec, run_preflight
from introspect.data import Dataset, Split
from introspect.errors import EXIT_TRAINING_ERROR
from introspect.plan.build import build_plan
from introspect.runs.spec import Performance, RunSpec
from introspect.train import TrainingError
from introspect.train import device as devices
from introspect.train.probe import StepRunner
from test_preflight import small_config


@pytest.fixture
def fp32_flags():
    saved = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    yield
    torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = saved


def test_fp32_convolutions_unless_tf32_is_asked_for(fp32_flags):
    torch.backends.cudnn.conv.fp32_precision = "tf32"  # cuDNN's own default on Ampere and later
    devices.configure("cpu", 1)
    assert torch.backends.cudnn.conv.fp32_precision == torch.backends.cuda.matmul.fp32_precision == "ieee"
    devices.configure("cpu", 1, tf32=True)
    assert torch.backends.cudnn.conv.fp32_precision == torch.backends.cuda.matmul.fp32_precision == "tf32"


def test_a_new_performance_option_at_its_default_changes_no_identity():
    assert Performance().to_dict() == {"channels_last": True, "amp": "none", "compile": None}
    assert Performance(tf32=True, batched_backward="vmap").to_dict() == {
        "channels_last": True, "amp": "none", "compile": None, "tf32": True, "batched_backward": "vmap"}
    with pytest.raises(ValueError, match="batched_backward must be one of auto, vmap, loop"):
        Performance(batched_backward="fast")


def test_a_device_mismatch_is_a_bug_not_a_driver_failure():
    try:  # a real mismatch: the message torch gives names both devices
        torch.ones(2) + torch.ones(2, device="meta")
    except RuntimeError as error:
        mismatch = error
    assert devices.is_device_mismatch(mismatch)
    assert devices.as_device_error(mismatch, "cuda") is None
    cuda_mismatch = RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                                 "cuda:0 and cpu!")
    assert devices.as_device_error(cuda_mismatch, "cuda") is None
    failure = devices.as_device_error(RuntimeError("CUDA error: an illegal memory access was encountered"), "cuda")
    assert failure is not None and str(failure).startswith("device failure on cuda: CUDA error: an illegal memory")


def test_step_runner_trains_on_the_epochs_batches_and_starts_over():
    generator = torch.Generator().manual_seed(0)
    split = Split(torch.randn(40, 1, 8, 8, generator=generator), torch.randint(0, 10, (40,), generator=generator))
    data = Dataset("synthetic", split, split, split, 10, [str(i) for i in range(10)], "none")
    spec = RunSpec.from_dict({"run_id": "s", "dataset": {"name": "synthetic"}, "model": "mlp1024",
                              "method": {"name": "ce"}, "budget": {"epochs": 1, "batch_size": 20, "lr": 0.1},
                              "seed": 0})
    runner = StepRunner(spec, data)
    losses = [float(runner()["ce"]) for _ in range(12)]  # two batches per epoch: six passes over the data
    assert runner.step_index == 2 and losses[-1] < losses[0]
    again = StepRunner(spec, data)
    assert [float(again()["ce"]) for _ in range(12)] == losses  # seeded as the loop seeds an epoch


@pytest.mark.slow
def test_the_preflight_sets_the_device_up_through_the_trainer(tmp_path, monkeypatch):
    calls = []
    configure = devices.configure
    monkeypatch.setattr(devices, "configure", lambda *a, **k: calls.append((a, k)) or configure(*a, **k))
    spec = preflight_spec(build_plan(small_config(tmp_path)))
    spec["kinds"] = spec["kinds"][:2]
    spec["outputs"] = {kind["key"]: spec["outputs"][kind["key"]] for kind in spec["kinds"]}  # one file per kind
    run_preflight(json.loads(json.dumps(spec)), threads=1)
    assert len(calls) == 2 and all(a[:2] == ("cpu", 1) and k == {"tf32": False, "native_kernels": False}
                                   for a, k in calls)


@pytest.mark.slow
@pytest.mark.parametrize("message,expected", [
    ("boom", "failed (RuntimeError: boom)"),
    ("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
     "mixes devices"),
])
def test_the_preflight_reports_a_failing_step_in_one_line(tmp_path, monkeypatch, message, expected):
    spec = preflight_spec(build_plan(small_config(tmp_path)))

    def fail(self):
        raise RuntimeError(message)

    monkeypatch.setattr(StepRunner, "__call__", fail)
    with pytest.raises(PreflightError) as caught:
        run_preflight(spec, threads=1)
    problems = caught.value.problems  # one per step kind, each one line
    assert len(problems) == len(spec["kinds"]) and caught.value.exit_code == EXIT_TRAINING_ERROR
    assert all(p.exit_code == EXIT_TRAINING_ERROR and "\n" not in str(p) and expected in str(p) for p in problems)


@pytest.mark.skipif(not kernels.applies(), reason="kernel pinning applies to x86 CPUs")
def test_a_native_kernels_run_in_a_pinned_process_is_refused(monkeypatch):
    """performance.native_kernels names other numbers: a process whose kernels were pinned cannot train it."""
    monkeypatch.delenv(kernels.OPT_OUT, raising=False)
    with pytest.raises(TrainingError, match="INTROSPECT_NATIVE_KERNELS=1"):
        devices.configure("cpu", 1, native_kernels=True)
    monkeypatch.setenv(kernels.OPT_OUT, "1")  # what the workflow sets for such a config (torch still pinned here)
    devices.configure("cpu", 1, native_kernels=True)
    assert Performance(native_kernels=True).to_dict()["native_kernels"] is True  # part of the run's identity


@pytest.mark.parametrize("message,outcome", [
    ("CUDA error: an illegal memory access was encountered", "exit 5"),
    ("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!", "a bug"),
])
def test_train_reports_a_driver_failure_as_exit_5_and_a_device_mismatch_as_a_bug(tmp_path, monkeypatch, capsys,
                                                                                 message, outcome):
    from introspect.cli import main
    from introspect.errors import EXIT_DEVICE_ERROR
    from introspect.train import loop

    def fail(*args, **kwargs):
        raise RuntimeError(message)

    monkeypatch.setattr(loop, "_train_locked", fail)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(RunSpec.from_dict({
        "run_id": "m", "dataset": {"name": "digits"}, "model": "mlp1024", "method": {"name": "ce"},
        "budget": {"epochs": 1, "batch_size": 8, "lr": 0.1}, "seed": 0}).to_dict()))
    argv = ["train", "--spec", str(spec), "--out", str(tmp_path / "run"), "--device", "cuda"]
    if outcome == "exit 5":
        assert main(argv) == EXIT_DEVICE_ERROR
        assert capsys.readouterr().err.startswith("error: device failure on cuda: CUDA error: an illegal memory")
    else:  # not the node's fault: a traceback (exit 1 from the interpreter), not the driver's exit code
        with pytest.raises(RuntimeError, match="same device"):
            main(argv)
