"""Input-gradient explainers: ``grad``, ``grad_input`` and ``guided_bp``, all classes from one
vmapped backward pass (:func:`class_gradients`)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..models.base import Forward
from .forward import couples_samples, explanation_forward
from .registry import Explainer, register_explainer


def class_gradients(logits: Tensor, wrt: Tensor, *, create_graph: bool = False) -> Tensor:
    """d logits[:, k] / d wrt for every class k, as ``(batch, classes, *wrt.shape[1:])``.

    Row k of the batched grad_outputs selects logit k of every sample, so this is the gradient of
    the batch sum: each sample's own gradient only when no operation between ``wrt`` and ``logits``
    couples the samples (train-mode BatchNorm does; use :func:`explanation_forward`'s graph then).
    """
    batch, classes = logits.shape
    selectors = torch.eye(classes, dtype=logits.dtype, device=logits.device)
    selectors = selectors[:, None, :].expand(classes, batch, classes)
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
