"""Evaluation shared by the training loop and the analysis: top-1 accuracy of a model on a split."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data import Split
from ..runs.spec import Performance


def autocast(x: Tensor, performance: Performance):
    """bf16 autocast when ``performance.amp`` asks for it (a no-op context otherwise). Training uses it
    too, so it leaves autograd alone; evaluation turns autograd off itself."""
    return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=performance.amp == "bf16")


def accuracy(model: nn.Module, split: Split, batch_size: int = 1000, performance: Performance | None = None) -> float:
    """Top-1 accuracy in % of ``model`` (in eval mode) on a split, with autograd off (no graph is kept)."""
    performance = performance or Performance()
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(split.x, performance):
        correct = sum((model(split.x[i:i + batch_size]).argmax(1) == split.y[i:i + batch_size]).sum()
                      for i in range(0, len(split), batch_size))
    model.train(was_training)
    return 100.0 * int(correct) / len(split)  # one read per split, not per batch
