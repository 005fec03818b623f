"""Confidence penalty (Pereyra et al. 2017): CE minus beta times the entropy of the prediction."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F

from .base import Method, StepContext, register_method
from .hyperparameters import MAX_WEIGHT, hp


@register_method
@dataclass
class ConfidencePenalty(Method):
    name = "cp"
    beta: float = field(default=0.5, metadata=hp(ge=0, le=MAX_WEIGHT))

    def loss(self, ctx: StepContext):
        log_p = F.log_softmax(ctx.out.logits, dim=1)
        entropy = -(log_p.exp() * log_p).sum(dim=1).mean()
        return {"ce": F.nll_loss(log_p, ctx.y), "entropy_penalty": -self.beta * entropy}
