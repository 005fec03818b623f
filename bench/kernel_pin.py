"""What pinning the CPU kernels (introspect.kernels) costs and what it changes, in fresh processes:

- ``pinned``: as every training process runs (the AVX2 kernel set, 1 thread);
- ``forced``: the three variables set to AVX2 by hand, nothing else of introspect's (must equal ``pinned``);
- ``native``: ``INTROSPECT_NATIVE_KERNELS=1`` (the CPU's own kernels, still 1 thread).

Each process trains ResNet-8 with cross-entropy for a few SGD steps from one seed on fixed synthetic CIFAR-shaped
batches and prints the ATen kernel set, a digest of the final weights and the median step time.

    python bench/kernel_pin.py [--steps 20] [--batch 64] [--quick] [--out results/bench/kernel_pin.csv]

Prints one line per mode and the findings (pinned == forced bit for bit; pinned vs native weights; the step-time
ratio pinned / native); writes the CSV. Exits 1 if pinned and forced differ.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def worker(steps: int, batch: int) -> dict:
    """Runs in a fresh process whose environment the parent chose; pins (or not) like the CLI does."""
    import statistics
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common  # noqa: F401  (pins unless INTROSPECT_NATIVE_KERNELS=1 or the variables are set)

    # isort: split
    import torch

    from introspect.methods import build_method
    from introspect.models import build_model
    from introspect.runs.spec import Performance
    from introspect.train.sgd import SGD
    from introspect.train.step import train_step

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("resnet8", 10, (3, 32, 32)).train().to(memory_format=torch.channels_last)
    method = build_method("ce")
    optimizer = SGD(list(model.parameters()), lr=0.05, momentum=0.9, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32, generator=generator), torch.randint(0, 10, (batch,), generator=generator)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(method, model, optimizer, x.clone(), y, 0, 10, generator, performance=Performance())
        times.append(time.perf_counter() - start)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().contiguous().numpy().tobytes())
    return {"kernels": torch.backends.cpu.get_cpu_capability(), "digest": digest.hexdigest()[:16],
            "step_ms": 1e3 * statistics.median(times[1:] or times)}


def run_mode(mode: str, steps: int, batch: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PINNED and k != "INTROSPECT_NATIVE_KERNELS"}
    if mode == "forced":
        env.update(PINNED)
    elif mode == "native":
        env["INTROSPECT_NATIVE_KERNELS"] = "1"
    out = subprocess.run([sys.executable, __file__, "--worker", "--steps", str(steps), "--batch", str(batch)],
                         capture_output=True, text=True, env=env, check=True, timeout=600).stdout
    return {"mode": mode, **json.loads(out.strip().splitlines()[-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="5 steps at batch 16")
    parser.add_argument("--out", default="results/bench/kernel_pin.csv")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch = 5, 16
    if args.worker:
        print(json.dumps(worker(args.steps, args.batch)))
        return 0
    rows = [run_mode(mode, args.steps, args.batch) for mode in ("pinned", "forced", "native")]
    for r in rows:
        print(f"{r['mode']:7s} kernels {r['kernels']:8s} weights {r['digest']}  step {r['step_ms']:.1f} ms")
    pinned, forced, native = rows
    same = pinned["digest"] == forced["digest"]
    print(f"pinned == forced AVX2: {'identical' if same else 'DIFFER'}")
    print(f"pinned vs native ({native['kernels']}): {'identical' if pinned['digest'] == native['digest'] else 'differ'}"
          f" after {args.steps} steps")
    print(f"step time pinned / native: {pinned['step_ms'] / native['step_ms']:.2f}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import write_rows

    write_rows(args.out, [{**r, "steps": args.steps, "batch": args.batch} for r in rows])
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
