"""End-to-end wall time of whole workflows on this machine: `snakemake --cores N` on a config in a fresh
temporary directory (every run trained from scratch), with and without the warm local worker.
Prints figures and writes results/bench/workflow_time.csv.

    python bench/workflow_time.py [--configs smoke config] [--cores 2] [--no-worker-too] [--quick]

Goal (issue 3): the default config in <= 15 minutes on 2 cores, the smoke config in <= 3 minutes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import write_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from introspect.config.model import load_config  # noqa: E402
from introspect.plan.build import build_plan  # noqa: E402
from introspect.runs.loading import read_run  # noqa: E402
from introspect.runs.record import ResultsLayout  # noqa: E402


def load(config_name: str) -> dict:
    """A shipped config, or `quick`: the smoke config cut to Table 2's CE runs (a check that this runs)."""
    if config_name != "quick":
        return load_config(ROOT / "config" / f"{config_name}.yaml")
    config = load_config(ROOT / "config" / "smoke.yaml")
    config["tables"] = {"table2": {**config["tables"]["table2"], "methods": ["CE"], "compare_to": []}}
    config.update(figures={}, analyses={}, claims=[], teachers={})
    return config


def run(config_name: str, cores: int, worker: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{config_name}-") as tmp:
        workdir = Path(tmp)
        config = load(config_name)
        config.update(results_dir=str(workdir / "results"), local_worker=worker,
                      reported_results=str(ROOT / "config" / "reported_results.csv"))
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        snakemake = Path(sys.executable).parent / "snakemake"
        start = time.perf_counter()
        result = subprocess.run([str(snakemake), "--cores", str(cores), "--snakefile", str(ROOT / "Snakefile"),
                                 "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")],
                                capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{config_name}: snakemake failed\n{result.stderr[-3000:]}")
        layout = ResultsLayout(workdir / "results")
        plan = build_plan(config)
        runs = [read_run(layout, run_id).metrics for run_id in plan.runs]
        training = sum(r["wall_time_seconds"] for r in runs)
    return {"config": config_name, "cores": cores, "local_worker": worker, "wall_seconds": round(seconds, 1),
            "training_runs": len(runs), "training_seconds_summed": round(training, 1),
            "fixed_cost_per_run_seconds": round((cores * seconds - training) / len(runs), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", nargs="+", default=["smoke", "config"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--no-worker-too", action="store_true", help="also time each config without the worker")
    parser.add_argument("--out", default="results/bench/workflow_time.csv")
    parser.add_argument("--quick", action="store_true", help="only a two-run cut of the smoke config")
    args = parser.parse_args()
    if args.quick:
        args.configs = ["quick"]
    rows = []
    for name in args.configs:
        for worker in ([True, False] if args.no_worker_too else [True]):
            row = run(name, args.cores, worker)
            print(f"{name:8s} worker={str(worker):5s} {row['wall_seconds']:7.1f} s wall, {row['training_runs']} runs, "
                  f"{row['training_seconds_summed']:.0f} s of training, fixed cost per run "
                  f"{row['fixed_cost_per_run_seconds']:.2f} s (cores x wall - training, over runs)", flush=True)
            rows.append(row)
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
