"""Training steps of a run spec outside the loop, built exactly as the loop builds them: the one training
set-up the pre-flight check (:mod:`introspect.cluster.preflight`), ``bench/gpu_check.py`` and
:func:`run_one_step` share with :func:`introspect.train.train`. They find out, in seconds, whether a kind of
run works on a device and what a step costs."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from ..data import Dataset
from ..methods import build_method
from ..models import IntrospectModel, build_model
from ..runs.chosen import with_selected_hyperparameters
from ..runs.loading import load_model, load_run_dataset
from ..runs.spec import RunSpec
from . import device as devices
from .errors import TrainingError
from .loop import initial_state, prepare_epoch
from .step import batches, train_step
from .teacher import precompute_teacher_outputs, teacher_outputs_of


class StepRunner:
    """Training steps of ``spec`` on ``data`` (already on ``device``), set up as :func:`introspect.train.train`
    sets a run up: the device (:func:`introspect.train.device.configure`: threads, fp32/TF32, deterministic
    CUDA), the method, the teacher, the model and optimiser with the performance options applied
    (:func:`~introspect.train.loop.initial_state`), the frozen teacher's cached outputs, the epoch's seeds and
    its batches through the configured data path. Each call runs the next batch's step of ``epoch`` (default:
    the run's last epoch, the kind of step most of a run is, e.g. LE's explanation stage; the batches start
    over when the epoch's are used up) and returns its loss terms, still on the device. Nothing is written.

    A method that needs a teacher uses the trained one ``spec.teacher`` names if there is one, or else an
    untrained network (eval mode) of ``teacher_model`` (default: the spec's teacher_model or model): the step
    exercises the same code either way."""

    def __init__(self, spec: RunSpec, data: Dataset, device: str = "cpu", *, teacher_model: str | None = None,
                 epoch: int | None = None, threads: int | None = None):
        devices.configure(device, threads, tf32=spec.performance.tf32, native_kernels=spec.performance.native_kernels)
        self.spec = spec = with_selected_hyperparameters(spec)
        self.data, self.device = data, device
        self.epoch = spec.last_epoch - 1 if epoch is None else epoch
        self.method = build_method(spec.method["name"], **spec.method_hyperparameters())
        self.teacher: IntrospectModel | None = None
        torch.manual_seed(spec.seed)  # an untrained teacher is the same network in every set-up of the spec
        if self.method.needs_teacher:
            self.teacher = (load_model(spec.teacher, architecture=spec.teacher_model) if spec.teacher else
                            build_model(teacher_model or spec.teacher_model or spec.model, data.num_classes,
                                        data.input_shape).eval())
        self.state = initial_state(spec, self.method, data, None, device, self.teacher)
        self.teacher_cache = precompute_teacher_outputs(self.method, self.teacher, data, spec.dataset.loader,
                                                        spec.performance, spec.budget.batch_size)
        self._batches: Iterator | None = None
        self.step_index = 0

    @property
    def model(self) -> IntrospectModel:
        return self.state.model

    def _next_batch(self) -> tuple[Tensor, Tensor, Tensor]:
        for _ in range(2):
            if self._batches is None:
                order, self.generator = prepare_epoch(self.spec, self.data, self.state, self.epoch)
                self._batches, self.step_index = iter(batches(self.spec, self.data, order, self.generator)), 0
            try:
                return next(self._batches)
            except StopIteration:
                self._batches = None
        raise TrainingError(f"{self.spec.run_id}: the training split gives no batch")

    def __call__(self) -> dict[str, Tensor]:
        index, x, y = self._next_batch()
        terms, _ = train_step(self.method, self.state.model, self.state.optimizer, x, y, self.epoch,
                              self.data.num_classes, self.generator, self.teacher, step=self.step_index,
                              performance=self.spec.performance,
                              teacher_outputs=teacher_outputs_of(self.teacher_cache, index))
        self.step_index += 1
        return terms


def step_times(step: StepRunner, device: str, steps: int) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step``, each between two device synchronisations (so a GPU's
    queued kernels are counted in the step that launched them)."""
    times = []
    for _ in range(steps):
        devices.synchronize(device)
        start = time.perf_counter()
        step()
        devices.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


@contextmanager
def device_failures(device: str) -> Iterator[None]:
    """A CUDA or driver failure inside becomes a :class:`~introspect.train.errors.DeviceError`
    (:func:`introspect.train.device.as_device_error`); anything else propagates as it is."""
    try:
        yield
    except (RuntimeError, AssertionError) as error:
        if isinstance(error, TrainingError) or (failure := devices.as_device_error(error, device)) is None:
            raise
        raise failure from error


def run_one_step(spec: RunSpec, device: str = "cpu", teacher_model: str | None = None,
                 epoch: int | None = None) -> dict[str, Any]:
    """Load the run's dataset and run one :class:`StepRunner` step on ``device``, under
    :func:`~introspect.train.device.sync_debug_errors` (on CUDA a host-device sync in the step is an error).
    Returns the loss terms (read once, after the step), the seconds the step took and its epoch. A CUDA or
    driver failure is a :class:`DeviceError`."""
    with device_failures(device):
        data = load_run_dataset(spec).to(device)
        runner = StepRunner(spec, data, device, teacher_model=teacher_model, epoch=epoch)
        devices.synchronize(device)
        started = time.perf_counter()
        with devices.sync_debug_errors(device):
            terms = runner()
        values = {k: float(v) for k, v in terms.items()}  # the read waits for the device: the step is done
        return {"terms": values, "seconds": time.perf_counter() - started, "epoch": runner.epoch}


__all__ = ["StepRunner", "device_failures", "run_one_step"]
