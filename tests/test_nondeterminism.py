"""The list of operations without a deterministic CUDA kernel comes from torch's own documentation and the
operations a step actually dispatches (introspect.train.nondeterminism)."""
import torch
import torch.nn.functional as F

from introspect.train.nondeterminism import cuda_alerts, nondeterministic_ops, traced_ops


def test_torchs_documented_list_is_read_from_the_installed_torch():
    alerts = {a.documented: a for a in cuda_alerts()}
    pool = alerts["torch.nn.AdaptiveAvgPool2d"]
    assert pool.aten == "adaptive_avg_pool2d" and pool.backward_only
    assert alerts["torch.nn.functional.interpolate (bilinear)"].aten == "upsample_bilinear"
    assert alerts["torch.nn.NLLLoss"].aten == "nll_loss2d"  # the 2-D loss alone; cross-entropy on (N, C) is not
    assert "torch.Tensor.resize_" not in alerts  # quantized tensors only


def test_a_pooling_backward_is_flagged_and_its_forward_is_not():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    forward = traced_ops(lambda: F.adaptive_avg_pool2d(x, 2))
    assert nondeterministic_ops(forward) == {}
    both = traced_ops(lambda: F.adaptive_avg_pool2d(x, 2).sum().backward())
    assert nondeterministic_ops(both) == {"_adaptive_avg_pool2d_backward": "torch.nn.AdaptiveAvgPool2d"}


def test_cross_entropy_and_nearest_upsampling_are_not_flagged_bilinear_is():
    logits = torch.randn(4, 10, requires_grad=True)
    ops = traced_ops(lambda: F.cross_entropy(logits, torch.arange(4)).backward())
    assert "nll_loss_forward" in ops and nondeterministic_ops(ops) == {}
    maps = torch.randn(2, 1, 4, 4, requires_grad=True)
    nearest = traced_ops(lambda: F.interpolate(maps, size=8).sum().backward())
    bilinear = traced_ops(lambda: F.interpolate(maps, size=8, mode="bilinear").sum().backward())
    assert nondeterministic_ops(nearest) == {}
    assert nondeterministic_ops(bilinear) == {
        "upsample_bilinear2d_backward": "torch.nn.functional.interpolate (bilinear)"}
