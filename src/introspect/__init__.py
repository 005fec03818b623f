"""introspect: learning from online self-explanations (LE) and explanation-aware distillation.

The public API is importable without Snakemake::

    from introspect import explain, le_targets, build_model, build_method
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Attributes are imported lazily so that `introspect.plan.build` (used while Snakemake plans the DAG)
# does not pay for importing torch.
_EXPORTS = {
    "explain": "introspect.explain",
    "le_targets": "introspect.methods.targets",
    "smoothed_targets": "introspect.methods.targets",
    "soft_cross_entropy": "introspect.methods.targets",
    "build_model": "introspect.models",
    "available_models": "introspect.models",
    "build_method": "introspect.methods",
    "available_methods": "introspect.methods",
    "load_dataset": "introspect.data",
    "train": "introspect.train",
    "RunSpec": "introspect.train",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'introspect' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
