"""The MLP of Table 3/6: input-1024-1024-classes with ReLU (784 inputs on MNIST)."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from .base import Forward, IntrospectModel, register_model


class MLP(IntrospectModel):
    def __init__(self, hidden: list[int], num_classes: int, input_shape, dropout: float = 0.0):
        super().__init__()
        sizes = [math.prod(input_shape), *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out = nn.Linear(sizes[-1], num_classes)

    def forward_features(self, x: Tensor) -> Forward:
        h = x.flatten(1)
        stages = []
        for layer in self.hidden:
            h = F.relu(layer(h))
            stages.append(h)
            h = self.dropout(h)
        return Forward(logits=self.out(h), stages=stages, explain_features=None)


@register_model("mlp1024")
def mlp1024(num_classes: int, input_shape, dropout: float = 0.0) -> MLP:
    return MLP([1024, 1024], num_classes, input_shape, dropout)
