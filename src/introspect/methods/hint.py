"""FitNets hints (Romero et al. 2015): a regressor on the student's hint stage predicts the teacher's
representation at the same stage (the paper: ResNet26's 2nd stage); ``hint_weight * MSE`` is added to
the KD loss. Trained jointly with KD (as RepDistiller does) rather than in FitNets' two phases."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import hp
from .base import StepContext, register_method
from .kd import KnowledgeDistillation


@register_method
@dataclass
class Hint(KnowledgeDistillation):
    name = "hint"
    hint_stage: int = field(default=2, metadata=hp(ge=1))  # 1-based stage index, in student and teacher alike
    hint_weight: float = field(default=100.0, metadata=hp(ge=0))
    regressor: nn.Module | None = field(default=None, init=False, repr=False, compare=False)

    def setup(self, student: nn.Module, teacher: nn.Module | None, input_shape) -> nn.Module:
        if teacher is None:
            raise ValueError("hint needs a teacher")
        with torch.no_grad():
            probe = torch.zeros(1, *input_shape)
            s = student.forward_features(probe).stages[self.hint_stage - 1]
            t = teacher.forward_features(probe).stages[self.hint_stage - 1]
        self.regressor = nn.Sequential(
            nn.Conv2d(s.shape[1], t.shape[1], 3, padding=1, bias=False), nn.BatchNorm2d(t.shape[1]), nn.ReLU()
        )
        return self.regressor

    def loss(self, ctx: StepContext):
        if self.regressor is None:
            raise RuntimeError("hint: setup() must run before training (the loop does this)")
        terms = super().loss(ctx)
        student = ctx.out.stages[self.hint_stage - 1]
        target = self.teacher_output(ctx).stages[self.hint_stage - 1].detach()
        predicted = self.regressor(student)
        if predicted.shape[-2:] != target.shape[-2:]:
            predicted = F.adaptive_avg_pool2d(predicted, target.shape[-2:])
        terms["hint"] = self.hint_weight * F.mse_loss(predicted, target)
        return terms
