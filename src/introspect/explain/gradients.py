"""Input-gradient explainers: ``grad``, ``grad_input`` and ``guided_bp``, all classes from one
batched backward pass (:func:`class_gradients`).

Two implementations of that backward, chosen per device (:func:`batched_backward`):

- ``loop``: ``torch.autograd.grad(..., is_grads_batched=True)``. Its legacy vmap has no batching rule for
  convolution and BatchNorm backward, so there it runs one backward per class (ResNet-8: 10x the
  convolution backward kernels of a plain step). On a CPU that is the faster one: the per-class kernels
  are large enough to keep the cores busy.
- ``vmap``: ``torch.vmap`` over ``torch.autograd.grad`` (torch.func's batching rules): one kernel per layer
  for all classes. On a GPU, where a small network's step is bound by kernel launches, that is what batching
  is for (untested on a GPU). The maps are the same; the tests compare them bit for bit on the CPU.

``auto`` (the default) takes ``vmap`` on CUDA and ``loop`` elsewhere; ``performance.batched_backward``
overrides it for a run (``bench/step_time.py`` and ``bench/gpu_check.py`` time both).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..models.base import Forward
from .forward import couples_samples, explanation_forward
from .registry import Explainer, register_explainer

# introspect.runs.spec.BatchedBackward names the same three (runs/ imports methods, which import this module)
BATCHED_BACKWARDS = ("auto", "vmap", "loop")
_chosen = ["auto"]  # the mode in force (set by :func:`batched_backward_mode` around a training step)


def batched_backward(device: torch.device | str, mode: str | None = None) -> str:
    """The implementation ``mode`` (default: the one in force) means on ``device``: ``vmap`` or ``loop``."""
    mode = mode or _chosen[-1]
    if mode not in BATCHED_BACKWARDS:
        raise ValueError(f"batched backward must be one of {', '.join(BATCHED_BACKWARDS)}, not {mode!r}")
    if mode == "auto":
        return "vmap" if torch.device(device).type == "cuda" else "loop"
    return mode


@contextmanager
def batched_backward_mode(mode: str) -> Iterator[None]:
    """All-class backward passes inside use ``mode`` (``auto``, ``vmap`` or ``loop``)."""
    batched_backward("cpu", mode)  # checks the name
    _chosen.append(mode)
    try:
        yield
    finally:
        _chosen.pop()


def class_gradients(logits: Tensor, wrt: Tensor, *, create_graph: bool = False, mode: str | None = None) -> Tensor:
    """d logits[:, k] / d wrt for every class k, as ``(batch, classes, *wrt.shape[1:])``.

    Row k of the batched grad_outputs selects logit k of every sample, so this is the gradient of
    the batch sum: each sample's own gradient only when no operation between ``wrt`` and ``logits``
    couples the samples (train-mode BatchNorm does; use :func:`explanation_forward`'s graph then).
    ``mode``: the batched backward's implementation (default: the one in force; see the module docstring).
    """
    batch, classes = logits.shape
    selectors = torch.eye(classes, dtype=logits.dtype, device=logits.device)
    selectors = selectors[:, None, :].expand(classes, batch, classes)
    if batched_backward(logits.device, mode) == "vmap":
        def one_class(selector: Tensor) -> Tensor:
            return torch.autograd.grad(logits, wrt, grad_outputs=selector, retain_graph=True,
                                       create_graph=create_graph)[0]

        grads = torch.vmap(one_class)(selectors)
    else:
        (grads,) = torch.autograd.grad(
            logits, wrt, grad_outputs=selectors, is_grads_batched=True,
            retain_graph=True, create_graph=create_graph,
        )
    return grads.transpose(0, 1)


@register_explainer
class InputGradient(Explainer):
    """d logit_k / d x."""

    name = "grad"
    needs_input_grad = True
    guided = False

    def finish(self, grads: Tensor, x: Tensor) -> Tensor:
        return grads

    def explain(self, model: nn.Module, x: Tensor, *, layer=None, create_graph: bool) -> Tensor:
        inputs = x.detach().requires_grad_(True)
        out = explanation_forward(model, inputs, guided=self.guided)
        return self.finish(class_gradients(out.logits, inputs, create_graph=create_graph), inputs.detach())

    def for_step(self, model: nn.Module, x: Tensor, out: Forward, *, create_graph: bool) -> Tensor | None:
        if couples_samples(model, out.logits, x):
            return None
        if not x.requires_grad:
            raise ValueError(f"explainer {self.name!r} needs x.requires_grad_() before the forward pass")
        return self.finish(class_gradients(out.logits, x, create_graph=create_graph), x)


@register_explainer
class GradientTimesInput(InputGradient):
    """d logit_k / d x, times x."""

    name = "grad_input"

    def finish(self, grads: Tensor, x: Tensor) -> Tensor:
        return grads * x.unsqueeze(1)


@register_explainer
class GuidedBackprop(InputGradient):
    """Guided backpropagation: any model whose ReLUs are ``nn.ReLU``, ``F.relu`` or ``torch.relu``.
    Always a forward pass of its own, whose ReLU backward differs from the step's."""

    name = "guided_bp"
    needs_input_grad = False
    supports_compile = False
    guided = True

    def for_step(self, model: nn.Module, x: Tensor, out: Forward, *, create_graph: bool) -> Tensor | None:
        return None
