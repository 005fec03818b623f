"""Planning and aggregation cost: `snakemake -n` on the paper config, and one table aggregated over
2,000 synthetic run directories. Prints figures and writes results/bench/planning.csv.

    python bench/planning.py [--quick] [--out results/bench/planning.csv]

Goals (issue 6): planning <= 10 s, aggregation of 2,000 runs <= 5 s. Planning is timed twice with a
fresh registry catalog cache (introspect.config.registry_facts): first as after an edit to the package, then warm.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import write_rows  # noqa: E402
from introspect.analysis.tables import write_table  # noqa: E402
from introspect.config.model import load_config  # noqa: E402
from introspect.plan.views import Cell, TableSpec  # noqa: E402
from introspect.runs.record import ResultsLayout  # noqa: E402


def time_paper_plan(workdir: Path, cache: Path) -> float:
    (workdir / "config.yaml").write_text(yaml.safe_dump(load_config(ROOT / "config" / "paper.yaml")))  # base resolved
    snakemake = Path(sys.executable).parent / "snakemake"
    start = time.perf_counter()
    subprocess.run([str(snakemake), "-n", "--cores", "1", "--snakefile", str(ROOT / "Snakefile"), "--directory",
                    str(workdir), "--configfile", str(workdir / "config.yaml"), "--config",
                    f"results_dir={workdir / 'results'}",
                    f"reported_results={ROOT / 'config' / 'reported_results.csv'}"],
                   check=True, capture_output=True, env={**os.environ, "INTROSPECT_CACHE_DIR": str(cache)})
    return time.perf_counter() - start


def time_aggregation(workdir: Path, runs: int = 2000, seeds: int = 100) -> float:
    layout = ResultsLayout(workdir)
    cells = []
    for c in range(runs // seeds):
        ids = []
        for seed in range(seeds):
            run_id = f"cell{c}/seed{seed}"
            files = layout.run(run_id)
            files.directory.mkdir(parents=True)
            accuracy = 90 + (c + seed) % 7 / 10  # every metric a table reads (cells.collect_cells)
            files.metrics.write_text(json.dumps({"seed": seed, "test_acc_final": accuracy, "run_id": run_id,
                                                 "test_acc_max": accuracy + 0.2, "n_test": 10000,
                                                 "spec": {"run_id": run_id}}))
            ids.append(f"cell{c}/seed{seed}")
        cells.append(Cell(f"M{c // 5}", f"method{c % 5}", "resnet14", "cifar10", ids, list(range(seeds))))
    spec = TableSpec("bench", "bench", [f"method{i}" for i in range(5)], cells, str(workdir),
                     compare_to=["method4"], metric="accuracy", layout="models_as_rows", baseline="CE",
                     other_implementations=False)
    start = time.perf_counter()
    write_table(spec, ROOT / "config" / "reported_results.csv")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 run directories, the warm plan only")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "planning.csv"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plan_dir, agg_dir, cache = Path(tmp) / "plan", Path(tmp) / "agg", Path(tmp) / "cache"
        plan_dir.mkdir()
        agg_dir.mkdir()
        runs = 200 if args.quick else 2000
        figures = {}  # the first plan after an edit to the package imports torch to catalogue the registries
        if not args.quick:
            figures["snakemake -n on config/paper.yaml, registries catalogued (s)"] = time_paper_plan(plan_dir, cache)
        cached = "" if args.quick else ", catalog cached"
        figures[f"snakemake -n on config/paper.yaml{cached} (s)"] = time_paper_plan(plan_dir, cache)
        figures[f"aggregate one table over {runs:,} run directories (s)"] = time_aggregation(agg_dir, runs,
                                                                                          seeds=min(100, runs // 20))
    for name, seconds in figures.items():
        print(f"{name:62s} {seconds:6.2f}")
    write_rows(args.out,
               [{"measure": name, "seconds": round(seconds, 3)} for name, seconds in figures.items()])


if __name__ == "__main__":
    main()
