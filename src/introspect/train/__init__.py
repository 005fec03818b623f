"""The training loop. Run specifications live in :mod:`introspect.spec`, run files in :mod:`introspect.runs`."""
from ..evaluate import accuracy
from ..runs import load_model
from ..spec import Budget, DatasetSpec, RunSpec
from .loop import InjectedFailure, Interrupted, NonFiniteLossError, TrainingError, train

__all__ = [
    "Budget", "DatasetSpec", "InjectedFailure", "Interrupted", "NonFiniteLossError", "RunSpec", "TrainingError",
    "accuracy", "load_model", "train",
]
