"""CIFAR ResNets of depth 6n+2 (ResNet8/14/20/26) as in the TAKD code base the LE paper builds on."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .base import Forward, IntrospectModel, kaiming_init, register_model


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(IntrospectModel):
    """3x3 stem to 16 channels, three stages at 16/32/64 channels (strides 1, 2, 2), GAP, linear."""

    widths = (16, 32, 64)

    def __init__(self, blocks_per_stage: int, num_classes: int, input_shape, dropout: float = 0.0):
        super().__init__()
        in_channels = input_shape[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
        )
        stages, width_in = [], 16
        for i, width in enumerate(self.widths):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(width_in, width, stride)]
            blocks += [BasicBlock(width, width, 1) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            width_in = width
        self.stages = nn.ModuleList(stages)
        # The paper drops "neurons of the last layer of each block-layer": the stage outputs.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(self.widths[-1], num_classes)
        kaiming_init(self)

    def forward_features(self, x: Tensor) -> Forward:
        h = self.stem(x)
        stage_outputs = []
        for stage in self.stages:
            h = stage(h)
            stage_outputs.append(h)
            h = self.dropout(h)
        logits = self.fc(h.mean(dim=(2, 3)))
        return Forward(logits=logits, stages=stage_outputs, explain_features=stage_outputs[-1])

    def cam_from_features(self, features: Tensor) -> Tensor | None:
        # Dropout between the last stage and the pooling makes the gradient sample-specific.
        if self.training and isinstance(self.dropout, nn.Dropout):
            return None
        height, width = features.shape[-2:]
        weighted = F.conv2d(features, self.fc.weight[:, :, None, None])  # W_k · A at every position
        return F.relu(weighted) / (height * width)


def _resnet(depth: int):
    blocks = (depth - 2) // 6

    def factory(num_classes: int, input_shape, dropout: float = 0.0) -> CifarResNet:
        return CifarResNet(blocks, num_classes, input_shape, dropout)

    return factory


for _depth in (8, 14, 20, 26):
    register_model(f"resnet{_depth}")(_resnet(_depth))
