"""A frozen teacher's outputs for the training batches, computed once per run where the batches repeat.

A teacher is a trained network in eval mode: its forward pass of a sample depends on that sample alone
(BatchNorm normalises with its running statistics, dropout is off). Where the batches are the stored
training images themselves (no augmentation, the device data path), every epoch shows the teacher the
same images in another order, so :func:`precompute_teacher_outputs` runs it once over the whole split and
each step gathers its batch's rows by sample index: the teacher's share of a distillation run falls from
one forward pass per epoch to one per run. With augmentation (CIFAR's crop and flip) every epoch's images
are new, and outputs that would take more than ``max_bytes`` are not kept; the step then computes each
batch's outputs as it comes. Both give the same outputs up to floating-point summation order (the
convolutions see batches of another size and composition). The pre-flight's steps
(:class:`introspect.train.probe.StepRunner`) use the cache as a run does, so the time limits it calibrates
include it. On a GPU the gather stays on the device: no host read.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..methods import TEACHER_OUTPUTS, Method
from ..models.base import Forward
from ..models.evaluate import autocast
from ..runs.spec import Performance
from .step import in_memory_layout

# Digits' ResNet26 outputs (logits and three stages) take ~12 MB; CIFAR trains with augmentation and never
# reaches this. A bound keeps a large dataset without augmentation from filling a GPU.
MAX_TEACHER_CACHE_BYTES = 512 << 20


def precompute_teacher_outputs(method: Method, teacher: nn.Module | None, data: Dataset, loader: str,
                               performance: Performance, chunk: int,
                               max_bytes: int = MAX_TEACHER_CACHE_BYTES) -> Forward | None:
    """The teacher's forward pass of every training image (in ``chunk``-sized batches, as the step would run
    it: channels-last and autocast as configured), or None where it does not apply: the method reads no
    teacher outputs, the batches are augmented or come through a DataLoader, or the outputs exceed
    ``max_bytes``."""
    if teacher is None or TEACHER_OUTPUTS not in method.requirements():
        return None
    if data.augment != "none" or loader != "device" or teacher.training:
        return None
    x = data.train.x
    parts: list[Forward] = []
    with torch.no_grad(), autocast(x, performance):
        for start in range(0, len(x), chunk):
            batch = in_memory_layout(x[start:start + chunk], performance)
            parts.append(teacher.forward_features(batch))
            if start == 0 and _bytes(parts[0]) * len(x) > max_bytes * len(batch):
                return None
    return _combined(parts, torch.cat)


def teacher_outputs_of(cache: Forward | None, index: Tensor) -> Forward | None:
    """The cached outputs of the samples ``index`` (a device tensor: no host read), or None without a cache.
    Each field is a new tensor, so a method that changes its batch's outputs leaves the cache as it was."""
    if cache is None:
        return None
    return _combined([cache], lambda tensors: tensors[0][index])


def _combined(parts: list[Forward], combine: Callable[[list[Tensor]], Tensor]) -> Forward:
    """One Forward whose every field is ``combine`` of that field's tensors in ``parts`` (``torch.cat``, or
    rows of a single one). An ``explain_features`` that is one of the stages (as the ResNets and CNNs return
    it) stays that stage's new tensor, not a second copy."""
    stages = [combine([p.stages[i] for p in parts]) for i in range(len(parts[0].stages))]
    same = _features_stage(parts[0])
    features = parts[0].explain_features
    if features is not None:
        features = stages[same] if same is not None else combine([p.explain_features for p in parts])
    return Forward(logits=combine([p.logits for p in parts]), stages=stages, explain_features=features)


def _features_stage(out: Forward) -> int | None:
    """The index of the stage that *is* ``out.explain_features`` (the same tensor), if one is."""
    return next((i for i, stage in enumerate(out.stages) if stage is out.explain_features), None)


def _bytes(out: Forward) -> int:
    tensors = [out.logits, *out.stages]
    if out.explain_features is not None and _features_stage(out) is None:
        tensors.append(out.explain_features)
    return sum(t.numel() * t.element_size() for t in tensors)
