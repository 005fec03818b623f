"""The training loop. Run specifications live in :mod:`introspect.runs.spec`, run files in
:mod:`introspect.runs.record`."""
from ..models.evaluate import accuracy
from ..runs.loading import load_model
from ..runs.spec import Budget, DatasetSpec, RunSpec
from .errors import DeviceError, InjectedFailure, Interrupted, NonFiniteLossError, RunBusyError, TrainingError
from .loop import train

__all__ = [
    "Budget", "DatasetSpec", "DeviceError", "InjectedFailure", "Interrupted", "NonFiniteLossError", "RunBusyError",
    "RunSpec", "TrainingError", "accuracy", "load_model", "train",
]
