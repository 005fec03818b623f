"""Why a run stopped. Each message names the run and what to do; the CLI maps each to an exit code."""
from __future__ import annotations


class TrainingError(RuntimeError):
    """A run cannot go on; the message names the run and what went wrong."""


class NonFiniteLossError(TrainingError):
    pass


class Interrupted(TrainingError):
    """SIGTERM/SIGINT arrived (preemption, time limit); the last epoch's checkpoint is on disk."""


class InjectedFailure(TrainingError):
    pass


class RunBusyError(TrainingError):
    """Another live process holds the run's writer lock (see :mod:`.lock`)."""


class LockingUnsupported(TrainingError):
    """The file system of the run directory has no file locks (flock): one line naming the fix."""


class DeviceError(TrainingError):
    """The device or its driver failed (CUDA, cuDNN); the message names the device and versions."""
