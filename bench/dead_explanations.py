"""Share of all-zero Grad-CAM maps of the default benchmark's conv models, by input size and epoch.

LE's Stage 2 learns from the model's own all-class Grad-CAM maps; a map that is zero everywhere (the ReLU
of a weighted sum that is negative at every position) carries no class-similarity information. The true
class's map is the reference of LE's targets (all zero: they fall back to label smoothing); at the last
stage it cannot die while the true logit exceeds its bias (its pre-ReLU values sum to H*W*(z_y - b_y)),
while the classes the network rejects often have negative evidence at all of a 3x3 map's positions. This
trains each model with the default budget's SGD settings (plain CE, the LE warm-up) and, after each epoch,
counts the maps of the validation images (train-mode explanations, as the LE step computes them) whose
every pixel is zero: of all classes' maps, and of the true class's.

    python bench/dead_explanations.py --sizes 9 16 --layers last stages.1 --models resnet8 resnet14 --out /tmp/dead.csv
"""
from __future__ import annotations

import argparse

import common  # noqa: F401  (pins the CPU kernels before torch loads)

# isort: split
import torch
import torch.nn.functional as F

from common import write_rows
from introspect.data import load_dataset
from introspect.explain import explain
from introspect.models import build_model


def dead_shares(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, layer: str | None,
                batch: int = 128) -> tuple[float, float]:
    dead_all = dead_true = 0
    for start in range(0, len(y), batch):
        maps = explain(model, x[start:start + batch], "grad_cam", layer=layer)  # (B, K, H, W)
        zero = maps.flatten(2).abs().amax(dim=2) == 0  # (B, K)
        dead_all += int(zero.sum())
        dead_true += int(zero[torch.arange(len(zero)), y[start:start + batch]].sum())
    return dead_all / (len(y) * zero.shape[1]), dead_true / len(y)


def run(model_name: str, size: int, epochs: int, seed: int, layer: str | None) -> list[dict]:
    torch.manual_seed(seed)
    data = load_dataset("digits", val_fraction=0.15, test_fraction=0.2, image_size=size, split_seed=seed,
                        test_seed=seed)
    model = build_model(model_name, data.num_classes, data.input_shape)
    # the default config's `resnet` budget: lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, /10 at 50% and 75%
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    milestones = [int(epochs * 0.5), int(epochs * 0.75)]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(data.train))
        for start in range(0, len(order), 128):
            idx = order[start:start + 128]
            loss = F.cross_entropy(model(data.train.x[idx]), data.train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        shares = dead_shares(model, data.val.x, data.val.y, layer)
        model.eval()
        with torch.no_grad():
            acc = float((model(data.val.x).argmax(1) == data.val.y).float().mean()) * 100
        cam = explain(model, data.val.x[:1], "grad_cam", layer=layer)
        rows.append({"model": model_name, "image_size": size, "layer": layer or "last stage", "seed": seed,
                     "epoch": epoch, "cam_size": "x".join(map(str, cam.shape[-2:])),
                     "dead_all_classes": round(shares[0], 4), "dead_true_class": round(shares[1], 4),
                     "val_acc": round(acc, 2)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 12, 16])
    parser.add_argument("--models", nargs="+", default=["resnet8", "resnet14"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", nargs="+", default=["last"],
                        help="explained layers: 'last' (the model's explanation layer) or a dotted submodule name")
    parser.add_argument("--out", default="bench/results/dead_explanations.csv")
    parser.add_argument("--quick", action="store_true", help="one model, size and epoch (CI: the script still runs)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.models, args.epochs, args.layers = [9], ["resnet8"], 1, ["last", "stages.1"]
    torch.set_num_threads(args.threads)
    layers = [None if layer == "last" else layer for layer in args.layers]
    rows = [row for model in args.models for size in args.sizes for layer in layers for seed in args.seeds
            for row in run(model, size, args.epochs, seed, layer)]
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
