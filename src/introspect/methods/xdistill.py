"""XDistillation (Alharbi et al. 2021), as far as its abstract specifies it: KD plus learning to
reproduce the teacher's explanations through a convolutional decoder.

Our version (the choices are named in config/README.md): a small decoder on the student's last-stage
features (conv-BN-ReLU, bilinear upsampling to the input size, 1x1 conv) predicts the teacher's
Grad-CAM map for the teacher's top-1 class, upsampled to the input size. Loss:
``T^2 KL + ce_weight * CE + mu * MSE(normalise(decoded), normalise(teacher map))``, each map scaled
to [0, 1] per sample so the term is independent of the maps' raw scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import TEACHER_MODULE, StepContext, register_method
from .e2kd import teacher_grad_cam
from .hyperparameters import MAX_SIDE, MAX_WEIGHT, hp
from .kd import KnowledgeDistillation


class ExplanationDecoder(nn.Module):
    """Student features ``(batch, C, h, w)`` -> one map per sample at the input size ``(batch, H, W)``."""

    def __init__(self, in_channels: int, size: tuple[int, int], hidden: int = 32):
        super().__init__()
        self.size = tuple(size)
        self.body = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(hidden), nn.ReLU())
        self.head = nn.Conv2d(hidden, 1, 1)

    def forward(self, features: Tensor) -> Tensor:
        h = F.interpolate(self.body(features), size=self.size, mode="bilinear", align_corners=False)
        return self.head(h)[:, 0]


def normalise_maps(maps: Tensor) -> Tensor:
    """Scale each map of ``(batch, H, W)`` to [0, 1] (a constant map becomes all zeros)."""
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    high = flat.max(dim=1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-12)).view_as(maps)


@register_method
@dataclass
class XDistillation(KnowledgeDistillation):
    name = "xdistill"
    mu: float = field(default=1.0, metadata=hp(ge=0, le=MAX_WEIGHT))
    decoder_width: int = field(default=32, metadata=hp(ge=1, le=MAX_SIDE))
    decoder: ExplanationDecoder | None = field(default=None, init=False, repr=False, compare=False)
    needs = KnowledgeDistillation.needs | {TEACHER_MODULE}  # the teacher network, for its Grad-CAM

    def setup(self, student: nn.Module, teacher: nn.Module | None, input_shape) -> nn.Module:
        with torch.no_grad():
            features = student.forward_features(torch.zeros(2, *input_shape)).explain_features
        if features is None:
            raise ValueError(f"xdistill: {type(student).__name__} has no convolutional features to decode")
        self.decoder = ExplanationDecoder(features.shape[1], tuple(input_shape[1:]), self.decoder_width)
        return self.decoder

    def loss(self, ctx: StepContext):
        if self.decoder is None:
            raise RuntimeError("xdistill: setup() must run before training (the loop does this)")
        terms = super().loss(ctx)
        _, teacher_maps = teacher_grad_cam(ctx.teacher_network(), self.teacher_output(ctx), ctx.x)
        ctx.count_dead_explanations(teacher_maps)  # the targets it learns to decode
        target = F.interpolate(teacher_maps[:, None], size=self.decoder.size, mode="bilinear",
                               align_corners=False)[:, 0]
        decoded = self.decoder(ctx.out.explain_features)
        terms["explanation"] = self.mu * F.mse_loss(normalise_maps(decoded), normalise_maps(target))
        return terms
