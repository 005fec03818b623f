"""Training methods, one module each, found by name: ``build_method("le", explainer="grad")``."""
from . import at, ce, cp, cwtm, dkpp, dml, dropout, e2kd, fsp, hint, kd, le, ls, xdistill  # noqa: F401  (registers the methods)
from .base import (
    DEAD_EXPLANATIONS,
    EAGER_ONLY,
    TEACHER_MODULE,
    TEACHER_OUTPUTS,
    Method,
    StepContext,
    available_methods,
    build_method,
    hyperparameter_names,
    method_class,
    register_method,
)

__all__ = [
    "DEAD_EXPLANATIONS", "EAGER_ONLY", "TEACHER_MODULE", "TEACHER_OUTPUTS", "Method", "StepContext",
    "available_methods", "build_method", "hyperparameter_names", "method_class",
    "register_method",
]
