"""SGD with momentum and weight decay, numerically the update of ``torch.optim.SGD``
(dampening 0, no Nesterov): ``b = m*b + (g + wd*p)`` (``b = g + wd*p`` at the first step), ``p -= lr*b``.

Why not torch.optim.SGD: its first construction and step import torch._dynamo, which costs seconds
per process, and every training run is its own process. A test checks both agree.

``foreach`` updates all parameters of one device and dtype with a few ``torch._foreach_*`` calls
instead of three Python-level tensor operations per parameter. As in torch.optim.SGD, the default
(None) uses it off the CPU, where the ops have multi-tensor kernels. On the CPU they run the same
per-tensor kernels (the same bits) and are no faster for the larger networks: one pass over all tensors
per operation loses the cache (the times: docs/measurements.md).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


class SGD:
    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 foreach: bool | None = None):
        self.params = [p for p in params if p.requires_grad]
        self.param_groups = [{"lr": lr, "momentum": momentum, "weight_decay": weight_decay}]
        self.momentum_buffers: list[Tensor | None] = [None] * len(self.params)
        self.foreach = foreach

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for (device, _dtype), indices in self._groups_with_grads().items():
            foreach = self.foreach if self.foreach is not None else device.type != "cpu"
            (self._step_foreach if foreach else self._step_per_tensor)(indices)

    def _step_per_tensor(self, indices: list[int]) -> None:
        group = self.param_groups[0]
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        for i in indices:
            p = self.params[i]
            d_p = p.grad.add(p, alpha=weight_decay) if weight_decay else p.grad
            if momentum:
                buffer = self.momentum_buffers[i]
                if buffer is None:
                    buffer = self.momentum_buffers[i] = d_p.clone()
                else:
                    buffer.mul_(momentum).add_(d_p)
                d_p = buffer
            p.add_(d_p, alpha=-lr)

    def _groups_with_grads(self) -> dict[tuple[torch.device, torch.dtype], list[int]]:
        """Indices of the parameters that have a gradient, by (device, dtype): foreach calls take one group."""
        groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(self.params):
            if p.grad is not None:
                groups.setdefault((p.device, p.dtype), []).append(i)
        return groups

    def _step_foreach(self, indices: list[int]) -> None:
        group = self.param_groups[0]
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        params = [self.params[i] for i in indices]
        d_p = [p.grad for p in params]
        if weight_decay:
            d_p = torch._foreach_add(d_p, params, alpha=weight_decay)
        if momentum:
            buffers = [self.momentum_buffers[i] for i in indices]
            if all(b is not None for b in buffers):
                torch._foreach_mul_(buffers, momentum)
                torch._foreach_add_(buffers, d_p)
            else:  # the first step (or parameters that had no gradient until now)
                for k, i in enumerate(indices):
                    if buffers[k] is None:
                        buffers[k] = self.momentum_buffers[i] = d_p[k].clone()
                    else:
                        buffers[k].mul_(momentum).add_(d_p[k])
            d_p = buffers
        torch._foreach_add_(params, d_p, alpha=-lr)

    def state_dict(self) -> dict[str, Any]:
        return {"param_groups": [dict(g) for g in self.param_groups],
                "momentum_buffers": [None if b is None else b.clone() for b in self.momentum_buffers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buffers = state["momentum_buffers"]
        if len(buffers) != len(self.params):
            raise ValueError(f"optimizer state has {len(buffers)} buffers for {len(self.params)} parameters")
        self.param_groups = [dict(g) for g in state["param_groups"]]
        self.momentum_buffers = [None if b is None else b.to(p.device) for b, p in zip(buffers, self.params)]
