"""What every model in the benchmark exposes besides its logits."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class Forward:
    """One forward pass: logits plus the intermediate activations methods may need.

    ``stages`` are the outputs of the model's block-layers (ResNet stages, CNN conv blocks before
    pooling, MLP hidden layers), in order. ``explain_features`` is the activation at the default
    explanation layer (the last conv stage), or ``None`` for models without one (MLP).
    """

    logits: Tensor
    stages: list[Tensor] = field(default_factory=list)
    explain_features: Tensor | None = None


class IntrospectModel(nn.Module):
    """Base class: ``model(x)`` gives logits, ``model.forward_features(x)`` gives a :class:`Forward`."""

    num_classes: int
    input_shape: tuple[int, int, int]

    def forward_features(self, x: Tensor) -> Forward:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x).logits

    def cam_from_features(self, features: Tensor) -> Tensor | None:
        """Grad-CAM maps of all classes in closed form, or ``None`` when no closed form applies.

        Models whose explanation layer is followed only by global average pooling and a linear
        head override this: there d logit_k / dA = W_k / (H*W) everywhere, so Grad-CAM is
        ``ReLU(W_k · A) / (H*W)`` and needs no backward pass.
        """
        return None


def kaiming_init(module: nn.Module) -> None:
    """He initialisation for convolutions, unit BatchNorm, as in the TAKD/ResNet code bases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


ModelFactory = Callable[..., IntrospectModel]
_MODELS: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a model factory ``f(num_classes, input_shape, dropout) -> IntrospectModel``."""

    def decorate(factory: ModelFactory) -> ModelFactory:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = factory
        return factory

    return decorate


def available_models() -> list[str]:
    return sorted(_MODELS)


def build_model(
    name: str,
    num_classes: int,
    input_shape: tuple[int, int, int],
    dropout: float = 0.0,
) -> IntrospectModel:
    """Build a registered model for inputs of shape ``(channels, height, width)``."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(available_models())}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    model = _MODELS[name](num_classes=num_classes, input_shape=tuple(input_shape), dropout=dropout)
    model.registry_name = name  # lets a method build a twin (DML's peer)
    model.num_classes = num_classes
    model.input_shape = tuple(input_shape)
    return model


def flat_size(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Number of features ``module`` produces for one input, found with a dummy forward pass (of two
    inputs: BatchNorm in training mode cannot normalise one sample on a 1x1 map)."""
    with torch.no_grad():
        return int(module(torch.zeros(2, *input_shape)).numel()) // 2
