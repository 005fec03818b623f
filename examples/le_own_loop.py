"""LE (learning from online self-explanations) in your own training loop, on your own network.

The network is a plain ``nn.Sequential`` with convolutions; Grad-CAM explains the layer you name
(``layer="4"``: the output of the second conv block). Training follows the paper's Algorithm 1: a few
warm-up epochs of plain cross-entropy, then LE: every class's explanation of each image is compared with
the true class's, and the soft targets (Eq. 6) give similar classes more mass than dissimilar ones.

Run:  python examples/le_own_loop.py      (scikit-learn's 8x8 digits, about 10 s on one CPU core)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from introspect.explain import explain
from introspect.methods.targets import le_targets, soft_cross_entropy


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 handwritten digits as (N, 1, 8, 8) images in [0, 1]: 1,400 to train, the rest to test."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def my_network() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),           # 0, 1
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),          # 2, 3
        nn.MaxPool2d(2),                                     # 4: 32 maps of 4x4, the layer Grad-CAM explains
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def train(epochs: int = 4, warmup: int = 2, alpha: float = 0.9, ce_weight: float = 0.1) -> float:
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = digits()
    model = my_network()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(x_train)).split(64):
            x, y = x_train[batch], y_train[batch]
            logits = model(x)
            if epoch < warmup:                               # Stage 1: plain cross-entropy
                loss = F.cross_entropy(logits, y)
            else:                                            # Stage 2: LE
                maps = explain(model, x, "grad_cam", layer="4")   # (B, 10, 4, 4), detached
                q = le_targets(maps, y, alpha=alpha)              # Eq. 6
                loss = soft_cross_entropy(logits, q) + ce_weight * F.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch + 1} ({'CE' if epoch < warmup else 'LE'}): test accuracy {accuracy:.1%}")
    return accuracy


if __name__ == "__main__":
    train()
