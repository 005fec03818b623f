"""Driving the workflow through the stand-in SLURM commands (tests/slurm/standin/): the real
`snakemake --profile slurm` and snakemake-executor-plugin-slurm, with sbatch, squeue, sacct, scontrol,
scancel, sinfo and srun answered by tests/slurm/standin/slurm.py, which runs each job on this machine.
Faults (pre-emption, node failure, out-of-memory and time-limit kills, submit limits) are injected
through the state directory's faults.json; see the module docstring of slurm.py.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from workflow_helpers import BIN, ROOT, snakemake, write_config

STANDIN_BIN = ROOT / "tests" / "slurm" / "standin" / "bin"
# `--profile slurm` resolves in the current directory: run with cwd=ROOT. The first status check 1 s
# after a submission (the plugin then waits 10 s longer each time it sees no job end, here at most
# STATUS_CHECK_MAX s, and 1 s again after one ended); the outputs of a finished job are on this machine's
# disk at once.
PROFILE = ("--profile", "slurm", "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "3")
# The head's longest wait between two status checks (introspect.cluster.slurm_status): a job's end is seen
# within seconds rather than after up to a minute of the plugin's back-off.
STATUS_CHECK_MAX = "3"


def standin_env(state: Path, faults: dict | None = None) -> dict[str, str]:
    """The environment of a head that talks to the stand-in SLURM whose state is ``state``."""
    state.mkdir(parents=True, exist_ok=True)
    if faults is not None:
        (state / "faults.json").write_text(json.dumps(faults))
    return {"STANDIN_SLURM": str(state), "SBATCH_PARTITION": "gpu", "INTROSPECT_STATUS_CHECK_MAX": STATUS_CHECK_MAX,
            "PATH": os.pathsep.join([str(STANDIN_BIN), str(BIN), os.environ["PATH"]])}


def submissions(state: Path) -> list[dict]:
    """Every sbatch call so far: args, comment (rule_<rule>[_wildcards_<wildcards>]), time_minutes,
    mem_mb, partition, the job id (None when refused) and whether it was refused."""
    log = state / "submissions.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def jobs(state: Path) -> list[dict]:
    """Every job the stand-in accepted, with its end state (sacct's view)."""
    found = [json.loads(p.read_text()) for p in (state / "jobs").glob("*.json")]
    return sorted(found, key=lambda job: int(job["id"]))


def rule_of(call: dict) -> str:
    return call["comment"].removeprefix("rule_").split("_wildcards_")[0]


def tiny_config(workdir: Path, methods: tuple[str, ...] = ("CE",), seeds: tuple[int, ...] = (0,),
                epochs: int = 1, **changes) -> dict:
    """One table of ResNet8 runs on the digits (one epoch each): a pre-flight, one training job per
    (method, seed), the table and the tests (local rules)."""
    budgets = {"resnet": {"epochs": epochs, "batch_size": 128, "lr": 0.1}}
    tables = {"table2": {"title": "tiny", "dataset": "digits", "methods": list(methods),
                         "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet"}]}}
    settings = dict(seeds=list(seeds), budgets=budgets, tables=tables, teachers={}, figures={}, analyses={},
                    claims=[])
    return write_config(workdir, **{**settings, **changes})


# Seconds a head through the stand-in may take before its test fails: a bound on a hang, not a speed check. A tiny
# config's call takes 1-2 min on an idle 2-core machine and over 5 min at a load average of 20 (the pre-flight
# job alone 96 s); a head that waits on a job for ever still fails, loudly, after this.
HEAD_BUDGET = 1200


def run_workflow(workdir: Path, state: Path, *args: str, check: bool = True, timeout: int = HEAD_BUDGET,
                 env: dict | None = None):
    """`snakemake --profile slurm` on the workdir's config.yaml, against the stand-in at ``state``."""
    return snakemake(workdir, *PROFILE, *args, env={**standin_env(state), **(env or {})}, check=check,
                     timeout=timeout, cwd=ROOT)


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())
