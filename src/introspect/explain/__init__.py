"""All-class saliency maps from one batched backward pass.

``explain(model, x, method)`` returns a tensor ``(batch, classes, *spatial)``: one explanation per
class for every sample. The trick that makes LE affordable: the gradients of all ``c`` logits are
one vmapped backward (``is_grads_batched``) over the same forward graph, not ``c`` backward calls.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.base import Forward, guided_relus

EXPLAINERS = ("grad", "grad_input", "guided_bp", "grad_cam")
INPUT_GRADIENT_EXPLAINERS = ("grad", "grad_input", "guided_bp")


def class_gradients(logits: Tensor, wrt: Tensor, *, create_graph: bool = False) -> Tensor:
    """d logits[:, k] / d wrt for every class k, as ``(batch, classes, *wrt.shape[1:])``.

    Row k of the batched grad_outputs selects logit k of every sample; summing over the batch is
    exact because each sample's logit depends only on its own input (in eval mode; in train mode
    BatchNorm couples samples and this is the gradient of the batch sum, as a per-class loop gives).
    """
    batch, classes = logits.shape
    selectors = torch.eye(classes, dtype=logits.dtype, device=logits.device)
    selectors = selectors[:, None, :].expand(classes, batch, classes)
    (grads,) = torch.autograd.grad(
        logits, wrt, grad_outputs=selectors, is_grads_batched=True,
        retain_graph=True, create_graph=create_graph,
    )
    return grads.transpose(0, 1)


def grad_cam_from_features(logits: Tensor, features: Tensor, *, create_graph: bool = False) -> Tensor:
    """Grad-CAM of all classes: ReLU(sum_c mean_hw(dy_k/dA_c) * A_c) -> ``(batch, classes, H, W)``."""
    grads = class_gradients(logits, features, create_graph=create_graph)  # (B, K, C, H, W)
    weights = grads.mean(dim=(-2, -1))  # (B, K, C)
    return F.relu(torch.einsum("bkc,bchw->bkhw", weights, features))


def grad_cam_of_class(model: nn.Module, out: Forward, classes: Tensor, *, create_graph: bool = False) -> Tensor:
    """Grad-CAM of one class per sample (``classes``, shape ``(batch,)``) from a forward pass
    ``out = model.forward_features(x)``: ``(batch, H, W)``. One backward pass (or none, where the
    closed form applies). With ``create_graph=True`` the maps are differentiable w.r.t. the model's
    parameters, so a loss on them trains through the explanation (e2KD)."""
    features = _explanation_features(model, out)
    rows = torch.arange(classes.shape[0], device=classes.device)
    closed_form = model.cam_from_features(features) if hasattr(model, "cam_from_features") else None
    if closed_form is not None:
        maps = closed_form[rows, classes]
        return maps if create_graph else maps.detach()
    (grads,) = torch.autograd.grad(out.logits[rows, classes].sum(), features, retain_graph=True,
                                   create_graph=create_graph)
    maps = F.relu((grads.mean(dim=(-2, -1), keepdim=True) * features).sum(dim=1))
    return maps if create_graph else maps.detach()


def explanations_for_step(
    model: nn.Module,
    x: Tensor,
    out: Forward,
    method: str,
    *,
    create_graph: bool = False,
) -> Tensor:
    """Explanations reusing a training step's own forward pass ``out = model.forward_features(x)``.

    For the input-gradient methods ``x`` must have required grad before that forward pass.
    Guided backprop changes the ReLU backward, so it needs a forward pass of its own.
    """
    if method == "grad_cam":
        features = _explanation_features(model, out)
        if not create_graph:
            closed_form = model.cam_from_features(features)
            if closed_form is not None:
                return closed_form.detach()
        return grad_cam_from_features(out.logits, features, create_graph=create_graph)
    if method == "guided_bp":
        with _running_stats_kept(model):  # the extra forward must not update BatchNorm statistics twice
            return explain(model, x.detach(), "guided_bp", create_graph=create_graph)
    if method in ("grad", "grad_input"):
        if not x.requires_grad:
            raise ValueError(f"explainer {method!r} needs x.requires_grad_() before the forward pass")
        grads = class_gradients(out.logits, x, create_graph=create_graph)
        return grads * x.unsqueeze(1) if method == "grad_input" else grads
    raise ValueError(f"unknown explainer {method!r}; choose one of {', '.join(EXPLAINERS)}")


def explain(
    model: nn.Module,
    x: Tensor,
    method: str,
    *,
    layer: nn.Module | str | None = None,
    create_graph: bool = False,
) -> Tensor:
    """One explanation per class for every sample, shape ``(batch, classes, *spatial)``.

    ``method``: ``grad`` (input gradient), ``grad_input`` (gradient x input), ``guided_bp``
    (guided backpropagation) or ``grad_cam`` (at ``layer``: a submodule or its dotted name; by default
    the model's explanation layer, the output of its last conv stage). The model's current mode
    (train/eval) is used; call ``model.eval()`` for inference-time explanations. With
    ``create_graph=True`` the result is differentiable w.r.t. the model's parameters (e2KD);
    otherwise it is detached.
    """
    if method not in EXPLAINERS:
        raise ValueError(f"unknown explainer {method!r}; choose one of {', '.join(EXPLAINERS)}")
    with torch.enable_grad():
        if method == "grad_cam":
            result = _grad_cam(model, x, layer, create_graph)
        else:
            if layer is not None:
                raise ValueError(f"layer= applies to grad_cam only, not {method!r}")
            inputs = x.detach().requires_grad_(True)
            guided = guided_relus() if method == "guided_bp" else nullcontext()
            with guided:
                out = _forward(model, inputs)
            result = class_gradients(out.logits, inputs, create_graph=create_graph)
            if method == "grad_input":
                result = result * inputs.detach().unsqueeze(1)
    return result if create_graph else result.detach()


def _grad_cam(model: nn.Module, x: Tensor, layer: nn.Module | str | None, create_graph: bool) -> Tensor:
    if layer is None:
        out = _forward(model, x)
        return grad_cam_from_features(out.logits, _explanation_features(model, out), create_graph=create_graph)
    module = model.get_submodule(layer) if isinstance(layer, str) else layer
    with _capture_output(module) as captured:
        logits = model(x)
    if "output" not in captured:
        raise ValueError(f"layer {layer!r} was not used in the forward pass")
    return grad_cam_from_features(logits, captured["output"], create_graph=create_graph)


def _forward(model: nn.Module, x: Tensor) -> Forward:
    if hasattr(model, "forward_features"):
        return model.forward_features(x)
    return Forward(logits=model(x))


def _explanation_features(model: nn.Module, out: Forward) -> Tensor:
    if out.explain_features is None:
        raise ValueError(
            f"{type(model).__name__} has no convolutional explanation layer, so Grad-CAM does not "
            "apply; use an input-gradient explainer (grad, grad_input, guided_bp)"
        )
    return out.explain_features


@contextmanager
def _running_stats_kept(model: nn.Module) -> Iterator[None]:
    """BatchNorm statistics untouched by an extra forward pass. The extra pass updates throw-away
    copies: restoring the originals in place would bump their autograd version and break the backward
    pass of the step's own forward, which saved them."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m, m.running_mean, m.running_var, m.num_batches_tracked) for m in norms]
    for m, mean, var, count in saved:
        m.running_mean, m.running_var, m.num_batches_tracked = mean.clone(), var.clone(), count.clone()
    try:
        yield
    finally:
        for m, mean, var, count in saved:
            m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count


@contextmanager
def _capture_output(module: nn.Module) -> Iterator[dict[str, Tensor]]:
    captured: dict[str, Tensor] = {}

    def hook(_module, _inputs, output):
        captured["output"] = output

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


__all__ = [
    "EXPLAINERS", "INPUT_GRADIENT_EXPLAINERS", "class_gradients", "explain",
    "explanations_for_step", "grad_cam_from_features", "grad_cam_of_class",
]
