"""Plain supervised training with one-hot cross-entropy (the paper's CE baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from .base import Method, StepContext, register_method


@register_method
@dataclass
class CrossEntropy(Method):
    name = "ce"

    def loss(self, ctx: StepContext):
        return {"ce": F.cross_entropy(ctx.out.logits, ctx.y)}
