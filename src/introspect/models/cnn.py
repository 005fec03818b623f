"""Plain CNNs of Table 1 (CNN-6/8/10): 3x3 conv+BN+ReLU blocks with 2x2 max-pooling, FC head."""
from __future__ import annotations

from torch import Tensor, nn

from .base import Forward, IntrospectModel, flat_size, kaiming_init, register_model

# Each inner list is one block-layer of convolutions followed by a 2x2 max-pooling.
ARCHITECTURES: dict[str, tuple[list[list[int]], list[int]]] = {
    "cnn6": ([[16, 16], [32, 32], [64, 64]], []),
    "cnn8": ([[16, 16], [32, 32], [64, 64], [128, 128]], [64]),
    "cnn10": ([[32, 32], [64, 64], [128, 128], [256, 256, 256, 256]], [128]),
}


def _conv_block(in_channels: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        in_channels = width
    return nn.Sequential(*layers)


class PlainCNN(IntrospectModel):
    def __init__(self, blocks: list[list[int]], hidden: list[int], num_classes: int, input_shape, dropout=0.0):
        super().__init__()
        in_channels = input_shape[0]
        convs, channels = [], in_channels
        for widths in blocks:
            convs.append(_conv_block(channels, widths))
            channels = widths[-1]
        self.blocks = nn.ModuleList(convs)
        # ceil_mode: 32px CIFAR halves exactly; small inputs (12px digits) keep a 1x1 map after 4 poolings
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        features = flat_size(lambda x: self._trunk(x)[0], input_shape)
        head: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            head += [nn.Linear(features, width), nn.ReLU()]
            features = width
        head.append(nn.Linear(features, num_classes))
        self.head = nn.Sequential(*head)
        kaiming_init(self)

    def _trunk(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        stages = []
        for block in self.blocks:
            x = block(x)
            stages.append(x)  # pre-pooling: the last one is the Grad-CAM layer at usable resolution
            x = self.pool(self.dropout(x))
        return x, stages

    def forward_features(self, x: Tensor) -> Forward:
        h, stages = self._trunk(x)
        return Forward(logits=self.head(h), stages=stages, explain_features=stages[-1])


def _factory(name: str):
    blocks, hidden = ARCHITECTURES[name]

    def factory(num_classes: int, input_shape, dropout: float = 0.0) -> PlainCNN:
        return PlainCNN(blocks, hidden, num_classes, input_shape, dropout)

    return factory


for _name in ARCHITECTURES:
    register_model(_name)(_factory(_name))
