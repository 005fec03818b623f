"""Grad-CAM (and the input-gradient explainers) of every class for your own network.

``explain(model, x, "grad_cam")`` finds the explanation layer of the package's models by itself
(``introspect.models``); on your own network name it with ``layer=``: a submodule, or its name in
``model.named_modules()`` (for an ``nn.Sequential``, its index as a string). Without it the error says so
and suggests your last convolution.

Run:  python examples/grad_cam_own_model.py      (a second on one CPU core)
"""
from __future__ import annotations

import torch
from torch import nn

from introspect.explain import explain


def main() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),    # 0, 1, 2
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # 3, 4, 5: Grad-CAM at "5"
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    )
    x = torch.randn(5, 3, 12, 12)
    try:
        explain(model, x, "grad_cam")
    except ValueError as error:
        print(f"without layer=: {error}")
    maps = {
        "grad_cam": explain(model, x, "grad_cam", layer="5"),     # by name: (5, 4, 12, 12)
        "grad_cam of module": explain(model, x, "grad_cam", layer=model[5]),  # the same, by module
        "grad_input": explain(model, x, "grad_input"),            # needs no layer: (5, 4, 3, 12, 12)
    }
    for name, value in maps.items():
        print(f"{name}: {tuple(value.shape)} (batch, classes, ...)")
    return maps


if __name__ == "__main__":
    main()
