"""Shared pieces of knowledge distillation: softened KL (Hinton), attention maps (Zagoruyko &
Komodakis), flow-of-solution matrices (Yim et al.). Plain functions of tensors, used by the KD-family
methods and usable in any training loop."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def softened_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))``, averaged over the batch.

    The T^2 factor keeps the gradient's scale independent of T: d/ds = T * (p_T - q_T) / batch.
    """
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    log_q = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * temperature**2


def attention_map(features: Tensor) -> Tensor:
    """Activation attention: channel mean of squared activations, flattened, L2-normalised per sample."""
    return F.normalize(features.pow(2).mean(dim=1).flatten(1), dim=1)


def attention_loss(student_stages: list[Tensor], teacher_stages: list[Tensor]) -> Tensor:
    """Sum over stages of the mean squared difference of the attention maps."""
    _check_pairs(student_stages, teacher_stages, "attention transfer")
    return sum((attention_map(s) - attention_map(t.detach())).pow(2).mean()
               for s, t in zip(student_stages, teacher_stages))


def fsp_matrix(first: Tensor, second: Tensor) -> Tensor:
    """Flow of solution procedure between two feature maps: ``first · second^T / (h*w)``, shape
    (batch, c1, c2). A larger first map is average-pooled to the second's size."""
    if first.shape[-2:] != second.shape[-2:]:
        first = F.adaptive_avg_pool2d(first, second.shape[-2:])
    a, b = first.flatten(2), second.flatten(2)
    return a @ b.transpose(1, 2) / a.shape[-1]


def fsp_loss(student_stages: list[Tensor], teacher_stages: list[Tensor]) -> Tensor:
    """Mean squared difference of the FSP matrices of consecutive stages (1->2, 2->3, ...)."""
    _check_pairs(student_stages, teacher_stages, "FSP")
    total = 0.0
    for i in range(len(student_stages) - 1):
        g_s = fsp_matrix(student_stages[i], student_stages[i + 1])
        g_t = fsp_matrix(teacher_stages[i].detach(), teacher_stages[i + 1].detach())
        if g_s.shape != g_t.shape:
            raise ValueError(f"FSP matrices of stages {i + 1}->{i + 2} differ: student {tuple(g_s.shape[1:])}, "
                             f"teacher {tuple(g_t.shape[1:])}; FSP needs equal channel widths")
        total = total + (g_s - g_t).pow(2).mean()
    return total


def _check_pairs(student: list[Tensor], teacher: list[Tensor], name: str) -> None:
    if len(student) != len(teacher):
        raise ValueError(f"{name} needs as many student stages as teacher stages ({len(student)} vs {len(teacher)})")
    for i, (s, t) in enumerate(zip(student, teacher)):
        if s.shape[-2:] != t.shape[-2:]:
            raise ValueError(f"{name}: stage {i + 1} spatial sizes differ "
                             f"({tuple(s.shape[-2:])} vs {tuple(t.shape[-2:])})")
