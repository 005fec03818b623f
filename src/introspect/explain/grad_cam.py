"""Grad-CAM of all classes at the model's explanation layer (or any layer), and of one class per
sample (e2KD); in closed form where the model offers one."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.base import Forward
from .forward import couples_samples, explanation_forward
from .gradients import class_gradients
from .registry import Explainer, register_explainer


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


@register_explainer
class GradCam(Explainer):
    """Grad-CAM at ``layer`` (a submodule or its dotted name; by default the model's explanation
    layer, the output of its last conv stage)."""

    name = "grad_cam"
    takes_layer = True

    def explain(self, model: nn.Module, x: Tensor, *, layer: nn.Module | str | None, create_graph: bool) -> Tensor:
        if layer is None:
            out = explanation_forward(model, x)
            return grad_cam_from_features(out.logits, _explanation_features(model, out), create_graph=create_graph)
        module = _submodule(model, layer) if isinstance(layer, str) else layer
        with _capture_output(module) as captured:
            logits = explanation_forward(model, x).logits
        if "output" not in captured:
            raise ValueError(f"layer {layer!r} was not used in the forward pass")
        return grad_cam_from_features(logits, captured["output"], create_graph=create_graph)

    def for_step(self, model: nn.Module, x: Tensor, out: Forward, *, create_graph: bool) -> Tensor | None:
        features = _explanation_features(model, out)
        if not create_graph:
            closed_form = _closed_form_cam(model, features)
            if closed_form is not None:
                return closed_form.detach()
        if not couples_samples(model, out.logits, features):
            return grad_cam_from_features(out.logits, features, create_graph=create_graph)
        return None


def _submodule(model: nn.Module, name: str) -> nn.Module:
    """The submodule a config's ``cam_layer`` names; a name the model lacks is a ValueError (an input error:
    one line from the CLI) naming the model's stages instead of an AttributeError from deep in torch."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        shallow = [n for n, _ in model.named_modules() if n and n.count(".") <= 1][:12]
        raise ValueError(f"cam_layer {name!r}: {type(model).__name__} has no such submodule "
                         f"(it has e.g. {', '.join(shallow)})") from None


def _closed_form_cam(model: nn.Module, features: Tensor) -> Tensor | None:
    return model.cam_from_features(features) if hasattr(model, "cam_from_features") else None


def _explanation_features(model: nn.Module, out: Forward) -> Tensor:
    if out.explain_features is None:
        convs = [name for name, module in model.named_modules()
                 if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
        if convs:  # the user's own network: it marks no layer (no forward_features), but it has convolutions
            raise ValueError(
                f"{type(model).__name__} marks no layer for Grad-CAM; name one with layer=, e.g. "
                f"explain(model, x, 'grad_cam', layer={convs[-1]!r}) (its last convolution), or use an "
                "input-gradient explainer (grad, grad_input, guided_bp)")
        raise ValueError(
            f"{type(model).__name__} has no convolutional layer, so Grad-CAM does not "
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
