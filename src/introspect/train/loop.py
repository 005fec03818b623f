"""The one training loop: seeded, resumable at every epoch, atomic in everything it writes.

Randomness is derived from (seed, epoch) at the start of each epoch, for the data order, the
augmentation, dropout and LE-Permut alike. A run resumed from the checkpoint of epoch k therefore
continues exactly as the uninterrupted run would, and an LE Stage-2 run started from a shared
warm-up checkpoint equals one that did its own warm-up.

The loop has no method-specific branch: a method declares what it needs (``Method.needs``) and
:func:`~introspect.train.step.train_step` provides it. The checkpoint format, the writer lock, signal
handling, progress reports and the device set-up live in their own modules beside this one.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import Dataset
from ..io import atomic_torch_save, atomic_write_text, is_file, make_directory, remove_file, remove_stale_temporaries
from ..methods import DIAGNOSTICS, EAGER_ONLY, Method, build_method
from ..models import IntrospectModel, build_model
from ..models.base import Forward
from ..models.evaluate import accuracy
from ..runs.chosen import with_selected_hyperparameters
from ..runs.loading import load_checkpoint, load_model, load_run_dataset, warm_up_problem
from ..runs.metrics import RunMetrics
from ..runs.record import RunFiles
from ..runs.spec import RunSpec
from . import checkpoint
from . import device as devices
from .errors import InjectedFailure, Interrupted, TrainingError
from .finished import keep_finished, restore_finished
from .lock import writer_lock
from .progress import epochs_csv, progress_line, report_progress
from .provenance import provenance as code_provenance
from .records import BatchRecord, epoch_sums
from .sgd import SGD
from .signals import StopFlag, stop_on_signals
from .step import batch_bounds, batches, train_step
from .teacher import precompute_teacher_outputs, teacher_outputs_of

log = logging.getLogger("introspect.train")


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def train(spec: RunSpec, out_dir: str | Path, *, device: str = "cpu", threads: int | None = None,
          wait_for_lock: bool = False) -> dict[str, Any]:
    """Train one run into ``out_dir`` (resuming from its checkpoint if there is one); return its
    metrics. Only one process trains a run at a time: a second one raises :class:`RunBusyError`
    (or, with ``wait_for_lock``, waits). A CUDA or driver failure is a :class:`DeviceError`."""
    files = RunFiles(Path(out_dir))
    make_directory(files.directory)
    with writer_lock(files.writer_lock, spec.run_id, wait=wait_for_lock):
        remove_stale_temporaries(files.directory)  # left by writes that a kill cut short; ours alone now
        try:
            return _train_locked(spec, files, device, threads)
        except (RuntimeError, AssertionError) as error:
            if isinstance(error, TrainingError) or (failure := devices.as_device_error(error, device)) is None:
                raise
            raise failure from error


def _train_locked(spec: RunSpec, files: RunFiles, device: str, threads: int | None) -> dict[str, Any]:
    spec = with_selected_hyperparameters(spec)
    if (finished := restore_finished(spec, files)) is not None:  # a retry after a neighbour's fault
        log.info("%s finished already (its metrics.json is valid for this run): nothing to train", spec.run_id)
        return finished
    devices.configure(device, threads, tf32=spec.performance.tf32, native_kernels=spec.performance.native_kernels)
    for key in ("teacher", "init_from"):
        path = getattr(spec, key)
        if path and not is_file(path):
            raise TrainingError(f"{spec.run_id}: the {key} checkpoint {path} does not exist; train that run first")
    data = load_run_dataset(spec).to(device)
    method = build_method(spec.method["name"], **spec.method_hyperparameters())
    # on the CPU until setup() has seen it; a file of another architecture than the plan's is an error
    teacher = load_model(spec.teacher, architecture=spec.teacher_model) if spec.teacher else None
    state = initial_state(spec, method, data, files, device, teacher)
    teacher_cache = precompute_teacher_outputs(method, teacher, data, spec.dataset.loader, spec.performance,
                                               spec.budget.batch_size)

    started, first_epoch = time.perf_counter(), state.next_epoch
    with stop_on_signals() as stop:
        while state.next_epoch < spec.last_epoch:
            epoch = state.next_epoch
            if spec.fail_at_epoch is not None and epoch == spec.fail_at_epoch:
                raise InjectedFailure(f"{spec.run_id}: failure injected at epoch {epoch} (fail_at_epoch)")
            row = _train_epoch(spec, method, data, state, epoch, teacher, teacher_cache, stop)
            state.history.append(row)
            state.seconds += row["seconds"]
            state.next_epoch = epoch + 1
            checkpoint.save(files.checkpoint, spec, state)
            atomic_write_text(files.epochs, epochs_csv(state.history))
            per_epoch = (time.perf_counter() - started) / (epoch + 1 - first_epoch)  # with checkpointing
            report_progress(progress_line(spec.run_id, spec.last_epoch, row, per_epoch))
    return _finish(spec, data, state, files, device)


def initial_state(spec: RunSpec, method: Method, data: Dataset, files: RunFiles | None, device: str,
                  teacher: IntrospectModel | None) -> checkpoint.TrainState:
    """The model, the method's modules and the optimiser, resumed from the run's checkpoint or started
    from its warm-up (``init_from``) if it has one (``files`` None: a fresh state, nothing read)."""
    if method.needs_teacher and teacher is None:
        raise TrainingError(f"{spec.run_id}: method {method.name!r} needs a teacher checkpoint (spec key 'teacher')")
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, data.num_classes, data.input_shape, **method.model_options())
    aux = method.setup(model, teacher, data.input_shape)
    if teacher is not None:
        teacher.to(device)
    model.to(device)
    _apply_performance(spec, model, teacher, method)
    params = list(model.parameters()) + (list(aux.to(device).parameters()) if aux is not None else [])
    b = spec.budget
    optimizer = SGD(params, lr=b.lr, momentum=b.momentum, weight_decay=b.weight_decay)
    state = checkpoint.TrainState(model, aux, optimizer, 0, [], 0.0)
    saved = checkpoint.resumable(spec, files, device) if files is not None else None
    if saved is not None:
        checkpoint.restore(state, saved, files.checkpoint)
        log.info("%s resuming after epoch %d from %s", spec.run_id, state.next_epoch, files.checkpoint)
    elif spec.init_from and files is not None:
        saved = load_checkpoint(spec.init_from, device, max_epoch=spec.budget.epochs - 1)  # Stage 2 trains
        if problem := warm_up_problem(saved, spec):
            raise TrainingError(f"{spec.init_from} {problem}; delete {Path(spec.init_from).parent} and rerun "
                                "snakemake")
        checkpoint.restore(state, saved, spec.init_from)
        # Warm-up epochs belong to this run's curve too; mark them as stage 1.
        state.history = [dict(row, stage=1) for row in saved["history"]]
        log.info("%s starting after epoch %d from %s", spec.run_id, state.next_epoch, spec.init_from)
    return state


def _apply_performance(spec: RunSpec, model: nn.Module, teacher: nn.Module | None, method: Method) -> None:
    performance = spec.performance
    if performance.compile and EAGER_ONLY in method.requirements():
        raise TrainingError(f"{spec.run_id}: performance.compile does not apply to method {method.name!r} "
                            f"as configured (it needs eager execution, e.g. guided backprop's ReLU backward "
                            f"changes between passes)")
    for network in filter(None, (model, teacher)):
        if performance.channels_last:
            network.to(memory_format=torch.channels_last)
        if performance.compile:
            network.forward_features = torch.compile(network.forward_features, backend=performance.compile)


def prepare_epoch(spec: RunSpec, data: Dataset, state: checkpoint.TrainState, epoch: int
                  ) -> tuple[torch.Tensor, torch.Generator]:
    """Learning rate, the epoch's seeds, sample order and generator; the networks in train mode."""
    for group in state.optimizer.param_groups:
        group["lr"] = spec.budget.lr_at(epoch)
    torch.manual_seed(epoch_seed(spec.seed, epoch))  # dropout and any other global-RNG use
    generator = torch.Generator().manual_seed(epoch_seed(spec.seed, epoch) + 1)
    order = torch.randperm(len(data.train), generator=generator).to(data.train.y.device, non_blocking=True)
    state.model.train()
    if state.aux is not None:
        state.aux.train()
    return order, generator


def _train_epoch(spec: RunSpec, method: Method, data: Dataset, state: checkpoint.TrainState, epoch: int,
                 teacher: IntrospectModel | None, teacher_cache: Forward | None, stop: StopFlag) -> dict[str, Any]:
    started = time.perf_counter()
    model, optimizer = state.model, state.optimizer
    order, generator = prepare_epoch(spec, data, state, epoch)
    record = BatchRecord(len(batch_bounds(len(order), spec.budget.batch_size)), data.train.y.device)
    try:
        for step, (index, x, y) in enumerate(batches(spec, data, order, generator)):
            if stop.requested:
                raise Interrupted(f"{spec.run_id}: stopped by signal {stop.signal} in epoch {epoch}; "
                                  f"the checkpoint after epoch {epoch} is kept for the retry")
            diagnostics: dict = {}
            terms, logits = train_step(method, model, optimizer, x, y, epoch, data.num_classes, generator, teacher,
                                       step=step, performance=spec.performance, diagnostics=diagnostics,
                                       teacher_outputs=teacher_outputs_of(teacher_cache, index))
            record.add(terms, logits, y, diagnostics)
    except Interrupted:
        raise
    except Exception as error:  # a non-finite loss earlier in the epoch is the likelier cause: name it
        epoch_sums(spec.run_id, epoch, record.read(), cause=error)
        raise
    sums = epoch_sums(spec.run_id, epoch, record.read())  # the one device read
    return {
        "epoch": epoch + 1,
        "stage": method.stage(epoch),
        "lr": optimizer.param_groups[0]["lr"],
        "loss": sums.loss / sums.seen,
        "loss_terms": json.dumps({k: round(v / sums.seen, 6) for k, v in sums.terms.items()}, sort_keys=True),
        "train_acc": 100.0 * sums.correct / sums.seen,
        "val_acc": accuracy(model, data.val, spec.eval_batch_size, spec.performance),
        "test_acc": accuracy(model, data.test, spec.eval_batch_size, spec.performance),
        **{name: _share(*sums.diagnostics.get(name, (0.0, 0))) for name in DIAGNOSTICS},
        "seconds": time.perf_counter() - started,
    }


def _share(count: float, out_of: int) -> float | None:
    return count / out_of if out_of else None


def _finish(spec: RunSpec, data: Dataset, state: checkpoint.TrainState, files: RunFiles, device: str
            ) -> dict[str, Any]:
    history = state.history
    if not history:
        raise TrainingError(f"{spec.run_id}: no epoch was trained (stop_epoch/init_from leave nothing to do)")
    best = max(history, key=lambda r: (r["val_acc"], r["epoch"]))  # latest of the best-validation epochs
    final = history[-1]
    metrics = RunMetrics(
        run_id=spec.run_id, dataset=spec.dataset.name, model=spec.model, method=spec.method["name"],
        hyperparameters=spec.method_hyperparameters(), budget=spec.to_dict()["budget"], seed=spec.seed,
        epochs=final["epoch"], test_acc_final=final["test_acc"], val_acc_final=final["val_acc"],
        test_acc_best_val=best["test_acc"], val_acc_best=best["val_acc"], best_val_epoch=best["epoch"],
        test_acc_max=max(r["test_acc"] for r in history), train_acc_final=final["train_acc"],
        n_train=len(data.train), n_val=len(data.val), n_test=len(data.test), n_classes=data.num_classes,
        wall_time_seconds=state.seconds,
        spec=spec.to_dict(), device=devices.provenance(device), **code_provenance(),
    )
    atomic_torch_save(files.model, checkpoint.snapshot(spec, state))
    atomic_write_text(files.epochs, epochs_csv(history))
    atomic_write_text(files.metrics, metrics.to_json())  # last: its presence means the run is complete
    keep_finished(files)  # survives Snakemake deleting the outputs after a neighbour's failure
    remove_file(files.checkpoint)
    return metrics.to_dict()
