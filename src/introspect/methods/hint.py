"""FitNets hints (Romero et al. 2015): a regressor on the student's hint stage predicts the teacher's
representation at the same stage (the paper: ResNet26's 2nd stage), loss ``hint_weight * MSE``.

The LE paper combines only AT and FSP with Hinton's KD (Sec. 5.3), so its "Hint" column is the hint
loss with the one-hot CE task loss: ``ce_weight * CE + hint_weight * MSE`` (RepDistiller's FitNet
setting: CE weight 1, KD weight 0, hint weight 100). ``kd_weight > 0`` adds ``T^2 KL``.

``hint_epochs = 0`` trains everything jointly. ``hint_epochs = k > 0`` is FitNets' two-stage
procedure: for the first k epochs only the hint loss (it reaches only the student's layers up to
the hint stage and the regressor; the optimiser skips parameters without a gradient), then the task
loss alone (CE, plus KD if ``kd_weight > 0``, which is FitNets' own second stage) on the whole network.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import TEACHER_OUTPUTS, Method, StepContext, register_method
from .distill import softened_kl
from .hyperparameters import MAX_EPOCHS, MAX_STAGE, MAX_TEMPERATURE, MAX_WEIGHT, hp


@register_method
@dataclass
class Hint(Method):
    name = "hint"
    needs = frozenset({TEACHER_OUTPUTS})
    # 1-based stage index, in student and teacher alike
    hint_stage: int = field(default=2, metadata=hp(ge=1, le=MAX_STAGE))
    hint_weight: float = field(default=100.0, metadata=hp(ge=0, le=MAX_WEIGHT))
    ce_weight: float = field(default=1.0, metadata=hp(ge=0, le=MAX_WEIGHT))
    kd_weight: float = field(default=0.0, metadata=hp(ge=0, le=MAX_WEIGHT))
    temperature: float = field(default=4.0, metadata=hp(gt=0, le=MAX_TEMPERATURE))
    # FitNets stage 1: hint loss alone for these epochs
    hint_epochs: int = field(default=0, metadata=hp(ge=0, le=MAX_EPOCHS))
    regressor: nn.Module | None = field(default=None, init=False, repr=False, compare=False)

    def stage(self, epoch: int) -> int:
        return 1 if epoch < self.hint_epochs else 2

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

    def loss(self, ctx: StepContext) -> dict[str, Tensor]:
        teacher = self.teacher_output(ctx)
        if self.hint_epochs and ctx.epoch < self.hint_epochs:
            return {"hint": self.hint_loss(ctx)}  # FitNets stage 1
        terms = {"ce": self.ce_weight * F.cross_entropy(ctx.out.logits, ctx.y)}
        if self.kd_weight:
            terms["kd"] = self.kd_weight * softened_kl(ctx.out.logits, teacher.logits, self.temperature)
        if not self.hint_epochs:
            terms["hint"] = self.hint_loss(ctx)
        return terms

    def hint_loss(self, ctx: StepContext) -> Tensor:
        if self.regressor is None:
            raise RuntimeError("hint: setup() must run before training (the loop does this)")
        target = self.teacher_output(ctx).stages[self.hint_stage - 1].detach()
        predicted = self.regressor(ctx.out.stages[self.hint_stage - 1])
        if predicted.shape[-2:] != target.shape[-2:]:
            predicted = F.adaptive_avg_pool2d(predicted, target.shape[-2:])
        return self.hint_weight * F.mse_loss(predicted, target)
