"""Label smoothing as the paper defines it: alpha on the true class, 1 - alpha spread over the rest."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import Method, StepContext, register_method
from .hyperparameters import hp
from .targets import smoothed_targets, soft_cross_entropy


@register_method
@dataclass
class LabelSmoothing(Method):
    name = "ls"
    alpha: float = field(default=0.9, metadata=hp(gt=0, le=1))

    def loss(self, ctx: StepContext):
        targets = smoothed_targets(ctx.y, ctx.num_classes, self.alpha)
        return {"ce_smoothed": soft_cross_entropy(ctx.out.logits, targets)}
