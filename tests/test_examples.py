"""The examples in examples/ run as a user runs them (``python examples/NAME.py``, here in-process with the
same ``__main__``) and do what their docstrings say: each prints its results, and the numbers are checked."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch

from introspect.explain import explain

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_every_example_is_run_by_a_test():
    tested = {"le_own_loop.py", "e2kd_own_loop.py", "grad_cam_own_model.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_grad_cam_on_your_own_model_points_to_layer_and_explains_it(capsys):
    module = run_example("grad_cam_own_model.py")
    out = capsys.readouterr().out
    assert "layer=" in out and "layer='3'" in out  # the error names layer= and the last convolution
    maps = module["main"]()
    assert maps["grad_cam"].shape == (5, 4, 12, 12) and maps["grad_input"].shape == (5, 4, 3, 12, 12)
    torch.testing.assert_close(maps["grad_cam"], maps["grad_cam of module"])
    assert (maps["grad_cam"] >= 0).all()  # Grad-CAM's ReLU


def test_explain_by_name_equals_explain_by_module_on_a_plain_sequential():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 6 * 6, 2))
    x = torch.randn(2, 1, 6, 6)
    by_name = explain(model, x, "grad_cam", layer="1")
    # Grad-CAM by hand: ReLU(sum_c mean_hw(d logit_k / d A_c) * A_c) for the ReLU's output A
    features = model[1](model[0](x))
    for k in range(2):
        a = features.detach().requires_grad_(True)
        logit = model[3](model[2](a))[:, k].sum()
        (grad,) = torch.autograd.grad(logit, a)
        expected = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * a).sum(1)).detach()
        torch.testing.assert_close(by_name[:, k], expected)


@pytest.mark.slow
def test_le_in_your_own_loop_learns_the_digits(capsys):
    run_example("le_own_loop.py")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "epoch 1 (CE)", "epoch 2 (CE)", "epoch 3 (LE)", "epoch 4 (LE)"]
    final = float(lines[-1].rsplit(" ", 1)[1].rstrip("%"))
    assert final > 70  # 10 classes: chance is 10%; 397 test images


@pytest.mark.slow
def test_e2kd_in_your_own_loop_learns_from_a_teacher(capsys):
    run_example("e2kd_own_loop.py")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("teacher test accuracy ") and len(lines) == 3
    assert [line.split(":")[0] for line in lines[1:]] == ["student epoch 1", "student epoch 2"]
    teacher, student = (float(line.rsplit(" ", 1)[1].rstrip("%")) for line in (lines[0], lines[-1]))
    assert teacher > 80 and student > 50  # 10 classes: chance is 10%
