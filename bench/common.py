"""Shared by the bench scripts (run as `python bench/<script>.py`, so this folder is on sys.path).

Importing it pins the CPU kernels as every training process does (:mod:`introspect.kernels`), so the scripts
import it before torch: they time and check the kernels the runs use."""
from __future__ import annotations

import csv
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's package

from introspect.kernels import pin_kernels  # noqa: E402

pin_kernels()


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write dict rows as a CSV (columns from the first row) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out}")


def interleaved_medians(runners: dict[str, Callable[[], float]], rounds: int, warmup: int = 0) -> dict[str, float]:
    """Median seconds per runner (each returns its own seconds) over rounds in which every runner runs
    once, in turn, so drift in machine load hits all alike."""
    for _ in range(warmup):
        for run in runners.values():
            run()
    times = {label: [] for label in runners}
    for _ in range(rounds):
        for label, run in runners.items():
            times[label].append(run())
    return {label: statistics.median(samples) for label, samples in times.items()}
