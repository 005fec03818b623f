"""Run ONE training step of a run spec, built exactly as training builds it (the pre-flight check and the
benchmarks use it to find out, in seconds, whether a kind of run works on a device and what it costs)."""
from __future__ import annotations

import time
from typing import Any

from ..methods import build_method
from ..models import build_model
from ..runs import load_model, load_run_dataset
from ..spec import RunSpec
from .loop import initial_state, prepare_epoch
from .step import batches, train_step


def run_one_step(spec: RunSpec, device: str = "cpu", teacher_model: str | None = None) -> dict[str, Any]:
    """Build the run ``spec`` describes as :func:`introspect.train.train` does (data, model, method,
    teacher, performance options) on ``device`` and run the first step of its first epoch; nothing is
    written. Returns the loss terms (read once, after the step) and the seconds the step took.

    A method that needs a teacher uses the trained one ``spec.teacher`` names if there is one, or else
    an untrained network of ``teacher_model`` (default: the spec's teacher_model or model): the step
    exercises the same code either way."""
    spec = spec.with_selected_hyperparameters()
    data = load_run_dataset(spec).to(device)
    method = build_method(spec.method["name"], **spec.method_hyperparameters())
    teacher = None
    if method.needs_teacher:
        teacher = (load_model(spec.teacher, architecture=spec.teacher_model) if spec.teacher else
                   build_model(teacher_model or spec.teacher_model or spec.model, data.num_classes,
                               data.input_shape).eval())
    state = initial_state(spec, method, data, None, device, teacher)
    order, generator = prepare_epoch(spec, data, state, 0)
    x, y = next(iter(batches(spec, data, order, generator)))
    started = time.perf_counter()
    terms, _ = train_step(method, state.model, state.optimizer, x, y, 0, data.num_classes, generator, teacher,
                          performance=spec.performance)
    values = {k: float(v) for k, v in terms.items()}  # the read waits for the device: the step is done
    return {"terms": values, "seconds": time.perf_counter() - started}
