"""Check a GPU node before a campaign, in at most 5 minutes (`--quick`: under 2 minutes on a CPU):

1. one training step of every method and explainer on the device, under
   ``torch.cuda.set_sync_debug_mode("error")`` on CUDA (a host sync in the step fails it);
2. epoch time per model at the paper's batch sizes (CIFAR-10 45,000 training images at 128 for the
   ResNets and CNNs, MNIST 54,000 at 16 for the MLP), extrapolated from timed steps;
3. two identical 2-epoch runs (digits, ResNet8) compared for determinism (metrics and weights);
4. a run stopped after epoch 1 and resumed from its checkpoint, compared with an uninterrupted one;
5. packing throughput: 1, 2, 4, 8 processes training at once on the one device (what
   ``cluster.runs_per_gpu`` does), in steps per second summed over them.

    python bench/gpu_check.py [--device cuda] [--quick] [--out results/bench/gpu_check.csv]

Prints one table and writes the CSV; exits 1 if a check failed (steps, determinism, resume).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import write_rows  # noqa: E402  (pins the CPU kernels before torch loads)

# isort: split
import torch  # noqa: E402

from introspect.cluster.preflight import PreflightError  # noqa: E402
from introspect.data import Dataset, Split  # noqa: E402
from introspect.explain import EXPLAINERS  # noqa: E402
from introspect.methods import available_methods, method_class  # noqa: E402
from introspect.runs.spec import RunSpec  # noqa: E402
from introspect.train.device import sync_debug_errors, synchronize  # noqa: E402
from introspect.train.probe import StepRunner  # noqa: E402

CIFAR, MNIST = (3, 32, 32), (1, 28, 28)
EPOCH_IMAGES = {CIFAR: 45_000, MNIST: 54_000}
PAPER_MODELS = [("resnet8", CIFAR, 128), ("resnet14", CIFAR, 128), ("resnet20", CIFAR, 128),
                ("resnet26", CIFAR, 128), ("cnn6", CIFAR, 128), ("cnn8", CIFAR, 128), ("cnn10", CIFAR, 128),
                ("mlp1024", MNIST, 16)]
QUICK_MODELS = [("resnet8", CIFAR, 128), ("mlp1024", MNIST, 16)]


def synthetic(shape, n: int, device: str) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    split = Split(torch.randn(n, *shape, generator=generator), torch.randint(0, 10, (n,), generator=generator))
    return Dataset("synthetic", split, split, split, 10, [str(i) for i in range(10)], "none").to(device)


def step_spec(model: str, method: dict, batch: int) -> RunSpec:
    return RunSpec.from_dict({"run_id": "gpu_check", "dataset": {"name": "synthetic"}, "model": model,
                              "method": method, "seed": 0, "eval_batch_size": 256,
                              "budget": {"epochs": 2, "batch_size": batch, "lr": 0.01}})


def step_variants() -> list[tuple[str, dict, str | None]]:
    """Every registered method (its defaults), LE and LE-Permut with every explainer; teachers: ResNet14."""
    variants = []
    for name in available_methods():
        cls = method_class(name)
        explainers = EXPLAINERS if "explainer" in cls.__dataclass_fields__ else (None,)
        for explainer in explainers:
            method = {"name": name, **({"explainer": explainer, "warmup_epochs": 0} if explainer else {})}
            label = f"{name}({explainer})" if explainer else name
            variants.append((label, method, "resnet14" if cls.needs_teacher else None))
    return variants


def check_steps(device: str, quick: bool) -> list[dict]:
    rows = []
    data = synthetic(CIFAR, 32 if quick else 128, device)
    for label, method, teacher in step_variants():
        spec = step_spec("resnet8", method, 32 if quick else 128)
        try:
            step = StepRunner(spec, data, device, teacher_model=teacher, epoch=0)
            with sync_debug_errors(device):
                step()
            synchronize(device)
            rows.append(row("step", label, "ok", "", True))
        except Exception as error:  # every failure is a row, not the end of the check
            rows.append(row("step", label, f"{type(error).__name__}: {' '.join(str(error).split())[:120]}", "", False))
    return rows


def epoch_times(device: str, quick: bool) -> list[dict]:
    rows = []
    for model, shape, batch in QUICK_MODELS if quick else PAPER_MODELS:
        data = synthetic(shape, batch, device)
        step = StepRunner(step_spec(model, {"name": "ce"}, batch), data, device, epoch=0)
        step()
        steps = 2 if quick else 20
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        seconds = (time.perf_counter() - start) / steps * (EPOCH_IMAGES[shape] // batch)
        rows.append(row("epoch_seconds", f"{model} batch {batch}", f"{seconds:.1f}", "s (CE, extrapolated)", True))
    return rows


def train_digits(out: Path, device: str, epochs: int, fail_at_epoch: int | None = None) -> dict:
    from introspect.train import train

    spec = RunSpec.from_dict({"run_id": f"gpu_check/{out.name}", "model": "resnet8", "seed": 0,
                              "method": {"name": "ce"}, "dataset": {"name": "digits", "image_size": 8},
                              "budget": {"epochs": epochs, "batch_size": 128, "lr": 0.1},
                              "fail_at_epoch": fail_at_epoch})
    return train(spec, out, device=device)


def same_run(a: Path, b: Path, metrics_a: dict, metrics_b: dict) -> bool:
    keys = ("test_acc_final", "val_acc_final", "train_acc_final", "test_acc_max")
    weights_a = torch.load(a / "model.pt", weights_only=False)["model"]
    weights_b = torch.load(b / "model.pt", weights_only=False)["model"]
    return all(metrics_a[k] == metrics_b[k] for k in keys) and all(
        torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def determinism_and_resume(device: str, workdir: Path) -> list[dict]:
    from introspect.train import InjectedFailure

    first, second = (train_digits(workdir / name, device, 2) for name in ("first", "second"))
    same = same_run(workdir / "first", workdir / "second", first, second)
    rows = [row("determinism", "two 2-epoch runs", "identical" if same else "DIFFER", "", same)]
    try:
        train_digits(workdir / "resumed", device, 2, fail_at_epoch=1)
    except InjectedFailure:
        pass
    resumed = train_digits(workdir / "resumed", device, 2)
    same = same_run(workdir / "first", workdir / "resumed", first, resumed)
    rows.append(row("resume", "stopped after epoch 1, resumed", "identical" if same else "DIFFER", "", same))
    return rows


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
        busy = max(float(out.split()[-1]) for out in outputs)  # slowest worker's stepping time
        rows.append(row("packing", f"{k} run(s) per device", f"{k * steps / busy:.1f}",
                        f"steps/s summed (wall {wall:.1f} s with start-up)", True))
    return rows


def worker(steps: int, device: str) -> None:
    """One packed 'run': ResNet8 CE steps at batch 128 on CIFAR-shaped data; prints its stepping seconds."""
    torch.set_num_threads(1)
    data = synthetic(CIFAR, 128, device)
    step = StepRunner(step_spec("resnet8", {"name": "ce"}, 128), data, device, epoch=0)
    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    print(f"seconds {time.perf_counter() - start:.6f}")


def row(check: str, item: str, value: str, unit: str, ok: bool) -> dict:
    return {"check": check, "item": item, "value": value, "unit": unit, "ok": ok}


def device_line(device: str) -> str:
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PreflightError("CUDA is not available", device, "run this on a GPU node", 5)
        index = torch.device(device).index or 0
        major, minor = torch.cuda.get_device_capability(index)
        return (f"{torch.cuda.get_device_name(index)} (capability {major}.{minor}), torch {torch.__version__}, "
                f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    return f"CPU ({torch.get_num_threads()} threads), torch {torch.__version__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="fewer steps, models and packing levels")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/bench/gpu_check.csv")
    parser.add_argument("--worker-steps", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_steps is not None:
        worker(args.worker_steps, args.device)
        return 0
    torch.set_num_threads(args.threads)
    try:
        print(device_line(args.device), flush=True)
    except PreflightError as error:
        print(error, file=sys.stderr)
        return 1
    started = time.perf_counter()
    rows = check_steps(args.device, args.quick) + epoch_times(args.device, args.quick)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        rows += determinism_and_resume(args.device, Path(tmp))
    rows += packing(args.device, args.quick)
    print(f"{'check':14s} {'item':32s} {'ok':3s} value")
    for r in rows:
        print(f"{r['check']:14s} {r['item']:32s} {'yes' if r['ok'] else 'NO':3s} {r['value']} {r['unit']}".rstrip())
    print(f"{len(rows)} checks in {time.perf_counter() - started:.0f} s; "
          f"{sum(not r['ok'] for r in rows)} failed")
    write_rows(args.out, rows)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
