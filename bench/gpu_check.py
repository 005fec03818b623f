"""The first thing to run on a GPU node (at most 5 minutes on one GPU; ``--quick`` on a CPU runs in CI).

Every check steps through the trainer's own set-up (:class:`introspect.train.probe.StepRunner`: the device
set-up with deterministic CUDA and fp32 unless TF32 is asked for, the performance options, the data path) on
synthetic data of each dataset's shape:

1. ``step``: one training step of every step kind of the plan (default: the paper config) under its real
   options, on CUDA under ``torch.cuda.set_sync_debug_mode("error")``; its time;
2. ``determinism``: two fresh set-ups of the same kind, two steps each, must give bit-identical weights;
3. ``nondeterministic``: the operations of each kind without a deterministic CUDA kernel, traced from its
   step (:mod:`introspect.train.nondeterminism`) and, on CUDA, the warnings torch gave;
4. ``tf32``: how far one step's weights move when TF32 is turned on (0 on a CPU);
5. ``batched_backward``: LE's all-class backward both ways (vmap, loop): the same weights, and their times;
6. ``resume``: a 2-epoch run stopped after epoch 1 and resumed equals an uninterrupted one;
7. ``packing``: 1, 2, 4, 8 processes training at once on the device (``cluster.runs_per_gpu``), in steps/s
   summed over them and paper ResNet-8 runs per hour.

    python bench/gpu_check.py [--device cuda] [--quick] [--config config/paper.yaml] [--compile inductor]
                              [--tf32] [--out results/bench/gpu_check.csv]

Prints one line per finding and writes the CSV; exits 1 if a check failed. Untested on a GPU so far.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import write_rows  # noqa: E402  (pins the CPU kernels before torch loads)

# isort: split
import torch  # noqa: E402

from introspect.cluster.calibration import step_kinds  # noqa: E402
from introspect.data import Dataset, Split, dataset_source  # noqa: E402
from introspect.plan.build import build_plan, load_config  # noqa: E402
from introspect.runs.spec import RunSpec  # noqa: E402
from introspect.train.device import configure, provenance, sync_debug_errors  # noqa: E402
from introspect.train.nondeterminism import nondeterministic_ops, traced_ops  # noqa: E402
from introspect.train.probe import StepRunner, step_times  # noqa: E402

PAPER_EPOCHS, CIFAR_TRAIN = 160, 45_000  # a paper ResNet run: 160 epochs of CIFAR-10's 45,000 training images


class Kind:
    """One step kind of the plan, as the pre-flight job receives it, with its input shape."""

    def __init__(self, key: str, spec: RunSpec, teacher_model: str | None, epoch: int, shape: tuple[int, ...]):
        self.key, self.spec, self.teacher_model, self.epoch, self.shape = key, spec, teacher_model, epoch, shape


def plan_kinds(config: str, quick: bool, compile_backend: str | None, tf32: bool) -> list[Kind]:
    """Every step kind of the config's plan (``quick``: the first of each method and explainer, batch <= 16),
    its performance options as the plan sets them unless ``--compile``/``--tf32`` override them."""
    plan = build_plan(load_config(config))
    kinds, seen = [], set()
    for key, (kind, run) in sorted(step_kinds(plan).items(), key=lambda item: quick and _cost(item[1][0])):
        if quick and (kind.method, kind.explainer) in seen:
            continue
        seen.add((kind.method, kind.explainer))
        data = {k: v for k, v in run.run_spec_dict().items() if k not in ("teacher", "init_from",
                                                                          "hyperparameters_from")}
        spec = RunSpec.from_dict(data)
        performance = replace(spec.performance, compile=compile_backend or spec.performance.compile,
                              tf32=tf32 or spec.performance.tf32)
        batch = min(spec.budget.batch_size, 16) if quick else spec.budget.batch_size
        spec = replace(spec, budget=replace(spec.budget, batch_size=batch), performance=performance)
        source = dataset_source(spec.dataset.name)
        side = spec.dataset.image_size or source.image_size
        epoch = run.method.get("warmup_epochs", 0) if run.init_from else 0
        kinds.append(Kind(key, spec, kind.teacher_model, epoch, (source.channels, side, side)))
    return kinds


def _cost(kind) -> tuple[int, int]:
    """Smaller networks first (``--quick`` keeps the cheapest kind of each method and explainer)."""
    order = ("mlp1024", "cnn6", "resnet8", "cnn8", "resnet14", "cnn10", "resnet20", "resnet26")
    rank = {name: i for i, name in enumerate(order)}
    return rank.get(kind.model, len(order)), rank.get(kind.teacher_model, -1)


def synthetic(shape: tuple[int, ...], n: int, device: str, augment: str = "none") -> Dataset:
    generator = torch.Generator().manual_seed(0)
    split = Split(torch.randn(n, *shape, generator=generator), torch.randint(0, 10, (n,), generator=generator))
    fill = torch.full((shape[0],), -1.0) if augment != "none" else None
    return Dataset("synthetic", split, split, split, 10, [str(i) for i in range(10)], augment, fill).to(device)


def data_for(kind: Kind, device: str) -> Dataset:
    return synthetic(kind.shape, 2 * kind.spec.budget.batch_size, device, kind.spec.dataset.augment or "none")


def weights(runner: StepRunner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def timed(runner: StepRunner, device: str, steps: int) -> float:
    """Median seconds of ``steps`` steps (each synchronised)."""
    return statistics.median(step_times(runner, device, steps))


def check_kind(kind: Kind, device: str, timed_steps: int) -> list[dict]:
    """The step, its determinism and its non-deterministic operations."""
    data = data_for(kind, device)
    try:
        first = StepRunner(kind.spec, data, device, teacher_model=kind.teacher_model, epoch=kind.epoch)
        with warnings.catch_warnings(record=True) as caught, sync_debug_errors(device):
            warnings.simplefilter("always")
            ops = traced_ops(first)
        seconds = timed(first, device, timed_steps)
        second = StepRunner(kind.spec, data, device, teacher_model=kind.teacher_model, epoch=kind.epoch)
        for _ in range(1 + timed_steps):
            second()
        same = same_weights(weights(first), weights(second))
    except Exception as error:  # every failure is a row, not the end of the check
        return [row("step", kind.key, f"{type(error).__name__}: {' '.join(str(error).split())[:160]}", "", False)]
    rows = [row("step", kind.key, f"{1e3 * seconds:.1f}", f"ms at batch {kind.spec.budget.batch_size}", True),
            row("determinism", kind.key, "identical" if same else "DIFFER", "weights after repeated steps", same)]
    flagged = set(nondeterministic_ops(ops).values())
    flagged |= {str(w.message).split(" does not have a deterministic")[0] for w in caught
                if "deterministic" in str(w.message)}
    if flagged:
        rows.append(row("nondeterministic", kind.key, "; ".join(sorted(flagged)), "no deterministic CUDA kernel",
                        True))
    return rows


def list_nondeterministic(kinds: list[Kind], device: str) -> list[dict]:
    """One traced step of every kind (batch 4): each operation without a deterministic CUDA kernel and the
    kinds that call it (what docs/gpu.md lists)."""
    callers: dict[str, list[str]] = {}
    for kind in kinds:
        spec = replace(kind.spec, budget=replace(kind.spec.budget, batch_size=4))
        small = Kind(kind.key, spec, kind.teacher_model, kind.epoch, kind.shape)
        runner = StepRunner(spec, data_for(small, device), device, teacher_model=kind.teacher_model, epoch=kind.epoch)
        for documented in set(nondeterministic_ops(traced_ops(runner)).values()):
            callers.setdefault(documented, []).append(kind.key)
    return [row("nondeterministic", documented, ", ".join(keys), f"({len(keys)} of {len(kinds)} step kinds)", True)
            for documented, keys in sorted(callers.items())]


def first_kind(kinds: list[Kind], method: str, explainers: tuple[str | None, ...]) -> Kind | None:
    """The first kind of ``method`` with one of ``explainers`` on a convolutional model (or any model)."""
    matching = [k for k in kinds if k.spec.method["name"] == method and k.spec.method.get("explainer") in explainers]
    convolutional = [k for k in matching if k.shape[0] == 3]
    return (convolutional or matching or [None])[0]


def tf32_difference(kinds: list[Kind], device: str) -> list[dict]:
    kind = first_kind(kinds, "ce", (None,))
    if kind is None:
        return []
    moved = {}
    for tf32 in (False, True):
        spec = replace(kind.spec, performance=replace(kind.spec.performance, tf32=tf32))
        runner = StepRunner(spec, data_for(kind, device), device, epoch=kind.epoch)
        runner()
        moved[tf32] = weights(runner)
    difference = max(float((moved[True][k].float() - moved[False][k].float()).abs().max()) for k in moved[True])
    return [row("tf32", kind.key, f"{difference:.3g}", "max |weight difference| after one step, TF32 on vs off",
                True)]


def batched_backward(kinds: list[Kind], device: str, timed_steps: int) -> list[dict]:
    kind = first_kind(kinds, "le", ("grad", "grad_input"))
    if kind is None:
        return []
    seconds, after = {}, {}
    for mode in ("vmap", "loop"):
        spec = replace(kind.spec, performance=replace(kind.spec.performance, batched_backward=mode))
        runner = StepRunner(spec, data_for(kind, device), device, epoch=kind.epoch)
        runner()
        after[mode] = weights(runner)
        seconds[mode] = timed(runner, device, timed_steps)
    same = same_weights(after["vmap"], after["loop"])
    return [row("batched_backward", kind.key, f"vmap {1e3 * seconds['vmap']:.1f} ms, loop {1e3 * seconds['loop']:.1f}"
                f" ms, vmap/loop {seconds['vmap'] / seconds['loop']:.2f}",
                "the same weights" if same else "weights DIFFER", same)]


def resume(device: str, workdir: Path) -> list[dict]:
    from introspect.train import InjectedFailure, train

    def run(name: str, fail_at_epoch: int | None = None) -> dict:
        spec = RunSpec.from_dict({"run_id": f"gpu_check/{name}", "model": "resnet8", "seed": 0,
                                  "method": {"name": "ce"}, "dataset": {"name": "digits", "image_size": 8},
                                  "budget": {"epochs": 2, "batch_size": 128, "lr": 0.1},
                                  "fail_at_epoch": fail_at_epoch})
        return train(spec, workdir / name, device=device)

    straight = run("straight")
    try:
        run("resumed", fail_at_epoch=1)
    except InjectedFailure:
        pass
    resumed = run("resumed")
    keys = ("test_acc_final", "val_acc_final", "train_acc_final")
    same = all(straight[k] == resumed[k] for k in keys) and same_weights(
        torch.load(workdir / "straight" / "model.pt", weights_only=True)["model"],
        torch.load(workdir / "resumed" / "model.pt", weights_only=True)["model"])
    return [row("resume", "resnet8 CE, stopped after epoch 1", "identical" if same else "DIFFER",
                "to the uninterrupted run", same)]


def packing(device: str, quick: bool) -> list[dict]:
    rows, steps = [], 3 if quick else 50
    for k in (1, 2) if quick else (1, 2, 4, 8):
        cmd = [sys.executable, __file__, "--worker-steps", str(steps), "--device", device]
        start = time.perf_counter()
        workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        outputs = [w.communicate()[0] for w in workers]
        wall = time.perf_counter() - start
        if any(w.returncode for w in workers):
            rows.append(row("packing", f"{k} run(s) per device", "a worker failed", "", False))
            continue
        busy = max(float(out.split()[-1]) for out in outputs)  # the slowest worker's stepping time
        per_second = k * steps / busy
        runs_per_hour = per_second * 3600 / (PAPER_EPOCHS * -(-CIFAR_TRAIN // 128))
        rows.append(row("packing", f"{k} run(s) per device", f"{per_second:.1f} steps/s, {runs_per_hour:.2f} "
                        "runs/hour", f"ResNet-8 CE batch 128 (wall {wall:.1f} s with start-up)", True))
    return rows


def worker(steps: int, device: str) -> None:
    """One packed 'run': ResNet-8 CE steps at batch 128 on CIFAR-shaped data; prints its stepping seconds."""
    spec = RunSpec.from_dict({"run_id": "pack", "dataset": {"name": "cifar10"}, "model": "resnet8", "seed": 0,
                              "method": {"name": "ce"}, "budget": {"epochs": 1, "batch_size": 128, "lr": 0.1}})
    runner = StepRunner(spec, synthetic((3, 32, 32), 256, device), device)
    runner()
    print(f"seconds {timed(runner, device, steps) * steps:.6f}")


def row(check: str, item: str, value: str, unit: str, ok: bool) -> dict:
    line = f"{check:17s} {'ok ' if ok else 'NO '} {item}: {value} {unit}".rstrip()
    print(line, flush=True)
    return {"check": check, "item": item, "value": value, "unit": unit, "ok": ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="one kind per method and explainer, batch <= 16, "
                                                            "fewer packing levels (the CPU check CI runs)")
    parser.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"), help="the plan whose kinds run")
    parser.add_argument("--compile", default=None, help="a torch.compile backend for every kind (e.g. inductor)")
    parser.add_argument("--tf32", action="store_true", help="TF32 for every kind (fp32 otherwise)")
    parser.add_argument("--out", default="results/bench/gpu_check.csv")
    parser.add_argument("--list-nondeterministic", action="store_true",
                        help="only trace every step kind and list its operations without a deterministic CUDA kernel")
    parser.add_argument("--worker-steps", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_steps is not None:
        worker(args.worker_steps, args.device)
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: {args.device} is not available (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda}); run it on a GPU node, or with --device cpu --quick", file=sys.stderr)
        return 1
    configure(args.device)  # as every kind's set-up will: the facts below are the ones the steps run with
    facts = provenance(args.device)
    print(", ".join(f"{k} {v}" for k, v in facts.items() if v is not None), flush=True)
    started, timed_steps = time.perf_counter(), 1 if args.quick else 3
    # the list covers every kind (a traced step at batch 4 is cheap), --quick or not
    kinds = plan_kinds(args.config, args.quick and not args.list_nondeterministic, args.compile, args.tf32)
    if args.list_nondeterministic:
        write_rows(args.out, list_nondeterministic(kinds, args.device))
        return 0
    rows = [r for kind in kinds for r in check_kind(kind, args.device, timed_steps)]
    rows += tf32_difference(kinds, args.device) + batched_backward(kinds, args.device, timed_steps)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        rows += resume(args.device, Path(tmp))
    rows += packing(args.device, args.quick)
    failed = sum(not r["ok"] for r in rows)
    print(f"{len(kinds)} step kinds, {len(rows)} findings in {time.perf_counter() - started:.0f} s; {failed} failed")
    write_rows(args.out, rows)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
