"""Batched on-device augmentation (:func:`augment_batch`) and its per-sample torchvision twin
(:class:`PerSampleAugmented`, the way common KD repositories feed a DataLoader)."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Split


def augment_batch(
    x: Tensor,
    kind: str,
    generator: torch.Generator | None = None,
    padding: int = 4,
    fill: Tensor | None = None,
) -> Tensor:
    """Batched on-device augmentation: pad ``padding`` pixels, random crop back, random h-flip.

    ``fill`` is the per-channel value of a black pixel after normalisation, so the border equals
    what ``RandomCrop(32, padding=4)`` before ``Normalize`` produces in the usual pipeline.
    """
    if kind == "none":
        return x
    n, channels, height, width = x.shape
    padded = x.new_zeros(n, channels, height + 2 * padding, width + 2 * padding)
    if fill is not None:
        padded += fill.to(x.device, non_blocking=True).view(1, channels, 1, 1)
    padded[:, :, padding:padding + height, padding:padding + width] = x
    # The draws come from a CPU generator (the same numbers on any device). non_blocking: a blocking
    # host-to-device copy would wait for all the work queued on the GPU, at every step.
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device="cpu")
    offsets = offsets.to(x.device, non_blocking=True)
    rows = (offsets[0][:, None] + torch.arange(height, device=x.device))  # (n, H)
    cols = (offsets[1][:, None] + torch.arange(width, device=x.device))  # (n, W)
    batch_index = torch.arange(n, device=x.device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if kind == "crop_flip":
        flip = torch.rand(n, generator=generator, device="cpu").to(x.device, non_blocking=True) < 0.5
        cropped = torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)
    return cropped.contiguous()


class PerSampleAugmented(torch.utils.data.Dataset):
    """A split served one sample at a time through torchvision's transforms, the way common KD
    repositories feed a DataLoader: ``RandomCrop(size, padding=4, fill=black)`` and
    ``RandomHorizontalFlip``. The same distribution as :func:`augment_batch` (a test compares them)."""

    def __init__(self, split: Split, kind: str, fill: Tensor | None = None, padding: int = 4):
        from torchvision.transforms import v2

        self.split = split
        steps = []
        if kind in ("crop", "crop_flip"):
            black = fill.tolist() if fill is not None else 0.0
            steps.append(v2.RandomCrop(tuple(split.x.shape[-2:]), padding=padding, fill=black))
        if kind == "crop_flip":
            steps.append(v2.RandomHorizontalFlip())
        self.transform = v2.Compose(steps) if steps else None

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = self.split.x[index]
        return (self.transform(x) if self.transform is not None else x), self.split.y[index]
