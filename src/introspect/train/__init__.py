"""The training loop and run specifications."""
from .loop import (
    CHECKPOINT, EPOCHS, METRICS, MODEL, InjectedFailure, Interrupted, NonFiniteLossError,
    TrainingError, accuracy, load_model, train,
)
from .spec import Budget, DatasetSpec, RunSpec

__all__ = [
    "CHECKPOINT", "EPOCHS", "METRICS", "MODEL", "Budget", "DatasetSpec", "InjectedFailure", "Interrupted",
    "NonFiniteLossError", "RunSpec", "TrainingError", "accuracy", "load_model", "train",
]
