"""Epoch time of our training loop (whole dataset as one tensor, batched pad-crop-flip on the device,
channels_last layout: its defaults) against a loop written the way common KD repositories write it
(a torchvision-style dataset of PIL images, per-sample transforms, DataLoader, torch.optim.SGD), same
model, data and batch size, interleaved in one process; median over rounds. The row "ours, NCHW"
runs our loop in the baseline's memory layout, separating the data path's share from the layout's.

    python bench/epoch_time.py [--images 5000] [--rounds 3] [--model resnet8] [--threads 1] [--quick]

Goal (issue 6): ours <= 0.8 x the baseline on CPU. Prints figures and writes results/bench/epoch_time.csv.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np

import common  # noqa: F401  (pins the CPU kernels before torch loads)

# isort: split
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from common import interleaved_medians, write_rows
from introspect.data import augment_batch
from introspect.data.sources.cifar10 import CIFAR10_MEAN, CIFAR10_STD
from introspect.methods import build_method
from introspect.models import build_model
from introspect.runs.spec import Performance
from introspect.train.sgd import SGD
from introspect.train.step import batch_bounds, train_step


class PilImages(Dataset):
    """What torchvision's CIFAR10 does per item: uint8 array -> PIL image -> transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def baseline_epoch(model, images, labels, workers: int) -> float:
    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ])
    loader = DataLoader(PilImages(images, labels, transform), batch_size=128, shuffle=True, num_workers=workers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return time.perf_counter() - start


def our_epoch(model, x_all, y_all, fill, generator, performance: Performance) -> float:
    method = build_method("ce")
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()
    start = time.perf_counter()
    order = torch.randperm(len(y_all), generator=generator)
    for begin, end in batch_bounds(len(order), 128):
        index = order[begin:end]
        x = augment_batch(x_all[index], "crop_flip", generator, fill=fill)
        train_step(method, model, optimizer, x, y_all[index], 0, 10, generator, performance=performance)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/bench/epoch_time.csv")
    parser.add_argument("--quick", action="store_true", help="256 images, one round (checks that it runs)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds = 256, 1
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    mean, std = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x_all = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - mean) / std
    y_all = torch.from_numpy(labels)
    fill = (-mean / std).flatten()
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model(args.model, 10, (3, 32, 32))
    ours, ours_nchw = Performance(), Performance(channels_last=False)
    models = {"ours": copy.deepcopy(model).to(memory_format=torch.channels_last), "ours_nchw": copy.deepcopy(model),
              "baseline_workers0": copy.deepcopy(model), "baseline_workers2": copy.deepcopy(model)}
    epochs = {
        "ours": lambda: our_epoch(models["ours"], x_all, y_all, fill, generator, ours),
        "ours_nchw": lambda: our_epoch(models["ours_nchw"], x_all, y_all, fill, generator, ours_nchw),
        "baseline_workers0": lambda: baseline_epoch(models["baseline_workers0"], images, labels, 0),
        "baseline_workers2": lambda: baseline_epoch(models["baseline_workers2"], images, labels, 2),
    }
    medians = interleaved_medians(epochs, args.rounds)
    print(f"{args.model}, {args.images} CIFAR-shaped images, batch 128, {args.threads} training thread(s), "
          f"median of {args.rounds} interleaved epochs")
    for name, seconds in medians.items():
        print(f"  {name:18s} {seconds:7.2f} s   ours/this = {medians['ours'] / seconds:.2f}")
    write_rows(args.out, [{"loop": name, "model": args.model, "images": args.images, "threads": args.threads,
                           "median_seconds": round(seconds, 3), "ours_over_this": round(medians["ours"] / seconds, 3)}
                          for name, seconds in medians.items()])


if __name__ == "__main__":
    main()
