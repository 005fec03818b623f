"""Flow-of-solution-procedure transfer plus KD (Yim et al. 2017): the student's FSP matrices between
stages 1->2 and 2->3 match the teacher's (the paper's "FSP_Hinton"). Trained jointly with KD rather
than in FSP's original two phases; the choice is named in config/README.md.

Weight: Yim et al. give every FSP pair the same weight, and RepDistiller (Tian et al. 2020,
``distiller_zoo/FSP.py`` with ``helper/pretrain.py``) minimises the unweighted sum over pairs of
``mean (G_s - G_t)^2``, which is ``fsp_loss`` with ``fsp_weight = 1``. An FSP matrix averages over
positions and the loss over its entries, so, unlike AT, its scale does not depend on the map size."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import StepContext, register_method
from .distill import fsp_loss
from .hyperparameters import MAX_WEIGHT, hp
from .kd import KnowledgeDistillation


@register_method
@dataclass
class FlowOfSolutionKD(KnowledgeDistillation):
    name = "fsp_kd"
    fsp_weight: float = field(default=1.0, metadata=hp(ge=0, le=MAX_WEIGHT))

    def loss(self, ctx: StepContext):
        terms = super().loss(ctx)
        terms["fsp"] = self.fsp_weight * fsp_loss(ctx.out.stages, self.teacher_output(ctx).stages)
        return terms
