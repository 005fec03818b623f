"""CE with dropout on the last layer of each block-layer (the paper's Dropout baseline)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F

from .base import Method, StepContext, register_method
from .hyperparameters import hp


@register_method
@dataclass
class Dropout(Method):
    name = "dropout"
    rate: float = field(default=0.1, metadata=hp(gt=0, lt=1))

    def model_options(self):
        return {"dropout": self.rate}

    def loss(self, ctx: StepContext):
        return {"ce": F.cross_entropy(ctx.out.logits, ctx.y)}
