"""Attention transfer plus KD (Zagoruyko & Komodakis 2017): the activation attention of every stage
of the student matches the teacher's (the paper's "AT_Hinton"), added to the KD loss.

The AT code's term is ``beta/2 * sum_stages mean_{batch, positions} (a_s - a_t)^2`` with beta = 1000,
which the AT paper derives as "10^3 divided by the number of elements in the attention map and batch
size" for CIFAR's 32x32 inputs. The maps are L2-normalised, so ``||a_s - a_t||^2`` lies in [0, 2]
whatever their size, and the mean over positions makes the same beta stronger on smaller maps: on
9x9 digits (stage maps 9/5/3 instead of 32/16/8) about 8-13x stronger, enough to swamp KD. With
``reference_size`` set, the term is multiplied by ``input_area / reference_size^2``, i.e. each stage's
squared distance is divided by the positions that stage would have on a ``reference_size`` square
input: identical to the AT code at 32x32 and as strong relative to KD on any other input size.
``reference_size = 0`` is the AT code's plain mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import StepContext, register_method
from .distill import attention_loss
from .hyperparameters import MAX_SIDE, MAX_WEIGHT, hp
from .kd import KnowledgeDistillation


@register_method
@dataclass
class AttentionTransferKD(KnowledgeDistillation):
    name = "at_kd"
    at_weight: float = field(default=1000.0, metadata=hp(ge=0, le=MAX_WEIGHT))
    # input side length beta = 1000 was set for (CIFAR's 32); 0: no rescaling (the AT code's plain mean)
    reference_size: int = field(default=32, metadata=hp(ge=0, le=MAX_SIDE))

    def loss(self, ctx: StepContext):
        terms = super().loss(ctx)
        scale = 1.0
        if self.reference_size:
            scale = ctx.x.shape[-2] * ctx.x.shape[-1] / self.reference_size**2
        attention = attention_loss(ctx.out.stages, self.teacher_output(ctx).stages)
        terms["attention"] = self.at_weight / 2 * scale * attention
        return terms
