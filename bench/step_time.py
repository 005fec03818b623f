"""Training-step time of every method variant over a CE step of the same model, measured in one
process with the variants interleaved (drift in machine load hits all alike); median over rounds.

    python bench/step_time.py [--rounds 20] [--threads 1] [--only resnet8] [--batch 16] [--quick]
    python bench/step_time.py --layouts [--rounds 8]

Goals (issue 6): LE(Grad-CAM) <= 1.10 x CE; LE with input-gradient explainers <= 3 x CE on mlp1024 at
batch 16. Every LE variant runs its all-class backward both ways (``loop``, the CPU's default, and
``vmap``), and a line per explainer gives the ratio vmap/loop.
Steps run as the training loop runs them by default (channels_last weights and inputs).
``--layouts`` instead times CE, LE and KD steps of every conv model at CIFAR's 32px and the default
config's 9px digits in both memory layouts (why channels_last is the default). Prints figures and
writes results/bench/step_time.csv (or layout.csv); asserts nothing.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import common  # noqa: F401  (pins the CPU kernels before torch loads)

# isort: split
import torch

from common import interleaved_medians, write_rows
from introspect.data import Dataset, Split
from introspect.explain import EXPLAINERS
from introspect.runs.spec import Performance, RunSpec
from introspect.train.probe import StepRunner

CIFAR, MNIST, DIGITS9 = (3, 32, 32), (1, 28, 28), (1, 9, 9)
BACKWARD = "batched_backward"
CASES = [  # model, input shape, batch size, whether the distillation variants apply
    ("resnet14", CIFAR, 128, True),
    ("resnet8", CIFAR, 128, True),
    ("mlp1024", MNIST, 16, False),
    ("mlp1024", MNIST, 128, False),
]


def variants(model_name: str, distillation: bool) -> dict[str, tuple[dict, str | None]]:
    """Label -> (method spec, teacher model or None). LE runs its all-class backward both ways: ``loop``
    (autograd's is_grads_batched, the CPU's default) and ``vmap`` (torch.vmap, CUDA's default)."""
    explainers = EXPLAINERS if model_name.startswith("resnet") else ("grad", "grad_input", "guided_bp")
    out = {"CE": ({"name": "ce"}, None)}
    out.update({f"LE({e})": ({"name": "le", "explainer": e}, None) for e in explainers})
    out.update({f"LE({e}) vmap": ({"name": "le", "explainer": e, BACKWARD: "vmap"}, None) for e in explainers})
    if distillation:
        out.update({
            "KD (ResNet26 teacher)": ({"name": "kd"}, "resnet26"),
            "e2KD (ResNet26 teacher)": ({"name": "e2kd", "gamma": 1.0}, "resnet26"),
            "DML (two networks)": ({"name": "dml"}, None),
        })
    return out


def make_runner(model_name: str, shape, batch: int, method_spec: dict, teacher_name: str | None,
                performance: Performance | None = None, threads: int = 1):
    """A timed step of the variant, set up as training sets a run up (:class:`StepRunner`), on synthetic
    images; colour ones augmented as CIFAR's are (so a teacher runs every step, as on CIFAR)."""
    performance = performance or Performance()
    if BACKWARD in method_spec:  # not a method hyper-parameter: the step's batched backward
        performance = replace(performance, batched_backward=method_spec[BACKWARD])
    method = {k: v for k, v in method_spec.items() if k != BACKWARD}
    spec = RunSpec.from_dict({"run_id": "step_time", "dataset": {"name": "cifar10"}, "model": model_name,
                              "method": method, "seed": 0, "budget": {"epochs": 1, "batch_size": batch, "lr": 0.01},
                              "performance": performance.to_dict()})
    generator = torch.Generator().manual_seed(0)
    split = Split(torch.randn(batch, *shape, generator=generator), torch.randint(0, 10, (batch,), generator=generator))
    augment = "crop_flip" if shape[0] == 3 else "none"  # CIFAR is augmented, MNIST and the digits are not
    data = Dataset("synthetic", split, split, split, 10, [str(i) for i in range(10)], augment,
                   torch.full((shape[0],), -1.0))
    runner = StepRunner(spec, data, teacher_model=teacher_name, threads=threads)

    def run() -> float:
        start = time.perf_counter()
        runner()
        return time.perf_counter() - start

    return run


def compare_layouts(rounds: int, threads: int, out: str) -> None:
    print(f"{'model':9s} {'input':>6s} {'step':22s} {'NCHW ms':>8s} {'NHWC ms':>8s} {'NHWC/NCHW':>9s}")
    steps = {"CE": ({"name": "ce"}, None), "LE(grad_cam)": ({"name": "le", "explainer": "grad_cam"}, None),
             "KD (ResNet26 teacher)": ({"name": "kd"}, "resnet26")}
    rows = []
    for model_name in ("resnet8", "resnet14", "resnet26", "cnn6", "cnn8", "cnn10"):
        for shape in (CIFAR, DIGITS9):
            for label, (spec, teacher) in steps.items():
                runners = {layout: make_runner(model_name, shape, 128, spec, teacher,
                                               Performance(channels_last=layout == "NHWC"), threads)
                           for layout in ("NCHW", "NHWC")}
                medians = interleaved_medians(runners, rounds, warmup=3)
                ratio = medians["NHWC"] / medians["NCHW"]
                size = f"{shape[1]}px"
                print(f"{model_name:9s} {size:>6s} {label:22s} {1e3 * medians['NCHW']:8.1f} "
                      f"{1e3 * medians['NHWC']:8.1f} {ratio:9.2f}", flush=True)
                rows.append({"model": model_name, "input": size, "batch": 128, "step": label,
                             "nchw_ms": round(1e3 * medians["NCHW"], 2), "nhwc_ms": round(1e3 * medians["NHWC"], 2),
                             "nhwc_over_nchw": round(ratio, 3), "rounds": rounds, "threads": threads})
    write_rows(out, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=None, help="only this model")
    parser.add_argument("--batch", type=int, default=None, help="every model at this batch size")
    parser.add_argument("--layouts", action="store_true", help="compare NCHW and channels_last steps")
    parser.add_argument("--out", default=None, help="CSV (default results/bench/step_time.csv or layout.csv)")
    parser.add_argument("--quick", action="store_true", help="one round, ResNet8 at batch 16 (checks that it runs)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.only, args.batch = 1, args.only or "resnet8", args.batch or 16
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.rounds} interleaved rounds")
    if args.layouts:
        compare_layouts(args.rounds, args.threads, args.out or "results/bench/layout.csv")
        return
    print(f"{'model':9s} {'batch':>5s} {'variant':26s} {'ms':>8s} {'x CE':>6s}")
    rows = []
    cases = [(m, shape, args.batch or batch, distillation) for m, shape, batch, distillation in CASES]
    for model_name, shape, batch, distillation in dict.fromkeys(cases):  # --batch may repeat a case
        if args.only and model_name != args.only:
            continue
        runners = {label: make_runner(model_name, shape, batch, spec, teacher, threads=args.threads)
                   for label, (spec, teacher) in variants(model_name, distillation).items()}
        medians = interleaved_medians(runners, args.rounds, warmup=3)
        for label, seconds in medians.items():
            ms = 1e3 * seconds
            ratio = seconds / medians["CE"]
            print(f"{model_name:9s} {batch:5d} {label:26s} {ms:8.1f} {ratio:6.2f}")
            rows.append({"model": model_name, "batch": batch, "variant": label, "median_ms": round(ms, 2),
                         "ratio_to_ce": round(ratio, 3), "rounds": args.rounds, "threads": args.threads})
        for label in [label for label in medians if label.endswith(" vmap")]:
            loop = label.removesuffix(" vmap")
            ratio = medians[label] / medians[loop]
            print(f"{model_name:9s} {batch:5d} {loop:26s} batched backward vmap/loop {ratio:.2f}")
    write_rows(args.out or "results/bench/step_time.csv", rows)


if __name__ == "__main__":
    main()
