"""Per-batch numbers kept on the device during an epoch and read once at its end.

Reading a loss per batch (``float(loss)``) would make the host wait for the device at every step, so
each batch's loss terms, correct predictions and diagnostics go into device buffers, and the epoch's
sums are computed from one transfer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import NonFiniteLossError


@dataclass
class Batch:
    terms: dict[str, float]  # the batch's loss terms, in the method's order
    size: int
    correct: int
    diagnostics: dict[str, tuple[float, int]]  # name -> (count, out of how many samples)


@dataclass
class EpochSums:
    terms: dict[str, float]  # size-weighted sums of each loss term
    loss: float
    correct: int
    seen: int
    diagnostics: dict[str, tuple[float, int]]  # name -> (count, samples) over the epoch


class BatchRecord:
    """Each batch's loss terms, correct predictions and diagnostics, in device buffers."""

    def __init__(self, batches: int, device: torch.device):
        self.keys: list[str] = []  # every loss term seen this epoch (e2kd's `every` adds one on some batches)
        self.keys_by_batch: list[tuple[str, ...]] = []
        self.sizes: list[int] = []
        self.terms = torch.zeros(batches, 0, dtype=torch.float64, device=device)  # float32/bf16 -> 64 is exact
        self.correct = torch.zeros(batches, dtype=torch.int64, device=device)
        self.absent = torch.zeros((), device=device)
        self.diagnostic_names: list[str] = []
        self.diagnostic_counts = torch.zeros(batches, 0, dtype=torch.float64, device=device)
        self.diagnostic_of: list[dict[str, int]] = []  # per batch: name -> samples the count is out of

    def add(self, terms: dict[str, Tensor], logits: Tensor, y: Tensor,
            diagnostics: dict[str, tuple[Tensor, int]] | None = None) -> None:
        new = [k for k in terms if k not in self.keys]
        if new:
            self.keys += new
            self.terms = torch.cat([self.terms, self.terms.new_zeros(len(self.terms), len(new))], dim=1)
        step = len(self.sizes)
        self.terms[step] = torch.stack([terms.get(k, self.absent) for k in self.keys])
        self.correct[step] = (logits.argmax(1) == y).sum()
        self.keys_by_batch.append(tuple(terms))
        self.sizes.append(len(y))
        self._add_diagnostics(step, diagnostics or {})

    def _add_diagnostics(self, step: int, diagnostics: dict[str, tuple[Tensor, int]]) -> None:
        new = [k for k in diagnostics if k not in self.diagnostic_names]
        if new:
            self.diagnostic_names += new
            self.diagnostic_counts = torch.cat(
                [self.diagnostic_counts, self.diagnostic_counts.new_zeros(len(self.diagnostic_counts), len(new))], 1)
        for name, (count, _of) in diagnostics.items():
            self.diagnostic_counts[step, self.diagnostic_names.index(name)] = count
        self.diagnostic_of.append({name: of for name, (_count, of) in diagnostics.items()})

    def read(self) -> list[Batch]:
        """Every batch so far, from one device-to-host transfer."""
        done, k, d = len(self.sizes), len(self.keys), len(self.diagnostic_names)
        values = torch.cat([self.terms[:done].flatten(), self.correct[:done].double(),
                            self.diagnostic_counts[:done].flatten()]).tolist()
        rows = [dict(zip(self.keys, values[i * k:(i + 1) * k])) for i in range(done)]
        correct = values[done * k:done * (k + 1)]
        counts = values[done * (k + 1):]
        batches = []
        for i, (row, keys, size, right, of) in enumerate(zip(rows, self.keys_by_batch, self.sizes, correct,
                                                            self.diagnostic_of)):
            diagnostics = {name: (counts[i * d + self.diagnostic_names.index(name)], n) for name, n in of.items()}
            batches.append(Batch({key: row[key] for key in keys}, size, int(right), diagnostics))
        return batches


def epoch_sums(run_id: str, epoch: int, batches: list[Batch], cause: BaseException | None = None) -> EpochSums:
    """Size-weighted sums of the loss terms and the loss, correct predictions and samples, added in
    batch order in Python floats (the numbers a per-batch read gave). A non-finite batch is an error."""
    totals: dict[str, float] = {}
    diagnostics: dict[str, tuple[float, int]] = {}
    loss_sum, correct, seen = 0.0, 0, 0
    for step, batch in enumerate(batches):
        bad = [repr(k) for k, v in batch.terms.items() if not math.isfinite(v)]
        if bad:
            raise NonFiniteLossError(
                f"{run_id}: non-finite loss at epoch {epoch}, batch {step} "
                f"({', '.join(f'{k}={v}' for k, v in batch.terms.items())}): the method's loss term "
                f"{' and '.join(bad)}; no metrics were written. Lower the learning rate or check the method's "
                "hyper-parameters and that term."
            ) from cause
        for key, value in batch.terms.items():
            totals[key] = totals.get(key, 0.0) + value * batch.size
        for name, (count, of) in batch.diagnostics.items():
            before = diagnostics.get(name, (0.0, 0))
            diagnostics[name] = (before[0] + count, before[1] + of)
        loss_sum += sum(batch.terms.values()) * batch.size
        correct += batch.correct
        seen += batch.size
    return EpochSums(totals, loss_sum, correct, seen, diagnostics)
