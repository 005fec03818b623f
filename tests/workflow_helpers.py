"""Running the workflow from tests: `snakemake` in a temporary directory on a copy of a config."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from introspect.config.model import load_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def write_config(workdir: Path, base: str = "smoke.yaml", **changes) -> dict:
    config = load_config(ROOT / "config" / base)
    config.update(results_dir=str(workdir / "results"), reported_results=str(ROOT / "config" / "reported_results.csv"))
    config.update(changes)
    if "claims" in changes and "claim_settings" not in changes:  # the test's claims only, none of the catalogue's
        config["claim_settings"] = {k: v for k, v in config.get("claim_settings", {}).items()
                                    if k not in ("catalogue", "only")}
    for key in ("catalogue", "cost_config"):  # relative to the checkout; snakemake runs in workdir
        if "/" in config.get("claim_settings", {}).get(key, ""):  # a path, not a packaged catalogue's name
            config["claim_settings"][key] = str(ROOT / config["claim_settings"][key])
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def snakemake(workdir: Path, *args: str, env: dict | None = None, check: bool = True,
              timeout: int = 1500, cwd: Path | None = None, overlays: tuple[Path, ...] = ()
              ) -> subprocess.CompletedProcess:
    """``overlays``: config files given after the workdir's config.yaml (merged over it)."""
    environment = {**os.environ, **(env or {})}
    environment["PATH"] = f"{BIN}{os.pathsep}{environment['PATH']}"
    cmd = [str(BIN / "snakemake"), *args, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *map(str, overlays)]
    result = subprocess.run(cmd, env=environment, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def latest_log(workdir: Path) -> str:
    """The log file of the last Snakemake call (not a dry run: it writes none) in ``workdir``: every job's block,
    which the terminal no longer shows (introspect.cluster.terminal)."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))  # named by their start time
    return logs[-1].read_text(errors="replace") if logs else ""


def views_dir(workdir: Path, config: dict) -> Path:
    """Where a config's tables, stats, figures and claims go (results_dir/<its name>/)."""
    return workdir / "results" / config.get("name", "default")


def table_numbers(views: Path, name: str) -> pd.DataFrame:
    table = pd.read_csv(views / "tables" / f"{name}.csv")
    return table[["group", "method", "n", "mean", "std", "seeds", "values"]].sort_values(["group", "method"])


def job_counts(dry_run: str) -> dict[str, int]:
    """Rule -> number of jobs, from the "Job stats" table that `snakemake -n` prints (with its "total")."""
    lines = dry_run.split("Job stats:", 1)[1].splitlines()
    counts = {}
    for line in lines[3:]:  # after the header and its rule line
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        counts[fields[0]] = int(fields[1])
    return counts


def catalogue_claims(*names: str) -> list[dict]:
    """Claims of the packaged catalogue of the paper's claims, by name, as a config's own ``claims:`` items."""
    from introspect.claims.catalogue import catalogue_path

    entries = yaml.safe_load(catalogue_path("paper").read_text())
    return [entry for name in names for entry in entries if entry["name"] == name]
