"""Deep mutual learning (Zhang et al. 2018): two networks of the student's architecture trained
together in one job, each with ``CE(p, y) + kl_weight * KL(p_other || p)``; the paper's setting is
kl_weight = 0.1 (Sec. 5.2). The run reports the student; the peer is trained and checkpointed with it
as the method's own module."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import nn

from ..models import build_model
from .base import Method, StepContext, register_method
from .distill import softened_kl
from .hyperparameters import MAX_WEIGHT, hp


@register_method
@dataclass
class DeepMutualLearning(Method):
    name = "dml"
    kl_weight: float = field(default=0.1, metadata=hp(ge=0, le=MAX_WEIGHT))
    peer: nn.Module | None = field(default=None, init=False, repr=False, compare=False)

    def setup(self, student: nn.Module, teacher: nn.Module | None, input_shape) -> nn.Module:
        # Same architecture, its own initialisation (drawn after the student's, from the run's seed).
        self.peer = build_model(_model_name(student), student.num_classes, input_shape)
        return self.peer

    def loss(self, ctx: StepContext):
        if self.peer is None:
            raise RuntimeError("dml: setup() must run before training (the loop does this)")
        peer_logits = self.peer(ctx.x.detach())
        # each network learns from the other's current prediction, which softened_kl detaches
        return {
            "ce": F.cross_entropy(ctx.out.logits, ctx.y),
            "kl_to_peer": self.kl_weight * softened_kl(ctx.out.logits, peer_logits, temperature=1.0),
            "peer_ce": F.cross_entropy(peer_logits, ctx.y),
            "peer_kl": self.kl_weight * softened_kl(peer_logits, ctx.out.logits, temperature=1.0),
        }


def _model_name(model: nn.Module) -> str:
    name = getattr(model, "registry_name", None)
    if name is None:
        raise ValueError("dml needs a model built by introspect.models.build_model")
    return name
