"""One optimisation step and the batches an epoch is made of."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ..data import Dataset, augment_batch
from ..explain.gradients import batched_backward_mode
from ..methods import TEACHER_MODULE, TEACHER_OUTPUTS, StepContext
from ..methods.base import checked_loss_terms
from ..models.base import Forward
from ..models.evaluate import autocast
from ..runs.spec import Performance, RunSpec


def train_step(method, model, optimizer, x, y, epoch, num_classes, generator=None, teacher=None, step=0,
               performance: Performance | None = None, diagnostics: dict | None = None,
               teacher_outputs: Forward | None = None):
    """One optimisation step; returns the loss terms and the logits, detached and still on the device
    (reading them here would make the host wait for the device at every step). The method gets what
    it declares in ``needs``: the teacher's outputs (``teacher_outputs`` where the loop has them for this
    batch already, :mod:`.teacher`; otherwise the teacher's forward pass of ``x``) and/or the teacher
    network. Diagnostics the method records (counts on the device) are added to ``diagnostics``; they
    never enter the loss."""
    performance = performance or Performance()
    needs = method.requirements()
    x = in_memory_layout(x, performance)
    if method.needs_input_grad(epoch):
        x = x.requires_grad_(True)
    with autocast(x, performance):
        out = model.forward_features(x)
        teacher_out = None
        if TEACHER_OUTPUTS in needs:
            teacher_out = teacher_outputs
            if teacher_out is None and teacher is not None:
                with torch.no_grad():
                    teacher_out = teacher.forward_features(x.detach())
        ctx = StepContext(x=x, y=y, out=out, model=model, epoch=epoch, num_classes=num_classes,
                          generator=generator, teacher=teacher_out, step=step,
                          teacher_module=teacher if TEACHER_MODULE in needs else None)
        with batched_backward_mode(performance.batched_backward):
            terms = checked_loss_terms(method, method.loss(ctx))  # an error names the method and term
    optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    optimizer.step()
    if diagnostics is not None:
        diagnostics.update(ctx.diagnostics)
    return {k: v.detach() for k, v in terms.items()}, out.logits.detach()


def in_memory_layout(x: Tensor, performance: Performance) -> Tensor:
    """A batch of images in the memory layout the networks run in (channels-last where configured)."""
    return x.contiguous(memory_format=torch.channels_last) if performance.channels_last and x.dim() == 4 else x


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Mini-batch [start, end) slices of an epoch. A last batch of one sample joins the one before:
    BatchNorm cannot normalise a single sample where a feature map is 1x1 (CNN-8 on 8px digits)."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def device_batches(spec: RunSpec, data: Dataset, order: Tensor, generator: torch.Generator) -> Iterator:
    """The default data path: the split is one tensor on the device; each batch is gathered and
    augmented (pad-crop-flip) in one batched operation, with no per-sample Python. Yields
    ``(sample indices, x, y)``."""
    for start, end in batch_bounds(len(order), spec.budget.batch_size):
        index = order[start:end]
        x = augment_batch(data.train.x[index], data.augment, generator, fill=data.pad_fill)
        yield index, x, data.train.y[index]


def dataloader_batches(spec: RunSpec, data: Dataset, order: Tensor, generator: torch.Generator) -> Iterator:
    """The conventional path (``dataset.loader: dataloader``): a DataLoader over per-sample
    torchvision transforms, in the same sample order as the device path; the augmentation draws come
    from torch's global RNG, seeded per epoch. Kept for comparison and for data that does not fit."""
    from torch.utils.data import DataLoader

    from ..data import PerSampleAugmented, Split

    device = data.train.y.device
    # The loader (and its forked workers) index host tensors: a worker must not touch CUDA memory, so a split
    # held on the GPU is served from a host copy, and batches reach the device from pinned memory.
    host = Split(data.train.x.cpu(), data.train.y.cpu())
    fill = data.pad_fill.cpu() if data.pad_fill is not None else None
    dataset = PerSampleAugmented(host, data.augment, fill)
    indices = order.tolist()  # once: a read per batch would wait for the device each time
    batches = [indices[start:end] for start, end in batch_bounds(len(order), spec.budget.batch_size)]
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=spec.dataset.loader_workers,
                        pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(int(torch.initial_seed()) % 2**63))
    for index, (x, y) in zip(batches, loader):
        yield (torch.as_tensor(index).to(device, non_blocking=True), x.to(device, non_blocking=True),
               y.to(device, non_blocking=True))


def batches(spec: RunSpec, data: Dataset, order: Tensor, generator: torch.Generator) -> Iterator:
    """The epoch's batches as ``(sample indices, x, y)``, through the dataset's configured loader."""
    make = device_batches if spec.dataset.loader == "device" else dataloader_batches
    return make(spec, data, order, generator)
