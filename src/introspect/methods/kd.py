"""Knowledge distillation (Hinton et al. 2015): ``T^2 KL(q_T || p_T) + ce_weight * CE(p, y)``.

The paper's setting: T = 4 and weight 0.1 for the one-hot CE term (Sec. 5.3).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F

from .base import TEACHER_OUTPUTS, Method, StepContext, register_method
from .distill import softened_kl
from .hyperparameters import MAX_TEMPERATURE, MAX_WEIGHT, hp


@register_method
@dataclass
class KnowledgeDistillation(Method):
    name = "kd"
    needs = frozenset({TEACHER_OUTPUTS})
    temperature: float = field(default=4.0, metadata=hp(gt=0, le=MAX_TEMPERATURE))
    ce_weight: float = field(default=0.1, metadata=hp(ge=0, le=MAX_WEIGHT))

    def loss(self, ctx: StepContext):
        teacher = self.teacher_output(ctx)
        return {
            "kd": softened_kl(ctx.out.logits, teacher.logits, self.temperature),
            "ce": self.ce_weight * F.cross_entropy(ctx.out.logits, ctx.y),
        }
