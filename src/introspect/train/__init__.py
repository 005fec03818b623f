"""The training loop. Run specifications live in :mod:`introspect.run_spec`, run files in :mod:`introspect.runs`."""
from ..evaluate import accuracy
from ..run_loading import load_model
from ..run_spec import Budget, DatasetSpec, RunSpec
from .errors import DeviceError, InjectedFailure, Interrupted, NonFiniteLossError, RunBusyError, TrainingError
from .loop import train

__all__ = [
    "Budget", "DatasetSpec", "DeviceError", "InjectedFailure", "Interrupted", "NonFiniteLossError", "RunBusyError",
    "RunSpec", "TrainingError", "accuracy", "load_model", "train",
]
