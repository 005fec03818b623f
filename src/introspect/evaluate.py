"""Evaluation shared by the training loop and the analysis: top-1 accuracy of a model on a split."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .data import Split
from .spec import Performance


@torch.no_grad()
def autocast(x: Tensor, performance: Performance):
    """bf16 autocast when ``performance.amp`` asks for it (a no-op context otherwise)."""
    return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=performance.amp == "bf16")


def accuracy(model: nn.Module, split: Split, batch_size: int = 1000, performance: Performance | None = None) -> float:
    """Top-1 accuracy in % of ``model`` (in eval mode) on a split."""
    performance = performance or Performance()
    was_training = model.training
    model.eval()
    with autocast(split.x, performance):
        correct = sum((model(split.x[i:i + batch_size]).argmax(1) == split.y[i:i + batch_size]).sum()
                      for i in range(0, len(split), batch_size))
    model.train(was_training)
    return 100.0 * int(correct) / len(split)  # one read per split, not per batch
