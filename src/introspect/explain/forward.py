"""The explanation's own forward pass: samples independent, guided ReLUs on request, for any model.

Definition (train mode): BatchNorm normalises with the statistics of the batch, computed as usual,
but held constant (detached) in the explanation. Every sample's logits then depend on its own input
only, so the gradient of the batch-summed logit of class k is, in row i, sample i's own derivative
``d logit_ik / d x_i``; it equals the derivative of a copy of the network in eval mode whose running
statistics are the batch's (biased variance), fed sample i alone. Without holding them constant,
``d/dx`` of the batch sum mixes every sample into every other's map. In eval mode the running
statistics are used and nothing changes.

Both rules work on any model by intercepting torch functions (a ``TorchFunctionMode``), not modules:
``F.batch_norm`` (what every ``nn.BatchNorm*`` calls) and the ReLU entry points (``F.relu`` which
``nn.ReLU`` calls, ``torch.relu``, ``Tensor.relu`` and their in-place forms, whose guided form
returns a new tensor rather than writing in place).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..models.base import Forward

_RELUS = frozenset({F.relu, F.relu_, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_})
_BATCH_COUPLING_NODES = ("BatchNorm",)
_OPAQUE_NODES = ("CompiledFunction",)  # a compiled graph's backward may hide a batch-coupling op


class GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients where the input was positive."""

    generate_vmap_rule = True  # lets all classes' explanations come from one vmapped backward

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x.clamp(min=0)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (output,) = ctx.saved_tensors
        return grad.clamp(min=0) * (output > 0).to(grad.dtype)


def batch_norm_with_constant_statistics(input: Tensor, running_mean, running_var, weight=None, bias=None,
                                        training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``F.batch_norm`` whose batch statistics (when ``training``) are detached constants; never
    updates the running statistics."""
    if not training:
        return F.batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    dims = [0, *range(2, input.dim())]
    dtype = torch.promote_types(input.dtype, torch.float32)  # like running statistics under autocast
    var, mean = torch.var_mean(input.detach().to(dtype), dim=dims, correction=0)
    return F.batch_norm(input, mean, var, weight, bias, False, 0.0, eps)


class _ExplanationMode(TorchFunctionMode):
    def __init__(self, guided: bool) -> None:
        super().__init__()
        self.guided = guided

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            return batch_norm_with_constant_statistics(*args, **kwargs)
        if self.guided and func in _RELUS:
            return GuidedReLU.apply(args[0])
        return func(*args, **kwargs)


def explanation_forward(model: nn.Module, x: Tensor, *, guided: bool = False) -> Forward:
    """``model.forward_features(x)`` (or ``model(x)``) with batch statistics held constant and,
    if ``guided``, guided-backprop ReLUs. Runs the eager forward of a ``torch.compile``d model.
    Leaves BatchNorm buffers untouched (see :func:`batch_norm_buffers_kept`)."""
    with batch_norm_buffers_kept(model), _ExplanationMode(guided):
        if not hasattr(model, "forward_features"):
            return Forward(logits=model(x))
        forward = model.forward_features
        return getattr(forward, "_torchdynamo_orig_callable", forward)(x)


@contextmanager
def batch_norm_buffers_kept(model: nn.Module) -> Iterator[None]:
    """BatchNorm buffers (running statistics, ``num_batches_tracked``) as they were, whatever the
    forward passes inside do. Those passes update throw-away copies: restoring the originals in place
    would bump their autograd version and break the backward pass of a training step's own forward,
    which saved them."""
    saved = {(m, name): buffer for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             for name, buffer in m.named_buffers(recurse=False)}
    for (m, name), buffer in saved.items():
        setattr(m, name, buffer.clone())
    try:
        yield
    finally:
        for (m, name), buffer in saved.items():
            setattr(m, name, buffer)


def uses_batch_statistics(model: nn.Module) -> bool:
    """Whether a forward pass of ``model`` normalises with batch statistics (coupling the samples)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
               for m in model.modules())


def couples_samples(model: nn.Module, output: Tensor, wrt: Tensor) -> bool:
    """Whether ``d output / d wrt`` cannot be taken per sample from an existing graph: a batch-statistics
    BatchNorm lies between them (it mixes the samples), or a compiled graph does (its backward may hide a
    BatchNorm, and a batched backward cannot run through it: vmap has no rule for its copies). Walks
    ``output``'s autograd graph, not expanding past ``wrt``; the compiled-graph check comes first, as a
    model without BatchNorm (an MLP) may be compiled too."""
    batch_statistics = uses_batch_statistics(model)
    stop, seen, stack = wrt.grad_fn, set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        name = node.name()
        if any(opaque in name for opaque in _OPAQUE_NODES):
            return True
        if node is stop:
            continue
        if batch_statistics and any(coupling in name for coupling in _BATCH_COUPLING_NODES):
            return True
        stack.extend(child for child, _ in node.next_functions)
    return False
