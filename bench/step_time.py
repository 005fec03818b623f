"""Time of an LE Stage-2 training step over a CE step, measured in one process with the variants
interleaved (so drift in machine load hits both alike); median over rounds.

    python bench/step_time.py [--rounds 30] [--threads 2]

Goal (issue 2): LE(Grad-CAM) / CE <= 1.10 for resnet14 at batch 128. Prints figures, asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from introspect.methods import build_method
from introspect.models import build_model
from introspect.train.loop import train_step
from introspect.train.sgd import SGD

CASES = [  # model, input shape, batch size, LE explainer
    ("resnet14", (3, 32, 32), 128, "grad_cam"),
    ("resnet8", (3, 32, 32), 128, "grad_cam"),
    ("mlp1024", (1, 28, 28), 16, "grad"),
    ("mlp1024", (1, 28, 28), 128, "grad"),
]


def make_runner(model_name, shape, batch, method):
    torch.manual_seed(0)
    model = build_model(model_name, 10, shape).train()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    generator = torch.Generator().manual_seed(0)

    def run() -> float:
        start = time.perf_counter()
        train_step(method, model, optimizer, x.clone(), y, 10, 10, generator)
        return time.perf_counter() - start

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.rounds} interleaved rounds")
    print(f"{'model':10s} {'batch':>5s} {'explainer':10s} {'CE ms':>8s} {'LE ms':>8s} {'LE/CE':>6s}")
    for model_name, shape, batch, explainer in CASES:
        ce = make_runner(model_name, shape, batch, build_method("ce"))
        le = make_runner(model_name, shape, batch, build_method("le", explainer=explainer))
        for _ in range(3):  # warm-up
            ce(), le()
        ce_times, le_times = [], []
        for _ in range(args.rounds):
            ce_times.append(ce())
            le_times.append(le())
        ce_ms, le_ms = 1e3 * statistics.median(ce_times), 1e3 * statistics.median(le_times)
        print(f"{model_name:10s} {batch:5d} {explainer:10s} {ce_ms:8.1f} {le_ms:8.1f} {le_ms / ce_ms:6.2f}")


if __name__ == "__main__":
    main()
