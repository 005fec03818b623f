"""Training methods, one module each, found by name: ``build_method("le", explainer="grad")``.

The method modules import torch, so they are imported (and registered) on the first use of this
package's API, not by importing the package: planning imports :mod:`.hyperparameters` alone.
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "DEAD_EXPLANATIONS", "DEAD_MAPS_ALL_CLASSES", "DIAGNOSTICS", "EAGER_ONLY", "TEACHER_MODULE", "TEACHER_OUTPUTS",
    "Method", "StepContext",
    "available_methods", "build_method", "hyperparameter_names", "method_class",
    "register_method",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import at, base, ce, cp, cwtm, dkpp, dml, dropout, e2kd, fsp, hint, kd, le, ls, xdistill  # noqa: F401  (registers them)

    return getattr(base, name)
