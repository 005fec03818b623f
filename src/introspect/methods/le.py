"""LE: learning from online self-explanations (Algorithm 1 of the paper) and its LE-Permut ablation.

Stage 1 (epochs < warmup_epochs): one-hot CE. Stage 2: targets q from the model's own per-class
explanations of the current batch (Eq. 6), loss ``L(p, q) + ce_weight * L(p, y)``. Explanations
only build targets, so they are detached: no second-order graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..explain import EXPLAINERS, explainer_entry, explanations_for_step
from .base import DEAD_MAPS_ALL_CLASSES, EAGER_ONLY, Method, StepContext, register_method
from .hyperparameters import MAX_EPOCHS, MAX_WEIGHT, hp
from .targets import le_targets, soft_cross_entropy


@register_method
@dataclass
class LearningFromExplanations(Method):
    name = "le"
    explainer: str = field(default="grad_cam", metadata=hp(choices=EXPLAINERS))
    alpha: float = field(default=0.9, metadata=hp(gt=0, le=1))
    ce_weight: float = field(default=0.1, metadata=hp(ge=0, le=MAX_WEIGHT))
    warmup_epochs: int = field(default=0, metadata=hp(ge=0, le=MAX_EPOCHS))
    permute: bool = False
    # Grad-CAM at this submodule (dotted name, e.g. "stages.1") instead of the model's explanation layer
    # ("default", its last stage): on small inputs the last stage is a few pixels wide and many classes'
    # maps are zero everywhere. Input-gradient explainers have no layer and ignore it.
    cam_layer: str = "default"

    def requirements(self) -> frozenset[str]:
        # guided backprop swaps the ReLUs' backward between passes, which a compiled graph would freeze
        return self.needs | {EAGER_ONLY} if self.explainer == "guided_bp" else self.needs

    def needs_input_grad(self, epoch: int) -> bool:
        return epoch >= self.warmup_epochs and explainer_entry(self.explainer).needs_input_grad

    def stage(self, epoch: int) -> int:
        return 1 if epoch < self.warmup_epochs else 2

    def loss(self, ctx: StepContext):
        if ctx.epoch < self.warmup_epochs:
            return {"ce": F.cross_entropy(ctx.out.logits, ctx.y)}
        layer = None if self.cam_layer == "default" or self.explainer != "grad_cam" else self.cam_layer
        explanations = explanations_for_step(ctx.model, ctx.x, ctx.out, self.explainer, layer=layer)
        # The ground-truth class's map is the reference of the targets: all zero, they fall back to uniform
        # (label smoothing). Another class's zero map (Grad-CAM's ReLU of evidence that is negative at every
        # position: a class the network rejects) has cosine 0 with it, as a live map with no overlap has.
        ctx.count_dead_explanations(explanations[torch.arange(len(ctx.y), device=ctx.y.device), ctx.y])
        ctx.count_dead_explanations(explanations.flatten(0, 1), DEAD_MAPS_ALL_CLASSES)
        targets = le_targets(explanations, ctx.y, self.alpha, self.permute, ctx.generator)
        return {
            "le": soft_cross_entropy(ctx.out.logits, targets),
            "ce": self.ce_weight * F.cross_entropy(ctx.out.logits, ctx.y),
        }


@register_method
@dataclass
class LearningFromPermutedExplanations(LearningFromExplanations):
    """LE-Permut: LE targets with the non-ground-truth entries shuffled per sample."""

    name = "le_permut"
    permute: bool = True
