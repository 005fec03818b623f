"""The SLURM path against a real single-node SLURM (tests/slurm/cluster.sh): the smoke config through
`--profile profiles/slurm-test`, a failing seed that is rerun alone, and SIGTERM preemption.

In CI (CI=true) SLURM is installed and must work: any problem fails the test loudly. Elsewhere the
tests are skipped, with the reason printed, when SLURM is not installed or we are not root.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import in_ci
from workflow_helpers import BIN, ROOT, snakemake, table_numbers, write_config

pytestmark = pytest.mark.workflow
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
PROFILE = ["--profile", str(ROOT / "profiles" / "slurm-test")]
SMALL_JOBS = {"mem_mb_per_run": 1000}  # four jobs at once on the test node (12 GB declared)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if in_ci():
        subprocess.run(["bash", str(CLUSTER), "install"], check=True)
    elif os.geteuid() != 0 or not shutil.which("slurmctld") or not shutil.which("munged"):
        reason = "SLURM tests need root and Debian's slurm-wlm + munge (run tests/slurm/cluster.sh install)"
        print(f"\nskipping: {reason}")
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True)
    assert started.returncode == 0, f"SLURM did not start:\n{started.stdout}\n{started.stderr}"
    env = {"SLURM_CONF": str(state / "slurm.conf"), "PATH": f"{state / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    yield env
    subprocess.run(["bash", str(CLUSTER), "stop", str(state)], check=False)


def metrics_mtimes(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.glob("runs/**/metrics.json")}


def test_smoke_config_through_slurm_with_a_failed_seed_rerun_alone(slurm, smoke_run, tmp_path):
    reference_dir, _, _ = smoke_run
    failing = "digits/resnet8/resnet-e3/ls-alpha0.9/seed1"  # a run no other run depends on
    write_config(tmp_path, fail_runs={failing: 1}, cluster=SMALL_JOBS)
    results = tmp_path / "results"

    first = snakemake(tmp_path, *PROFILE, env=slurm, check=False)
    output = first.stdout + first.stderr
    assert first.returncode != 0
    assert "Tables not produced: 1 run(s) have not finished" in output and failing in output
    assert "failure injected at epoch 1" in (results / "runs" / failing / "train.log").read_text()
    # the table that needs the failed run is refused; the others are built
    assert not (results / "tables" / "table2.csv").exists()
    assert (results / "tables" / "table3.csv").exists() and (results / "tables" / "table6.csv").exists()
    finished = metrics_mtimes(results)
    assert len(finished) == 54 - 1  # every other run of the smoke DAG finished (--keep-going)

    partial = snakemake(tmp_path, *PROFILE, "--config", "allow_missing_seeds=True", env=slurm)
    table = table_numbers(results, "table2").set_index(["group", "method"])
    assert table.loc[("ResNet8", "LS"), "n"] == 1 and (table.n.drop(("ResNet8", "LS")) == 2).all()
    assert "Missing runs (1)" in (results / "tables" / "table2.md").read_text()
    assert metrics_mtimes(results) == finished, partial.stdout[-2000:]  # nothing retrained

    write_config(tmp_path, cluster=SMALL_JOBS)  # the failure is gone from the config
    snakemake(tmp_path, *PROFILE, env=slurm)
    after = metrics_mtimes(results)
    assert set(after) - set(finished) == {f"runs/{failing}/metrics.json"}
    assert {k: v for k, v in after.items() if k in finished} == finished  # others untouched
    for name in ("table2", "table3", "table6"):
        ours, reference = table_numbers(results, name), table_numbers(reference_dir / "results", name)
        assert ours.reset_index(drop=True).equals(reference.reset_index(drop=True)), name


def test_sigterm_preemption_under_slurm_resumes_to_identical_metrics(slurm, tmp_path):
    budgets = {"resnet": {"epochs": 40, "batch_size": 128, "lr": 0.1, "lr_milestones": [0.5, 0.75]}}
    tables = {"table2": {"title": "one run", "dataset": "digits", "methods": ["CE"],
                         "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet"}]}}
    write_config(tmp_path, seeds=[0], budgets=budgets, tables=tables, teachers={}, figures={}, analyses={},
                 cluster=SMALL_JOBS)
    run_dir = tmp_path / "results" / "runs" / "digits" / "resnet8" / "resnet-e40" / "ce" / "seed0"
    env = {**os.environ, **slurm, "PATH": f"{BIN}{os.pathsep}{slurm['PATH']}"}
    cmd = [str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), *PROFILE]
    workflow = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "checkpoint.pt").exists() and workflow.poll() is None:
        time.sleep(0.2)
    if not (run_dir / "checkpoint.pt").exists():
        workflow.kill()
        raise AssertionError(f"the training job never wrote a checkpoint:\n{workflow.communicate()[0][-4000:]}")
    job_ids = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True).stdout.split()
    assert len(job_ids) == 1
    subprocess.run(["scancel", "--signal=TERM", "--full", job_ids[0]], env=env, check=True)
    log, _ = workflow.communicate(timeout=600)
    assert workflow.returncode == 0, log[-4000:]
    train_log = (run_dir / "train.log").read_text()
    assert "resuming after epoch" in train_log, train_log[-2000:]

    from introspect.plan import build_plan, load_config
    from introspect.train import RunSpec, train

    plan = build_plan(load_config(tmp_path / "config.yaml"))
    spec = plan.runs["digits/resnet8/resnet-e40/ce/seed0"].run_spec()
    straight = train(spec, tmp_path / "straight")
    preempted = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_acc_final", "val_acc_final", "train_acc_final", "test_acc_best_val", "epochs"):
        assert preempted[key] == straight[key], key
