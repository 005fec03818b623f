"""Attention transfer plus KD (Zagoruyko & Komodakis 2017): the activation attention of every stage
of the student matches the teacher's; ``beta/2 * sum_stages ||a_s - a_t||^2`` with beta = 1000 as in
the original code, added to the KD loss (the paper's "AT_Hinton")."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..distill import attention_loss
from ..validation import hp
from .base import StepContext, register_method
from .kd import KnowledgeDistillation


@register_method
@dataclass
class AttentionTransferKD(KnowledgeDistillation):
    name = "at_kd"
    at_weight: float = field(default=1000.0, metadata=hp(ge=0))

    def loss(self, ctx: StepContext):
        terms = super().loss(ctx)
        terms["attention"] = self.at_weight / 2 * attention_loss(ctx.out.stages, self.teacher_output(ctx).stages)
        return terms
