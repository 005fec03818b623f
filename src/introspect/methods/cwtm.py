"""The dark-knowledge ablations of Table 1 (after Furlanello et al. 2018): one-hot CE with per-sample
weights, normalised over the batch (so the loss is a weighted mean).

- ``cwtm``: weight = the teacher's maximum probability ("confidence weighted by teacher max");
- ``cwtm_permut``: those weights shuffled inside the batch (keeps their distribution, drops the pairing);
- ``cwtm_random``: weights drawn uniformly from [beta, 1), no teacher (beta = 0.5 in the paper).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import TEACHER_OUTPUTS, Method, StepContext, register_method
from .hyperparameters import hp


def weighted_cross_entropy(logits: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    """``sum_i w_i CE_i / sum_j w_j`` (the weights carry no gradient)."""
    weights = weights.detach()
    return (weights * F.cross_entropy(logits, labels, reduction="none")).sum() / weights.sum()


@register_method
@dataclass
class ConfidenceWeightedByTeacherMax(Method):
    name = "cwtm"
    needs = frozenset({TEACHER_OUTPUTS})

    def weights(self, ctx: StepContext) -> Tensor:
        return F.softmax(self.teacher_output(ctx).logits, dim=1).max(dim=1).values

    def loss(self, ctx: StepContext):
        return {"weighted_ce": weighted_cross_entropy(ctx.out.logits, ctx.y, self.weights(ctx))}


@register_method
@dataclass
class ConfidenceWeightedPermuted(ConfidenceWeightedByTeacherMax):
    name = "cwtm_permut"

    def weights(self, ctx: StepContext) -> Tensor:
        weights = super().weights(ctx)
        # non_blocking: a blocking host-to-device copy would wait for the queued GPU work at every step
        order = torch.randperm(len(weights), generator=ctx.generator).to(weights.device, non_blocking=True)
        return weights[order]


@register_method
@dataclass
class ConfidenceWeightedRandom(ConfidenceWeightedByTeacherMax):
    name = "cwtm_random"
    needs = frozenset()
    beta: float = field(default=0.5, metadata=hp(ge=0, lt=1))

    def weights(self, ctx: StepContext) -> Tensor:
        uniform = torch.rand(len(ctx.y), generator=ctx.generator).to(ctx.out.logits.device, non_blocking=True)
        return self.beta + (1.0 - self.beta) * uniform
