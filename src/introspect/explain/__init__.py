"""All-class saliency maps from one batched backward pass; each sample's map is its own derivative.

``explain(model, x, method)`` returns a tensor ``(batch, classes, *spatial)``: one explanation per
class for every sample. The trick that makes LE affordable: the gradients of all ``c`` logits are
one vmapped backward (``is_grads_batched``) over the same forward graph, not ``c`` backward calls.
That backward differentiates the batch-summed logit of each class, which is every sample's own
derivative only if no operation couples the samples. BatchNorm in training mode does, so explanations
come from a forward pass that holds the batch statistics constant (:mod:`.forward`): sample i's map is
``d logit_ik / d x_i`` of the network normalised with this batch's statistics.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.base import Forward
from .forward import couples_samples, explanation_forward

EXPLAINERS = ("grad", "grad_input", "guided_bp", "grad_cam")
INPUT_GRADIENT_EXPLAINERS = ("grad", "grad_input", "guided_bp")


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


def grad_cam_from_features(logits: Tensor, features: Tensor, *, create_graph: bool = False) -> Tensor:
    """Grad-CAM of all classes: ReLU(sum_c mean_hw(dy_k/dA_c) * A_c) -> ``(batch, classes, H, W)``.
    Per sample only if nothing between ``features`` and ``logits`` couples the samples."""
    grads = class_gradients(logits, features, create_graph=create_graph)  # (B, K, C, H, W)
    weights = grads.mean(dim=(-2, -1))  # (B, K, C)
    return F.relu(torch.einsum("bkc,bchw->bkhw", weights, features))


def grad_cam_of_class(model: nn.Module, out: Forward, classes: Tensor, *, x: Tensor | None = None,
                      create_graph: bool = False) -> Tensor:
    """Grad-CAM of one class per sample (``classes``, shape ``(batch,)``) from a forward pass
    ``out = model.forward_features(x)``: ``(batch, H, W)``. One backward pass (or none, where the
    closed form applies). Where a train-mode BatchNorm lies between the explanation layer and the
    logits, the maps come from a forward pass of ``x`` with constant batch statistics, so ``x`` is
    needed. With ``create_graph=True`` the maps are differentiable w.r.t. the model's parameters, so
    a loss on them trains through the explanation (e2KD)."""
    features = _explanation_features(model, out)
    rows = torch.arange(classes.shape[0], device=classes.device)
    closed_form = _closed_form_cam(model, features)
    if closed_form is not None:
        maps = closed_form[rows, classes]
        return maps if create_graph else maps.detach()
    with torch.enable_grad():
        if couples_samples(model, out.logits, features):
            if x is None:
                raise ValueError(f"grad_cam_of_class: {type(model).__name__} couples the samples between its "
                                 "explanation layer and logits (train-mode BatchNorm); pass x=")
            out = explanation_forward(model, x.detach())
            features = _explanation_features(model, out)
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
    layer: str | None = None,
    create_graph: bool = False,
) -> Tensor:
    """Explanations of a training step's batch, reusing the step's own forward pass
    ``out = model.forward_features(x)`` where that gives each sample's own derivative.

    That is where no train-mode BatchNorm lies between the explained tensor and the logits (an MLP,
    eval mode, Grad-CAM at a last stage followed by pooling and a head); ``x`` must then have required
    grad before that forward pass for the input-gradient methods. Otherwise, and always for guided
    backprop (whose ReLU backward differs), the explanation runs a forward pass of its own like
    :func:`explain`, which leaves the BatchNorm statistics as the step's forward pass left them.
    Grad-CAM at another ``layer`` than the model's explanation layer (a dotted submodule name) always runs
    that forward pass of its own.
    """
    if method not in EXPLAINERS:
        raise ValueError(f"unknown explainer {method!r}; choose one of {', '.join(EXPLAINERS)}")
    if layer:
        return explain(model, x.detach(), method, layer=layer, create_graph=create_graph)
    if method == "grad_cam":
        features = _explanation_features(model, out)
        if not create_graph:
            closed_form = _closed_form_cam(model, features)
            if closed_form is not None:
                return closed_form.detach()
        if not couples_samples(model, out.logits, features):
            return grad_cam_from_features(out.logits, features, create_graph=create_graph)
    elif method in ("grad", "grad_input") and not couples_samples(model, out.logits, x):
        if not x.requires_grad:
            raise ValueError(f"explainer {method!r} needs x.requires_grad_() before the forward pass")
        grads = class_gradients(out.logits, x, create_graph=create_graph)
        return grads * x.unsqueeze(1) if method == "grad_input" else grads
    return explain(model, x.detach(), method, create_graph=create_graph)


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
    (guided backpropagation; any model whose ReLUs are ``nn.ReLU``, ``F.relu`` or ``torch.relu``)
    or ``grad_cam`` (at ``layer``: a submodule or its dotted name; by default the model's explanation
    layer, the output of its last conv stage). The model's current mode (train/eval) is used; call
    ``model.eval()`` for inference-time explanations. In train mode BatchNorm uses the batch's
    statistics held constant, so row i is sample i's own derivative (see :mod:`.forward`).

    No side effects: the model's mode, its BatchNorm buffers and the global RNG (dropout draws in
    train mode) are as before. With ``create_graph=True`` the result is differentiable w.r.t. the
    model's parameters (e2KD); otherwise it is detached.
    """
    if method not in EXPLAINERS:
        raise ValueError(f"unknown explainer {method!r}; choose one of {', '.join(EXPLAINERS)}")
    if layer is not None and method != "grad_cam":
        raise ValueError(f"layer= applies to grad_cam only, not {method!r}")
    rng_devices = [x.device] if x.device.type == "cuda" else []
    with torch.enable_grad(), torch.random.fork_rng(devices=rng_devices):
        if method == "grad_cam":
            result = _grad_cam(model, x, layer, create_graph)
        else:
            inputs = x.detach().requires_grad_(True)
            out = explanation_forward(model, inputs, guided=method == "guided_bp")
            result = class_gradients(out.logits, inputs, create_graph=create_graph)
            if method == "grad_input":
                result = result * inputs.detach().unsqueeze(1)
    return result if create_graph else result.detach()


def _grad_cam(model: nn.Module, x: Tensor, layer: nn.Module | str | None, create_graph: bool) -> Tensor:
    if layer is None:
        out = explanation_forward(model, x)
        return grad_cam_from_features(out.logits, _explanation_features(model, out), create_graph=create_graph)
    module = model.get_submodule(layer) if isinstance(layer, str) else layer
    with _capture_output(module) as captured:
        logits = explanation_forward(model, x).logits
    if "output" not in captured:
        raise ValueError(f"layer {layer!r} was not used in the forward pass")
    return grad_cam_from_features(logits, captured["output"], create_graph=create_graph)


def _closed_form_cam(model: nn.Module, features: Tensor) -> Tensor | None:
    return model.cam_from_features(features) if hasattr(model, "cam_from_features") else None


def _explanation_features(model: nn.Module, out: Forward) -> Tensor:
    if out.explain_features is None:
        raise ValueError(
            f"{type(model).__name__} has no convolutional explanation layer, so Grad-CAM does not "
            "apply; use an input-gradient explainer (grad, grad_input, guided_bp)"
        )
    return out.explain_features


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
