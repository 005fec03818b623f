"""The training loop's seams: methods declare what they need and the loop provides it (no
method-specific branch), dead explanations counted per epoch, evaluation without autograd, one step
runnable from outside, device failures as one line."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from introspect.errors import EXIT_DEVICE_ERROR
from introspect.explain import explain
from introspect.methods import (
    DEAD_EXPLANATIONS,
    DEAD_MAPS_ALL_CLASSES,
    EAGER_ONLY,
    TEACHER_MODULE,
    StepContext,
    build_method,
)
from introspect.models import build_model
from introspect.models.evaluate import accuracy
from introspect.runs.spec import Performance
from introspect.train import RunSpec, TrainingError, train
from introspect.train.probe import run_one_step
from introspect.train.records import BatchRecord, epoch_sums
from introspect.train.sgd import SGD
from introspect.train.step import train_step

ROOT = Path(__file__).resolve().parents[1]


def spec(method, model="resnet8", epochs=2, **extra) -> RunSpec:
    return RunSpec.from_dict({
        "run_id": "s", "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
        "model": model, "method": method, "budget": {"epochs": epochs, "batch_size": 128, "lr": 0.05},
        "seed": 2, **extra})


def test_dead_explanations_are_counted_per_sample():
    maps = torch.zeros(5, 3, 3)
    maps[0, 1, 1], maps[3, 0, 2], maps[4, 2, 2] = 1.0, -0.5, 1e-30  # samples 1 and 2 stay all zero
    ctx = StepContext(x=None, y=torch.zeros(5), out=None, model=None, epoch=0, num_classes=3)
    ctx.count_dead_explanations(maps)
    count, of = ctx.diagnostics[DEAD_EXPLANATIONS]
    assert int(count) == 2 and of == 5


def test_an_epochs_dead_share_sums_counts_over_its_batches_and_stays_out_of_the_loss():
    record = BatchRecord(3, torch.device("cpu"))
    logits, y = torch.eye(4), torch.arange(4)
    record.add({"le": torch.tensor(1.0)}, logits, y, {DEAD_EXPLANATIONS: (torch.tensor(1), 4)})
    record.add({"le": torch.tensor(2.0)}, logits, y, {})  # a batch without explanations (e2kd's `every`)
    record.add({"le": torch.tensor(3.0)}, logits[:2], y[:2], {DEAD_EXPLANATIONS: (torch.tensor(2), 2)})
    sums = epoch_sums("r", 0, record.read())
    assert sums.diagnostics == {DEAD_EXPLANATIONS: (3.0, 6)}  # 3 dead of 6 explained: 0.5
    assert sums.loss == 1.0 * 4 + 2.0 * 4 + 3.0 * 2 and sums.seen == 10 and sums.correct == 10


def _epochs(run_dir: Path) -> list[dict]:
    return list(csv.DictReader((run_dir / "epochs.csv").open()))


def test_epochs_csv_records_the_dead_share_for_explaining_methods_only(tmp_path):
    train(spec({"name": "le", "explainer": "grad_cam", "warmup_epochs": 1}), tmp_path / "le")
    train(spec({"name": "ce"}), tmp_path / "ce")
    for column in ("dead_explanations", "dead_maps_all_classes"):
        le = [row[column] for row in _epochs(tmp_path / "le")]
        assert le[0] == "" and 0.0 <= float(le[1]) <= 1.0  # the warm-up epoch explains nothing
        assert [row[column] for row in _epochs(tmp_path / "ce")] == ["", ""]


def test_le_counts_dead_true_class_maps_and_dead_maps_of_every_class():
    """Against an independent count on the public explainer's maps (eval mode: the closed-form Grad-CAM),
    on a model whose last layer is set so that some classes' maps are zero everywhere."""
    torch.manual_seed(0)
    model = build_model("resnet8", 4, (1, 9, 9)).eval()
    with torch.no_grad():
        model.fc.weight[1].fill_(-1.0)  # activations are >= 0 after the last ReLU: class 1's map is all zero
        model.fc.weight[2].fill_(1.0)  # and class 2's is positive wherever any channel is
    x, y = torch.randn(6, 1, 9, 9), torch.tensor([0, 1, 1, 2, 3, 1])
    ctx = StepContext(x=x, y=y, out=model.forward_features(x), model=model, epoch=1, num_classes=4)
    build_method("le", explainer="grad_cam").loss(ctx)
    maps = explain(model, x, "grad_cam")
    zero = maps.flatten(2).amax(dim=2) == 0  # (samples, classes)
    count, of = ctx.diagnostics[DEAD_EXPLANATIONS]
    assert (int(count), of) == (int(zero[torch.arange(6), y].sum()), 6) and int(count) >= 3  # the three 1s
    count, of = ctx.diagnostics[DEAD_MAPS_ALL_CLASSES]
    assert (int(count), of) == (int(zero.sum()), 24) and int(count) >= 6  # class 1's map of every sample
    assert not zero[:, 2].any()


def test_an_unknown_diagnostic_is_refused():
    ctx = StepContext(x=None, y=torch.zeros(2), out=None, model=None, epoch=0, num_classes=3)
    with pytest.raises(ValueError, match="unknown diagnostic"):
        ctx.count_dead_explanations(torch.zeros(2, 3), "dead_things")


class Spy:
    """Records the step context a method is given."""

    def __init__(self, method):
        self.method, self.seen = method, []

    def __getattr__(self, name):
        return getattr(self.method, name)

    def loss(self, ctx):
        self.seen.append(ctx)
        return self.method.loss(ctx)


@pytest.mark.parametrize("name,gets_module", [("kd", False), ("e2kd", True), ("ce", False)])
def test_the_loop_provides_what_a_method_declares(name, gets_module):
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10, (1, 8, 8)), build_model("resnet8", 10, (1, 8, 8)).eval()
    method = Spy(build_method(name))
    method.setup(student, teacher, (1, 8, 8))
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    train_step(method, student, SGD(student.parameters(), lr=0.1), x, y, 0, 10, teacher=teacher)
    ctx = method.seen[0]
    assert (ctx.teacher_module is teacher) == gets_module == (TEACHER_MODULE in method.requirements())
    assert (ctx.teacher is not None) == method.needs_teacher


def test_compile_is_refused_for_a_method_that_declares_eager_only(tmp_path):
    assert EAGER_ONLY in build_method("le", explainer="guided_bp").requirements()
    assert EAGER_ONLY not in build_method("le", explainer="grad").requirements()
    with pytest.raises(TrainingError, match="needs eager execution"):
        train(spec({"name": "le", "explainer": "guided_bp"}, performance={"compile": "eager"}), tmp_path / "r")
    loop = (ROOT / "src" / "introspect" / "train" / "loop.py").read_text()
    assert "guided_bp" not in loop and "explainer" not in loop  # no method-specific branch


def test_evaluation_runs_without_autograd_and_training_with_it():
    torch.manual_seed(0)
    model = build_model("resnet8", 10, (1, 8, 8))
    modes = []
    model.register_forward_pre_hook(lambda *_: modes.append((torch.is_inference_mode_enabled(),
                                                             torch.is_grad_enabled())))
    from introspect.data import Split
    accuracy(model, Split(torch.randn(6, 1, 8, 8), torch.zeros(6, dtype=torch.int64)), batch_size=4)
    assert modes == [(True, False), (True, False)]
    terms, _ = train_step(build_method("ce"), model, SGD(model.parameters(), lr=0.1), torch.randn(4, 1, 8, 8),
                          torch.arange(4), 0, 10, performance=Performance())
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("method", [{"name": "ce"}, {"name": "e2kd"}, {"name": "le", "explainer": "grad_cam"},
                                    {"name": "xdistill"}])
def test_one_step_of_a_spec_runs_from_outside_the_loop(tmp_path, monkeypatch, method):
    monkeypatch.chdir(tmp_path)  # nothing may be written here
    result = run_one_step(spec({**method, "warmup_epochs": 1} if method["name"] == "le" else method),
                          teacher_model="resnet14")
    assert result["terms"] and all(torch.isfinite(torch.tensor(v)) for v in result["terms"].values())
    assert result["seconds"] > 0 and not any(tmp_path.iterdir())
    if method["name"] == "le":  # the last epoch's step: LE's explanation stage, not its warm-up
        assert result["epoch"] == 1 and set(result["terms"]) == {"le", "ce"}


@pytest.mark.system
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable CUDA device")
def test_a_device_failure_is_one_line_with_the_device_and_versions_and_its_own_exit_code(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("INTROSPECT_WORKER", None)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec({"name": "ce"}).to_dict()))
    result = subprocess.run([sys.executable, "-m", "introspect", "train", "--spec", str(spec_file),
                             "--out", str(tmp_path / "r"), "--device", "cuda"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_DEVICE_ERROR
    lines = [line for line in result.stderr.splitlines() if "INFO" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: device failure on cuda")
    assert f"torch {torch.__version__}" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.system
def test_on_cuda_deterministic_mode_is_set_up_before_cuda_starts():
    code = ("import os, torch; from introspect.train import device; device.configure('cuda');"
            "print(os.environ['CUBLAS_WORKSPACE_CONFIG'], torch.are_deterministic_algorithms_enabled(),"
            " torch.backends.cudnn.deterministic, torch.cuda.is_initialized())")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("CUBLAS_WORKSPACE_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [":4096:8", "True", "True", "False"]
