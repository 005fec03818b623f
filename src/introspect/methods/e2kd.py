"""e2KD, explanation-enhanced KD ("Good Teachers Explain", Parchami-Araghi et al. 2024):
``T^2 KL(q_T || p_T) + gamma * (1 - cos(GradCAM_s, GradCAM_t)) + ce_weight * CE``.

Both Grad-CAM maps are for the teacher's top-1 class, flattened per sample, and the cosine term is
averaged over the batch. The student's map keeps its graph (the loss trains through the explanation);
the teacher's is detached. When the maps differ in size the student's is resized (bilinearly, still
differentiable) to the teacher's. ``every`` > 1 adds the explanation term on every k-th batch only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..explain import grad_cam_of_class
from ..models.base import Forward
from .base import TEACHER_MODULE, StepContext, register_method
from .hyperparameters import MAX_STEPS, MAX_WEIGHT, hp
from .kd import KnowledgeDistillation


def explanation_cosine_loss(student_maps: Tensor, teacher_maps: Tensor) -> Tensor:
    """Mean over the batch of ``1 - cos`` between per-sample flattened maps ``(batch, H, W)``."""
    if student_maps.shape[-2:] != teacher_maps.shape[-2:]:
        student_maps = F.interpolate(student_maps[:, None], size=teacher_maps.shape[-2:], mode="bilinear",
                                     align_corners=False)[:, 0]
    cos = F.cosine_similarity(student_maps.flatten(1), teacher_maps.detach().flatten(1), dim=1, eps=1e-12)
    return (1.0 - cos).mean()


def teacher_grad_cam(teacher: nn.Module, teacher_out: Forward, x: Tensor) -> tuple[Tensor, Tensor]:
    """The teacher's top-1 classes and their Grad-CAM maps (detached). Uses the closed form on the
    training step's teacher pass where the teacher has one; otherwise a forward pass with gradients."""
    classes = teacher_out.logits.argmax(dim=1)
    if teacher_out.explain_features is not None and teacher.cam_from_features(teacher_out.explain_features) is not None:
        return classes, grad_cam_of_class(teacher, teacher_out, classes)
    with torch.enable_grad():
        out = teacher.forward_features(x.detach())
        return classes, grad_cam_of_class(teacher, out, classes, x=x)


@register_method
@dataclass
class ExplanationEnhancedKD(KnowledgeDistillation):
    name = "e2kd"
    gamma: float = field(default=1.0, metadata=hp(ge=0, le=MAX_WEIGHT))
    temperature: float = 1.0
    ce_weight: float = 0.0
    every: int = field(default=1, metadata=hp(ge=1, le=MAX_STEPS))
    # the teacher network: teachers without a closed-form Grad-CAM need a second, gradient pass
    needs = KnowledgeDistillation.needs | {TEACHER_MODULE}

    def loss(self, ctx: StepContext):
        terms = super().loss(ctx)
        if ctx.step % self.every == 0:
            classes, teacher_maps = teacher_grad_cam(ctx.teacher_network(), self.teacher_output(ctx), ctx.x)
            student_maps = grad_cam_of_class(ctx.model, ctx.out, classes, x=ctx.x, create_graph=True)
            ctx.count_dead_explanations(student_maps)
            terms["explanation"] = self.gamma * explanation_cosine_loss(student_maps, teacher_maps)
        return terms
