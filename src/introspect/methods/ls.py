"""Label smoothing as the paper defines it: alpha on the true class, 1 - alpha spread over the rest."""
from __future__ import annotations

from dataclasses import dataclass

from ..targets import smoothed_targets, soft_cross_entropy
from .base import Method, StepContext, register_method


@register_method
@dataclass
class LabelSmoothing(Method):
    name = "ls"
    alpha: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"label-smoothing alpha must be in (0, 1], got {self.alpha}")

    def loss(self, ctx: StepContext):
        targets = smoothed_targets(ctx.y, ctx.num_classes, self.alpha)
        return {"ce_smoothed": soft_cross_entropy(ctx.out.logits, targets)}
