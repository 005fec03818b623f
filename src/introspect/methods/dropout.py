"""CE with dropout on the last layer of each block-layer (the paper's Dropout baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from .base import Method, StepContext, register_method


@register_method
@dataclass
class Dropout(Method):
    name = "dropout"
    rate: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"dropout rate must be in (0, 1), got {self.rate}")

    def model_options(self):
        return {"dropout": self.rate}

    def loss(self, ctx: StepContext):
        return {"ce": F.cross_entropy(ctx.out.logits, ctx.y)}
