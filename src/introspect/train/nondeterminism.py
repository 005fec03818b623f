"""Which operations of a training step have no deterministic CUDA kernel, found by tracing the step rather than
written by hand.

torch lists the operations that warn (``warn_only=True``, as :func:`introspect.train.device.configure` sets it)
or raise under ``torch.use_deterministic_algorithms`` in that function's own docstring; :func:`cuda_alerts`
reads the list from the installed torch. :func:`traced_ops` records the ATen operations one call makes
(a ``TorchDispatchMode``, on any device) and :func:`nondeterministic_ops` intersects the two. Traced on the
CPU, this names what a step would call on CUDA, up to kernels that exist on one device only (a CUDA-only
decomposition would be missed); on a GPU, ``bench/gpu_check.py`` also collects the warnings torch gives.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_ENTRY = re.compile(r"^\s*\* :(?:class|func):`(?P<name>[\w.]+)`(?P<condition>.*)$")
_MODE = re.compile(r"^\s*- ``(?P<mode>\w+)``")
# torch's documentation names modules and Python functions; the ATen operations behind them where their names
# differ (interpolate's modes are read from the documentation's own sub-list)
_ATEN_NAMES = {"NLLLoss": "nll_loss2d", "grid_sample": "grid_sampler", "CTCLoss": "ctc_loss"}


@dataclass(frozen=True)
class Alert:
    """One operation torch names: the ATen name prefix it matches, and whether only its backward alerts."""

    documented: str  # as torch's documentation names it, e.g. torch.nn.AdaptiveAvgPool2d
    aten: str  # e.g. adaptive_avg_pool2d
    backward_only: bool

    def matches(self, op: str) -> bool:
        name = op.lstrip("_")
        return name.startswith(self.aten) and (not self.backward_only or "backward" in name)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@cache
def cuda_alerts() -> tuple[Alert, ...]:
    """The operations torch says raise (or warn, with ``warn_only``) under deterministic mode on CUDA, read
    from ``torch.use_deterministic_algorithms.__doc__``'s "will throw a RuntimeError" list."""
    doc = torch.use_deterministic_algorithms.__doc__ or ""
    # the second list: "The following normally-nondeterministic operations will throw a RuntimeError ..."
    section = doc.split("normally-nondeterministic operations will throw a", 1)[-1].splitlines()[2:]
    alerts: list[Alert] = []
    last: tuple[str, bool] | None = None
    for line in section:
        if line.strip() and len(line) - len(line.lstrip()) <= 4:
            break  # the next paragraph: the list is over
        if entry := _ENTRY.match(line):
            full = entry["name"]
            short = full.rsplit(".", 1)[-1].rstrip("_")
            backward = "differentiate" in entry["condition"]
            last = (full, backward)
            if short == "interpolate" or "quantized" in entry["condition"]:
                continue  # interpolate's modes follow, one per line; no step here uses quantized tensors
            alerts.append(Alert(full, _ATEN_NAMES.get(short, _snake(short)), backward))
        elif (mode := _MODE.match(line)) and last is not None and last[0].endswith("interpolate"):
            alerts.append(Alert(f"{last[0]} ({mode['mode']})", f"upsample_{mode['mode']}", last[1]))
    return tuple(alerts)


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def traced_ops(call: Callable[[], Any]) -> set[str]:
    """The ATen operations (e.g. ``_adaptive_avg_pool2d_backward``) that ``call()`` dispatches."""
    with _Recorder() as recorder:
        call()
    return recorder.ops


def nondeterministic_ops(ops: set[str]) -> dict[str, str]:
    """Of ``ops``, those without a deterministic CUDA kernel -> the name torch's documentation gives them."""
    return {op: alert.documented for op in sorted(ops) for alert in cuda_alerts() if alert.matches(op)}
