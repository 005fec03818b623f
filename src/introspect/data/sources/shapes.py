"""``shapes``: a generated dataset of four filled shapes (square, disk, triangle, plus) on a dark,
noisy background; the class is the shape, so a faithful explanation lies on the shape.

Deterministic: the images come from a fixed generator seed, the same on every machine and for every
run (the split seeds choose which images train, select and test). Each image holds one shape of a
random size (a radius of 0.18-0.32 of the side), position (wholly inside) and brightness (0.6-1),
plus Gaussian pixel noise (sd 0.1), clipped to [0, 1]; 300 images per class. It needs no download
and no package beyond numpy: a dataset for trying the pipeline, and the example of adding one
(this module and a config entry ``source: shapes`` are all it took).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..base import Dataset, DatasetSource, register_dataset
from ..splits import drawn_test_dataset

SHAPES = ("square", "disk", "triangle", "plus")
PER_CLASS = 300
GENERATOR_SEED = 0


@functools.lru_cache(maxsize=4)
def generate_shapes(side: int, per_class: int = PER_CLASS, seed: int = GENERATOR_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, side, side)`` (float32 in [0, 1]) and int64 labels (indices into ``SHAPES``),
    classes interleaved (cached: callers must not modify the arrays)."""
    rng = np.random.default_rng(seed)
    n = per_class * len(SHAPES)
    labels = np.arange(n) % len(SHAPES)
    radius = rng.uniform(0.18, 0.32, n) * side
    centre_y = rng.uniform(radius, side - 1 - radius)
    centre_x = rng.uniform(radius, side - 1 - radius)
    brightness = rng.uniform(0.6, 1.0, n)
    grid = np.arange(side, dtype=np.float64)
    dy = np.abs(grid[None, :, None] - centre_y[:, None, None])
    signed_dy = grid[None, :, None] - centre_y[:, None, None]
    dx = np.abs(grid[None, None, :] - centre_x[:, None, None])
    r = radius[:, None, None]
    masks = np.stack([
        np.maximum(dx, dy) <= 0.8 * r,  # square; 0.8 brings its area near the disk's, so size tells nothing
        dx**2 + dy**2 <= r**2,  # disk
        (dy <= r) & (dx <= (signed_dy + r) / 2),  # triangle, apex up, base at the bottom
        ((dx <= r / 3) & (dy <= r)) | ((dy <= r / 3) & (dx <= r)),  # plus
    ])
    images = masks[labels, np.arange(n)] * brightness[:, None, None] + rng.normal(0.0, 0.1, (n, side, side))
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels.astype(np.int64)


@register_dataset
class Shapes(DatasetSource):
    name = "shapes"
    num_classes = len(SHAPES)
    image_size = 16
    resizable = True
    own_test_split = False
    obtain = "generated in memory (introspect.data.sources.shapes); nothing to obtain"

    def load(self, root: Path, *, val_fraction: float, test_fraction: float, image_size: int | None,
             split_seed: int, test_seed: int | None) -> Dataset:
        pixels, labels = generate_shapes(image_size or self.image_size)
        images = torch.from_numpy(pixels)[:, None]
        return drawn_test_dataset(self.name, images, labels, SHAPES, val_fraction=val_fraction,
                                  test_fraction=test_fraction, split_seed=split_seed, test_seed=test_seed)
