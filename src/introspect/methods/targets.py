"""Soft targets: label smoothing as the LE paper defines it, and LE's explanation targets (Eq. 6)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def smoothed_targets(labels: Tensor, num_classes: int, alpha: float) -> Tensor:
    """``alpha`` on the true class, ``(1 - alpha)`` spread evenly over the other classes.

    This is the paper's definition; note that ``torch.nn.CrossEntropyLoss(label_smoothing=eps)``
    instead spreads ``eps`` over *all* classes, the true one included.
    """
    off = (1.0 - alpha) / (num_classes - 1)
    targets = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return targets.scatter_(1, labels[:, None], alpha)


def le_targets(
    explanations: Tensor,
    labels: Tensor,
    alpha: float = 0.9,
    permute: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """LE targets from per-class explanations ``(batch, classes, *spatial)`` (Eq. 6 of the paper).

    The ground-truth class y gets ``alpha``; every other class k gets
    ``(1 - alpha) * (cos(e_k, e_y) + 1) / sum_{m != y} (cos(e_m, e_y) + 1)``.
    ``permute=True`` shuffles the non-ground-truth entries of each row (LE-Permut), which keeps the
    responses but removes the class-similarity information. Targets carry no gradient.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    explanations = explanations.detach().flatten(2).float()
    batch, classes, _ = explanations.shape
    rows = torch.arange(batch, device=labels.device)
    truth = explanations[rows, labels]  # (batch, features)
    # Two zero maps (a dead Grad-CAM) have cosine 0 here, so the targets fall back to uniform.
    similarity = F.cosine_similarity(explanations, truth[:, None, :], dim=2, eps=1e-12) + 1.0
    is_truth = F.one_hot(labels, classes).bool()
    similarity = similarity.masked_fill(is_truth, 0.0)
    if permute:
        similarity = _permute_off_truth(similarity, labels, generator)
    others = (1.0 - alpha) * similarity / similarity.sum(dim=1, keepdim=True)
    return others.masked_fill(is_truth, alpha)


def permute_off_argmax(probabilities: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Per row, shuffle every entry except the largest (DKPP: the teacher's non-argmax outputs)."""
    return _permute_off_truth(probabilities, probabilities.argmax(dim=1), generator)


def _permute_off_truth(values: Tensor, truth: Tensor, generator: torch.Generator | None) -> Tensor:
    """Randomly permute, per row, the entries that are not in column ``truth[row]``.

    Gathers by computed column indices rather than a boolean mask: a mask's size is only known once
    the device has computed it, so ``values[mask]`` would make the host wait at every step."""
    batch, classes = values.shape
    others = torch.arange(classes - 1, device=values.device).expand(batch, -1)
    off_columns = others + (others >= truth[:, None]).long()  # skip the truth column of each row
    # A CPU generator (the same draws on any device); non_blocking, or the copy waits for the GPU queue.
    noise = torch.rand(batch, classes - 1, generator=generator).to(values.device, non_blocking=True)
    shuffled = values.gather(1, off_columns).gather(1, noise.argsort(dim=1))
    return values.scatter(1, off_columns, shuffled)


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over the batch of ``-sum_k q_k log p_k``: the paper's L(p, q) with soft targets q."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
