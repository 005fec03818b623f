"""The all-class backward's two implementations (introspect.explain.gradients): torch.vmap over
autograd.grad and autograd's is_grads_batched give the same maps, bit for bit, on a ResNet with train-mode
BatchNorm and on the MLP, for every explainer; and vmap runs one convolution backward per layer."""
import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from introspect.explain import EXPLAINERS, class_gradients, explain, explanations_for_step
from introspect.explain.gradients import batched_backward, batched_backward_mode
from introspect.models import build_model


class CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


CASES = [("resnet8", (3, 16, 16), EXPLAINERS), ("mlp1024", (1, 8, 8), ("grad", "grad_input", "guided_bp"))]


@pytest.mark.parametrize("model_name,shape,explainers", CASES)
def test_both_implementations_give_identical_maps(model_name, shape, explainers):
    torch.manual_seed(0)
    model = build_model(model_name, 10, shape).train()
    x = torch.randn(12, *shape)
    for explainer in explainers:
        with batched_backward_mode("loop"):
            loop = explain(model, x, explainer)
        with batched_backward_mode("vmap"):
            vmapped = explain(model, x, explainer)
        assert loop.shape[:2] == (12, 10)
        assert torch.equal(loop, vmapped), explainer
        assert loop.abs().sum() > 0  # maps that say something, not two empty tensors


def test_the_step_path_gives_identical_maps_both_ways():
    """explanations_for_step reuses the step's forward pass (the MLP; Grad-CAM at the last stage)."""
    torch.manual_seed(0)
    for model_name, shape, explainer in (("mlp1024", (1, 8, 8), "grad"), ("resnet8", (3, 16, 16), "grad_cam")):
        model = build_model(model_name, 10, shape).train()
        maps = {}
        for mode in ("loop", "vmap"):
            x = torch.randn(8, *shape, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
            out = model.forward_features(x)
            with batched_backward_mode(mode):
                maps[mode] = explanations_for_step(model, x, out, explainer)
        assert torch.equal(maps["loop"], maps["vmap"]), model_name


def test_vmap_runs_one_convolution_backward_per_layer():
    torch.manual_seed(0)
    model = build_model("resnet8", 10, (3, 16, 16)).eval()
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    logits = model(x)
    convolutions = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    counts = {}
    for mode in ("loop", "vmap"):
        with CountOps() as ops:
            class_gradients(logits, x, mode=mode)
        counts[mode] = ops.counts["aten.convolution_backward"]
    assert counts["vmap"] == convolutions  # one kernel per layer, every class at once
    assert counts["loop"] == 10 * convolutions  # one per class: the legacy vmap has no rule for it


def test_auto_is_vmap_on_cuda_and_loop_elsewhere():
    assert batched_backward("cpu", "auto") == "loop"
    assert batched_backward("cuda:0", "auto") == "vmap"
    assert batched_backward("cuda", "loop") == "loop"
    with pytest.raises(ValueError, match="auto, vmap, loop"):
        batched_backward("cpu", "fast")


def test_the_run_spec_and_the_explainers_name_the_same_implementations():
    from introspect.explain.gradients import BATCHED_BACKWARDS
    from introspect.runs.spec import BATCHED_BACKWARDS as SPEC_BATCHED_BACKWARDS

    assert BATCHED_BACKWARDS == SPEC_BATCHED_BACKWARDS
