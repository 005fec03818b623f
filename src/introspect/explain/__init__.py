"""All-class saliency maps from one batched backward pass; each sample's map is its own derivative.

``explain(model, x, explainer)`` returns a tensor ``(batch, classes, *spatial)``: one explanation per
class for every sample. The trick that makes LE affordable: the gradients of all ``c`` logits are
one batched backward over the same forward graph (:func:`.gradients.class_gradients`), not ``c`` backward calls.
That backward differentiates the batch-summed logit of each class, which is every sample's own
derivative only if no operation couples the samples. BatchNorm in training mode does, so explanations
come from a forward pass that holds the batch statistics constant (:mod:`.forward`): sample i's map is
``d logit_ik / d x_i`` of the network normalised with this batch's statistics.

The explainers are a registry (:mod:`.registry`): one module per family, imported below.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..models.base import Forward
from . import grad_cam, gradients  # noqa: F401  (registers the explainers; grad_cam imports gradients, so those come first)
from .grad_cam import grad_cam_from_features, grad_cam_of_class
from .gradients import class_gradients
from .registry import Explainer, available_explainers, explainer_entry, register_explainer

EXPLAINERS = available_explainers()


def explanations_for_step(
    model: nn.Module,
    x: Tensor,
    out: Forward,
    explainer: str,
    *,
    layer: str | None = None,
    create_graph: bool = False,
) -> Tensor:
    """Explanations of a training step's batch, reusing the step's own forward pass
    ``out = model.forward_features(x)`` where that gives each sample's own derivative.

    That is where no train-mode BatchNorm lies between the explained tensor and the logits (an MLP,
    eval mode, Grad-CAM at a last stage followed by pooling and a head); ``x`` must then have required
    grad before that forward pass for the explainers that declare ``needs_input_grad``. Otherwise, and
    always for guided backprop (whose ReLU backward differs), the explanation runs a forward pass of
    its own like :func:`explain`, which leaves the BatchNorm statistics as the step's forward pass left them.
    Grad-CAM at another ``layer`` than the model's explanation layer (a dotted submodule name) always runs
    that forward pass of its own.
    """
    if layer:
        return explain(model, x.detach(), explainer, layer=layer, create_graph=create_graph)
    maps = explainer_entry(explainer).for_step(model, x, out, create_graph=create_graph)
    return maps if maps is not None else explain(model, x.detach(), explainer, create_graph=create_graph)


def explain(
    model: nn.Module,
    x: Tensor,
    explainer: str,
    *,
    layer: nn.Module | str | None = None,
    create_graph: bool = False,
) -> Tensor:
    """One explanation per class for every sample, shape ``(batch, classes, *spatial)``.

    ``explainer``: ``grad`` (input gradient), ``grad_input`` (gradient x input), ``guided_bp``
    (guided backpropagation; any model whose ReLUs are ``nn.ReLU``, ``F.relu`` or ``torch.relu``)
    or ``grad_cam`` (at ``layer``: a submodule or its dotted name; by default the model's explanation
    layer, the output of its last conv stage). The model's current mode (train/eval) is used; call
    ``model.eval()`` for inference-time explanations. In train mode BatchNorm uses the batch's
    statistics held constant, so row i is sample i's own derivative (see :mod:`.forward`).

    No side effects: the model's mode, its BatchNorm buffers and the global RNG (dropout draws in
    train mode) are as before. With ``create_graph=True`` the result is differentiable w.r.t. the
    model's parameters (e2KD); otherwise it is detached.
    """
    entry = explainer_entry(explainer)
    if layer is not None and not entry.takes_layer:
        takes = [name for name in EXPLAINERS if explainer_entry(name).takes_layer]
        raise ValueError(f"layer= applies to {', '.join(takes)} only, not {explainer!r}")
    rng_devices = [x.device] if x.device.type == "cuda" else []
    with torch.enable_grad(), torch.random.fork_rng(devices=rng_devices):
        result = entry.explain(model, x, layer=layer, create_graph=create_graph)
    return result if create_graph else result.detach()


__all__ = [
    "EXPLAINERS", "Explainer", "available_explainers", "class_gradients", "explain", "explainer_entry",
    "explanations_for_step", "grad_cam_from_features", "grad_cam_of_class", "register_explainer",
]
