"""Dark knowledge with permuted predictions (DKPP, Table 1): KD whose teacher distribution has its
non-argmax entries shuffled per sample, which keeps the responses of the wrong classes but removes
their class-similarity information."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from .base import StepContext, register_method
from .kd import KnowledgeDistillation
from .targets import permute_off_argmax


@register_method
@dataclass
class PermutedDarkKnowledge(KnowledgeDistillation):
    name = "dkpp"

    def loss(self, ctx: StepContext):
        t = self.temperature
        q = permute_off_argmax(F.softmax(self.teacher_output(ctx).logits.detach() / t, dim=1), ctx.generator)
        log_p = F.log_softmax(ctx.out.logits / t, dim=1)
        kl = F.kl_div(log_p, q, reduction="batchmean") * t**2
        return {"kd_permuted": kl, "ce": self.ce_weight * F.cross_entropy(ctx.out.logits, ctx.y)}
