"""The one training loop: seeded, resumable at every epoch, atomic in everything it writes.

Randomness is derived from (seed, epoch) at the start of each epoch, for the data order, the
augmentation, dropout and LE-Permut alike. A run resumed from the checkpoint of epoch k therefore
continues exactly as the uninterrupted run would, and an LE Stage-2 run started from a shared
warm-up checkpoint equals one that did its own warm-up.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data import Dataset, augment_batch
from ..evaluate import accuracy, autocast
from ..io import atomic_torch_save, atomic_write_json, atomic_write_text, provenance, remove_stale_temporaries
from ..methods import Method, StepContext, build_method
from ..models import IntrospectModel, build_model
from ..runs import RunFileError, RunFiles, load_checkpoint, load_model, load_run_dataset
from ..spec import Performance, RunSpec
from .sgd import SGD

log = logging.getLogger("introspect.train")

EPOCH_COLUMNS = ["epoch", "stage", "lr", "loss", "loss_terms", "train_acc", "val_acc", "test_acc", "seconds"]


class TrainingError(RuntimeError):
    """A run cannot go on; the message names the run and what went wrong."""


class NonFiniteLossError(TrainingError):
    pass


class Interrupted(TrainingError):
    """SIGTERM/SIGINT arrived (preemption, time limit); the last epoch's checkpoint is on disk."""


class InjectedFailure(TrainingError):
    pass


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _identity(spec: RunSpec) -> dict[str, Any]:
    """The parts of a spec that determine its numbers (a checkpoint must match them to resume)."""
    data = spec.to_dict()
    for key in ("fail_at_epoch", "eval_batch_size", "init_from", "teacher"):
        data.pop(key)
    return data


@dataclass
class _State:
    model: IntrospectModel
    aux: nn.Module | None  # the method's own trainable modules (e.g. a FitNets regressor)
    optimizer: SGD
    next_epoch: int
    history: list[dict[str, Any]]
    seconds: float  # training wall time accumulated before this process


def train(spec: RunSpec, out_dir: str | Path, *, device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Train one run into ``out_dir`` (resuming from its checkpoint if there is one); return metrics."""
    files = RunFiles(Path(out_dir))
    files.directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(files.directory)  # left by writes that a kill cut short
    if threads:
        torch.set_num_threads(threads)
    if str(device).startswith("cuda"):
        # CPU kernels are deterministic already; this import-heavy switch matters on GPUs only.
        torch.use_deterministic_algorithms(True, warn_only=True)

    spec = spec.with_selected_hyperparameters()
    for key in ("teacher", "init_from"):
        path = getattr(spec, key)
        if path and not Path(path).is_file():
            raise TrainingError(f"{spec.run_id}: the {key} checkpoint {path} does not exist; train that run first")
    data = load_run_dataset(spec).to(device)
    method = build_method(spec.method["name"], **spec.method_hyperparameters())
    teacher = load_model(spec.teacher) if spec.teacher else None  # on the CPU until setup() has seen it
    state = _initial_state(spec, method, data, files, device, teacher)

    started, first_epoch = time.perf_counter(), state.next_epoch
    with _stop_on_signals() as stop:
        while state.next_epoch < spec.last_epoch:
            epoch = state.next_epoch
            if spec.fail_at_epoch is not None and epoch == spec.fail_at_epoch:
                raise InjectedFailure(f"{spec.run_id}: failure injected at epoch {epoch} (fail_at_epoch)")
            row = _train_epoch(spec, method, data, state, epoch, teacher, stop)
            state.history.append(row)
            state.seconds += row["seconds"]
            state.next_epoch = epoch + 1
            _save_checkpoint(files.checkpoint, spec, state)
            atomic_write_text(files.epochs, _epochs_csv(state.history))
            per_epoch = (time.perf_counter() - started) / (epoch + 1 - first_epoch)  # with checkpointing
            _report_progress(progress_line(spec.run_id, spec.last_epoch, row, per_epoch))
    return _finish(spec, data, state, files)


def progress_line(run_id: str, last_epoch: int, row: dict[str, Any], seconds_per_epoch: float) -> str:
    """One line per epoch for the job's stdout and log: ``<run> epoch 3/200 lr 0.1 loss 1.2345
    acc train 55.10 val 52.00 test 51.80 time 12.3s ETA 0:39:48`` (the ETA at this process's pace)."""
    eta = (last_epoch - row["epoch"]) * seconds_per_epoch
    return (f"{run_id} epoch {row['epoch']}/{last_epoch} lr {row['lr']:.4g} loss {row['loss']:.4f} "
            f"acc train {row['train_acc']:.2f} val {row['val_acc']:.2f} test {row['test_acc']:.2f} "
            f"time {row['seconds']:.1f}s ETA {_clock(eta)}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _report_progress(line: str) -> None:
    """The workflow sends a job's stderr (the log) to its log file and its stdout to the Snakemake
    or SLURM output, so the line goes to both; flushed, as stdout is a pipe or file there."""
    log.info("%s", line)
    print(line, file=sys.stdout, flush=True)


def _initial_state(spec: RunSpec, method: Method, data: Dataset, files: RunFiles, device: str, teacher) -> _State:
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
    state = _State(model, aux, optimizer, 0, [], 0.0)
    checkpoint = files.checkpoint
    saved = _resumable_checkpoint(spec, files, device)
    if saved is not None:
        if saved["identity"] != _identity(spec):
            raise TrainingError(
                f"{checkpoint} belongs to a different run configuration; delete it (or the run "
                f"directory) to start {spec.run_id} afresh"
            )
        _restore(state, saved)
        log.info("%s resuming after epoch %d from %s", spec.run_id, state.next_epoch, checkpoint)
    elif spec.init_from:
        saved = load_checkpoint(spec.init_from, device)
        _restore(state, saved)
        # Warm-up epochs belong to this run's curve too; mark them as stage 1.
        state.history = [dict(row, stage=1) for row in saved["history"]]
        log.info("%s starting after epoch %d from %s", spec.run_id, state.next_epoch, spec.init_from)
    return state


def _resumable_checkpoint(spec: RunSpec, files: RunFiles, device: str) -> dict[str, Any] | None:
    """The run's own checkpoint, if it has a readable one. A corrupt or truncated checkpoint (a disk
    filled up, a copy cut short) is moved aside with a warning and the run starts from scratch, rather
    than failing forever; same seed, same numbers."""
    if not files.checkpoint.exists():
        return None
    try:
        return load_checkpoint(files.checkpoint, device)
    except RunFileError as error:
        aside = files.checkpoint.with_name(f"{files.checkpoint.name}.corrupt")
        os.replace(files.checkpoint, aside)
        log.warning("%s: %s. Moved it to %s; training from scratch.", spec.run_id,
                    str(error).split("; delete")[0], aside)
        return None


def _apply_performance(spec: RunSpec, model: nn.Module, teacher: nn.Module | None, method: Method) -> None:
    performance = spec.performance
    for network in filter(None, (model, teacher)):
        if performance.channels_last:
            network.to(memory_format=torch.channels_last)
        if performance.compile:
            if getattr(method, "explainer", None) == "guided_bp":
                raise TrainingError(f"{spec.run_id}: performance.compile does not apply to guided backprop, "
                                    "whose ReLU backward changes between passes")
            network.forward_features = torch.compile(network.forward_features, backend=performance.compile)


def _restore(state: _State, saved: dict[str, Any]) -> None:
    state.model.load_state_dict(saved["model"])
    if state.aux is not None and saved.get("method_modules") is not None:
        state.aux.load_state_dict(saved["method_modules"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.next_epoch = saved["epoch"]
    state.history = list(saved["history"])
    state.seconds = saved.get("seconds", 0.0)


def _snapshot(spec: RunSpec, state: _State) -> dict[str, Any]:
    return {
        "model": state.model.state_dict(),
        "method_modules": state.aux.state_dict() if state.aux is not None else None,
        "optimizer": state.optimizer.state_dict(),
        "epoch": state.next_epoch,
        "history": state.history,
        "seconds": state.seconds,
        "identity": _identity(spec),
        "arch": {"name": spec.model, "num_classes": state.model.num_classes,
                 "input_shape": list(state.model.input_shape)},
    }


def _save_checkpoint(path: Path, spec: RunSpec, state: _State) -> None:
    atomic_torch_save(path, _snapshot(spec, state))


def _train_epoch(spec, method, data, state: _State, epoch, teacher, stop) -> dict[str, Any]:
    started = time.perf_counter()
    model, optimizer = state.model, state.optimizer
    lr = spec.budget.lr_at(epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    torch.manual_seed(epoch_seed(spec.seed, epoch))  # dropout and any other global-RNG use
    generator = torch.Generator().manual_seed(epoch_seed(spec.seed, epoch) + 1)
    order = torch.randperm(len(data.train), generator=generator).to(data.train.y.device, non_blocking=True)
    model.train()
    if state.aux is not None:
        state.aux.train()
    make_batches = _device_batches if spec.dataset.loader == "device" else _dataloader_batches
    batches = make_batches(spec, data, order, generator)
    record = _BatchRecord(len(batch_bounds(len(order), spec.budget.batch_size)), data.train.y.device)
    try:
        for step, (x, y) in enumerate(batches):
            if stop.requested:
                raise Interrupted(f"{spec.run_id}: stopped by signal {stop.signal} in epoch {epoch}; "
                                  f"the checkpoint after epoch {epoch} is kept for the retry")
            terms, logits = train_step(method, model, optimizer, x, y, epoch, data.num_classes, generator, teacher,
                                       step=step, performance=spec.performance)
            record.add(terms, logits, y)
    except Interrupted:
        raise
    except Exception as error:  # a non-finite loss earlier in the epoch is the likelier cause: name it
        _epoch_sums(spec.run_id, epoch, record.read(), cause=error)
        raise
    term_sums, loss_sum, correct, seen = _epoch_sums(spec.run_id, epoch, record.read())  # the one device read
    return {
        "epoch": epoch + 1,
        "stage": method.stage(epoch),
        "lr": lr,
        "loss": loss_sum / seen,
        "loss_terms": json.dumps({k: round(v / seen, 6) for k, v in term_sums.items()}, sort_keys=True),
        "train_acc": 100.0 * correct / seen,
        "val_acc": accuracy(model, data.val, spec.eval_batch_size, spec.performance),
        "test_acc": accuracy(model, data.test, spec.eval_batch_size, spec.performance),
        "seconds": time.perf_counter() - started,
    }


@dataclass
class _Batch:
    terms: dict[str, float]  # the batch's loss terms, in the method's order
    size: int
    correct: int


class _BatchRecord:
    """Each batch's loss terms and correct predictions, written into device buffers and read in one
    transfer at the end of the epoch: reading them per batch (``float(loss)``) would make the host
    wait for the device at every step."""

    def __init__(self, batches: int, device: torch.device):
        self.keys: list[str] = []  # every loss term seen this epoch (e2kd's `every` adds one on some batches)
        self.keys_by_batch: list[tuple[str, ...]] = []
        self.sizes: list[int] = []
        self.terms = torch.zeros(batches, 0, dtype=torch.float64, device=device)  # float32/bf16 -> 64 is exact
        self.correct = torch.zeros(batches, dtype=torch.int64, device=device)
        self.absent = torch.zeros((), device=device)

    def add(self, terms: dict[str, Tensor], logits: Tensor, y: Tensor) -> None:
        new = [k for k in terms if k not in self.keys]
        if new:
            self.keys += new
            self.terms = torch.cat([self.terms, self.terms.new_zeros(len(self.terms), len(new))], dim=1)
        step = len(self.sizes)
        self.terms[step] = torch.stack([terms.get(k, self.absent) for k in self.keys])
        self.correct[step] = (logits.argmax(1) == y).sum()
        self.keys_by_batch.append(tuple(terms))
        self.sizes.append(len(y))

    def read(self) -> list[_Batch]:
        done, k = len(self.sizes), len(self.keys)
        values = torch.cat([self.terms[:done].flatten(), self.correct[:done].double()]).tolist()
        rows = [dict(zip(self.keys, values[i * k:(i + 1) * k])) for i in range(done)]
        return [_Batch({key: row[key] for key in keys}, size, int(right))
                for row, keys, size, right in zip(rows, self.keys_by_batch, self.sizes, values[done * k:])]


def _epoch_sums(run_id: str, epoch: int, batches: list[_Batch], cause: BaseException | None = None
                ) -> tuple[dict[str, float], float, int, int]:
    """Size-weighted sums of the loss terms and the loss, correct predictions and samples, added in
    batch order in Python floats (the numbers a per-batch read gave). A non-finite batch is an error."""
    totals: dict[str, float] = {}
    loss_sum, correct, seen = 0.0, 0, 0
    for step, batch in enumerate(batches):
        if not all(math.isfinite(v) for v in batch.terms.values()):
            raise NonFiniteLossError(
                f"{run_id}: non-finite loss at epoch {epoch}, batch {step} "
                f"({', '.join(f'{k}={v}' for k, v in batch.terms.items())}); no metrics were written. Lower "
                f"the learning rate or check the method's hyper-parameters."
            ) from cause
        for key, value in batch.terms.items():
            totals[key] = totals.get(key, 0.0) + value * batch.size
        loss_sum += sum(batch.terms.values()) * batch.size
        correct += batch.correct
        seen += batch.size
    return totals, loss_sum, correct, seen


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Mini-batch [start, end) slices of an epoch. A last batch of one sample joins the one before:
    BatchNorm cannot normalise a single sample where a feature map is 1x1 (CNN-8 on 8px digits)."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _device_batches(spec: RunSpec, data: Dataset, order: Tensor, generator: torch.Generator) -> Iterator:
    """The default data path: the split is one tensor on the device; each batch is gathered and
    augmented (pad-crop-flip) in one batched operation, with no per-sample Python."""
    for start, end in batch_bounds(len(order), spec.budget.batch_size):
        index = order[start:end]
        yield augment_batch(data.train.x[index], data.augment, generator, fill=data.pad_fill), data.train.y[index]


def _dataloader_batches(spec: RunSpec, data: Dataset, order: Tensor, generator: torch.Generator) -> Iterator:
    """The conventional path (``dataset.loader: dataloader``): a DataLoader over per-sample
    torchvision transforms, in the same sample order as the device path; the augmentation draws come
    from torch's global RNG, seeded per epoch. Kept for comparison and for data that does not fit."""
    from torch.utils.data import DataLoader

    from ..data import PerSampleAugmented

    dataset = PerSampleAugmented(data.train, data.augment, data.pad_fill)
    indices = order.tolist()  # once: a read per batch would wait for the device each time
    batches = [indices[start:end] for start, end in batch_bounds(len(order), spec.budget.batch_size)]
    device = data.train.y.device
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=spec.dataset.loader_workers,
                        generator=torch.Generator().manual_seed(int(torch.initial_seed()) % 2**63))
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def train_step(method, model, optimizer, x, y, epoch, num_classes, generator=None, teacher=None, step=0,
               performance: Performance | None = None):
    """One optimisation step; returns the loss terms and the logits, detached and still on the device
    (reading them here would make the host wait for the device at every step)."""
    performance = performance or Performance()
    if performance.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    if method.needs_input_grad(epoch):
        x = x.requires_grad_(True)
    with autocast(x, performance):
        out = model.forward_features(x)
        teacher_out = None
        if teacher is not None:
            with torch.no_grad():
                teacher_out = teacher.forward_features(x.detach())
        ctx = StepContext(x=x, y=y, out=out, model=model, epoch=epoch, num_classes=num_classes,
                          generator=generator, teacher=teacher_out, step=step)
        terms = method.loss(ctx)
    optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    optimizer.step()
    return {k: v.detach() for k, v in terms.items()}, out.logits.detach()


def _epochs_csv(history: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EPOCH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def _finish(spec: RunSpec, data: Dataset, state: _State, files: RunFiles) -> dict[str, Any]:
    history = state.history
    if not history:
        raise TrainingError(f"{spec.run_id}: no epoch was trained (stop_epoch/init_from leave nothing to do)")
    best = max(history, key=lambda r: (r["val_acc"], r["epoch"]))  # latest of the best-validation epochs
    final = history[-1]
    metrics = {
        "run_id": spec.run_id,
        "dataset": spec.dataset.name,
        "model": spec.model,
        "method": spec.method["name"],
        "hyperparameters": spec.method_hyperparameters(),
        "budget": spec.to_dict()["budget"],
        "seed": spec.seed,
        "epochs": final["epoch"],
        "test_acc_final": final["test_acc"],
        "val_acc_final": final["val_acc"],
        "test_acc_best_val": best["test_acc"],
        "val_acc_best": best["val_acc"],
        "best_val_epoch": best["epoch"],
        "test_acc_max": max(r["test_acc"] for r in history),  # optimistic: selected on test data
        "train_acc_final": final["train_acc"],
        "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test), "n_classes": data.num_classes,
        "wall_time_seconds": state.seconds,
        "spec": spec.to_dict(),
        **provenance(),
    }
    atomic_torch_save(files.model, _snapshot(spec, state))
    atomic_write_text(files.epochs, _epochs_csv(history))
    atomic_write_json(files.metrics, metrics)  # last: its presence means the run is complete
    files.checkpoint.unlink(missing_ok=True)
    return metrics


class _StopFlag:
    requested = False
    signal: int | None = None


@contextmanager
def _stop_on_signals() -> Iterator[_StopFlag]:
    """SIGTERM (SLURM preemption/time limit) and SIGINT end the run at the next batch boundary."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be installed from the main thread
        return

    def handler(signum, _frame):
        flag.requested, flag.signal = True, signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
