"""Run ONE training step of a run spec, built exactly as training builds it (the pre-flight check and the
benchmarks use it to find out, in seconds, whether a kind of run works on a device and what it costs)."""
from __future__ import annotations

import time
from typing import Any

import torch

from ..methods import build_method
from ..models import build_model
from ..runs.loading import load_model, load_run_dataset
from ..runs.spec import RunSpec
from . import device as devices
from .errors import TrainingError
from .loop import initial_state, prepare_epoch
from .step import batches, train_step


def run_one_step(spec: RunSpec, device: str = "cpu", teacher_model: str | None = None,
                 epoch: int | None = None) -> dict[str, Any]:
    """Build the run ``spec`` describes as :func:`introspect.train.train` does (device set-up, data,
    model, method, teacher, performance options) on ``device`` and run one step of ``epoch`` (default:
    the run's last epoch, the kind of step most of a run is, e.g. LE's explanation stage); nothing is
    written. Returns the loss terms (read once, after the step) and the seconds the step took. On CUDA
    the step runs under ``torch.cuda.set_sync_debug_mode("error")``: a host-device sync in it is an error.

    A method that needs a teacher uses the trained one ``spec.teacher`` names if there is one, or else
    an untrained network of ``teacher_model`` (default: the spec's teacher_model or model): the step
    exercises the same code either way. A CUDA or driver failure is a :class:`DeviceError`."""
    try:
        return _one_step(spec, device, teacher_model, spec.last_epoch - 1 if epoch is None else epoch)
    except (RuntimeError, AssertionError) as error:
        if isinstance(error, TrainingError) or (failure := devices.as_device_error(error, device)) is None:
            raise
        raise failure from error


def _one_step(spec: RunSpec, device: str, teacher_model: str | None, epoch: int) -> dict[str, Any]:
    devices.configure(device)
    spec = spec.with_selected_hyperparameters()
    data = load_run_dataset(spec).to(device)
    method = build_method(spec.method["name"], **spec.method_hyperparameters())
    teacher = None
    if method.needs_teacher:
        teacher = (load_model(spec.teacher, architecture=spec.teacher_model) if spec.teacher else
                   build_model(teacher_model or spec.teacher_model or spec.model, data.num_classes,
                               data.input_shape).eval())
    state = initial_state(spec, method, data, None, device, teacher)
    order, generator = prepare_epoch(spec, data, state, epoch)
    _index, x, y = next(iter(batches(spec, data, order, generator)))
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.set_sync_debug_mode("error")
    started = time.perf_counter()
    try:
        terms, _ = train_step(method, state.model, state.optimizer, x, y, epoch, data.num_classes, generator,
                              teacher, performance=spec.performance)
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
    values = {k: float(v) for k, v in terms.items()}  # the read waits for the device: the step is done
    return {"terms": values, "seconds": time.perf_counter() - started, "epoch": epoch}
