"""The SLURM path against a real single-node SLURM with accounting (tests/slurm/cluster.sh), run as the
README says: `snakemake --profile slurm` from the repository root, the partition from SBATCH_PARTITION.
The smoke config with a failing seed that is rerun alone, the sbatch requests of its jobs, and SIGTERM
preemption of a job on a GPU shard. Only the status polling is made faster on the command line.

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

from conftest import in_ci
from workflow_helpers import BIN, ROOT, snakemake, table_numbers, write_config

pytestmark = pytest.mark.workflow
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
# `slurm` resolves in the current directory: the commands run from ROOT (cwd=ROOT), with --directory.
PROFILE = ["--profile", "slurm", "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5"]
SMALL_JOBS = {"mem_mb_per_run": 1000}  # four jobs at once on the test node (12 GB declared)
PARTITION = "gpu"  # the test cluster's second partition (its default is `debug`)
TRAINING_RULES = {"train", "teacher", "distill", "le_warmup", "le_stage2"}


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
    env = {"SLURM_CONF": str(state / "slurm.conf"), "PATH": f"{state / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "SBATCH_PARTITION": PARTITION}
    yield env, state
    subprocess.run(["bash", str(CLUSTER), "stop", str(state)], check=False)


def submissions(state: Path) -> list[dict]:
    """Every sbatch call so far (the cluster's sbatch wrapper logs its arguments but the command)."""
    calls = []
    for line in (state / "log" / "sbatch.args").read_text().splitlines():
        args = line.rstrip("\t").split("\t")
        log = Path(args[args.index("--output") + 1])  # .snakemake/slurm_logs/rule_<rule>/<wildcards>/%j.log
        rule = log.parts[log.parts.index("slurm_logs") + 1].removeprefix("rule_")
        options = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
        calls.append({"rule": rule, "args": args, "comment": args[args.index("--comment") + 1], "options": options,
                      "partition": args[args.index("-p") + 1], "time": args[args.index("-t") + 1],
                      "mem": args[args.index("--mem") + 1]})
    return calls


def metrics_mtimes(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.glob("runs/**/metrics.json")}


def test_smoke_config_through_slurm_with_a_failed_seed_rerun_alone(slurm, smoke_run, tmp_path):
    env, state = slurm
    reference_dir, _, _ = smoke_run
    failing = "digits/resnet8/resnet-e3/ls-alpha0.9/seed1"  # a run no other run depends on
    write_config(tmp_path, fail_runs={failing: 1}, cluster=SMALL_JOBS)
    results = tmp_path / "results"

    first = snakemake(tmp_path, *PROFILE, env=env, check=False, cwd=ROOT)
    output = first.stdout + first.stderr
    assert first.returncode != 0
    assert "Tables not produced: 1 run(s) have not finished" in output and failing in output
    assert "failure injected at epoch 1" in (results / "runs" / failing / "train.log").read_text()
    # the table that needs the failed run is refused; the others are built
    assert not (results / "tables" / "table2.csv").exists()
    assert (results / "tables" / "table3.csv").exists() and (results / "tables" / "table6.csv").exists()
    finished = metrics_mtimes(results)
    assert len(finished) == 54 - 1  # every other run of the smoke DAG finished (--keep-going)

    partial = snakemake(tmp_path, *PROFILE, "--config", "allow_missing_seeds=True", env=env, cwd=ROOT)
    table = table_numbers(results, "table2").set_index(["group", "method"])
    assert table.loc[("ResNet8", "LS"), "n"] == 1 and (table.n.drop(("ResNet8", "LS")) == 2).all()
    assert "Missing runs (1)" in (results / "tables" / "table2.md").read_text()
    assert metrics_mtimes(results) == finished, partial.stdout[-2000:]  # nothing retrained

    write_config(tmp_path, cluster=SMALL_JOBS)  # the failure is gone from the config
    snakemake(tmp_path, *PROFILE, env=env, cwd=ROOT)
    after = metrics_mtimes(results)
    assert set(after) - set(finished) == {f"runs/{failing}/metrics.json"}
    assert {k: v for k, v in after.items() if k in finished} == finished  # others untouched
    for name in ("table2", "table3", "table6"):
        ours, reference = table_numbers(results, name), table_numbers(reference_dir / "results", name)
        assert ours.reset_index(drop=True).equals(reference.reset_index(drop=True)), name

    calls = submissions(state)
    assert {c["partition"] for c in calls} == {PARTITION}
    training = [c for c in calls if c["rule"] in TRAINING_RULES]
    assert len(training) >= 54 + 2  # every run once, the failing one 1 + retries (2) times in the first pass
    for call in training:  # smoke config: threads_per_run 1, default cluster section
        assert call["options"]["--gpus"] == "1" and call["options"]["--cpus-per-task"] == "1", call
        assert call["mem"] == "1000" and "--requeue" in call["args"], call
    ce_runs = [c for c in training if "_ce_seed" in c["comment"]]
    # 3 epochs x 30 s x margin 2 = 3 min, below the 10-minute floor
    assert ce_runs and {c["time"] for c in ce_runs} == {"10"}
    model_jobs = [c for c in calls if c["rule"] in ("figure", "analyse_students")]
    assert {c["rule"] for c in model_jobs} == {"figure", "analyse_students"}
    for call in model_jobs:  # cluster jobs on the CPU, --cpus-per-task from the rule's threads
        assert "--gpus" not in call["options"] and call["time"] == "60", call
        assert call["options"]["--cpus-per-task"] == ("2" if call["rule"] == "analyse_students" else "1"), call
    assert not {c["rule"] for c in calls} & {"table", "significance_tests", "select_hyperparameters"}
    # slurm-keep-successful-logs: a finished run's SLURM log is still there
    kept = list((tmp_path / ".snakemake" / "slurm_logs" / "rule_train").glob("digits_resnet8_resnet-e3_ce_seed0/*.log"))
    assert kept, sorted(str(p) for p in (tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))[:20]


def test_sigterm_preemption_under_slurm_on_a_gpu_shard_resumes_to_identical_metrics(slurm, tmp_path):
    env, state = slurm
    budgets = {"resnet": {"epochs": 40, "batch_size": 128, "lr": 0.1, "lr_milestones": [0.5, 0.75]}}
    tables = {"table2": {"title": "one run", "dataset": "digits", "methods": ["CE"],
                         "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet"}]}}
    write_config(tmp_path, seeds=[0], budgets=budgets, tables=tables, teachers={}, figures={}, analyses={},
                 cluster={**SMALL_JOBS, "gpu_shards_per_run": 1})
    run_dir = tmp_path / "results" / "runs" / "digits" / "resnet8" / "resnet-e40" / "ce" / "seed0"
    env = {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"}
    cmd = [str(BIN / "snakemake"), *PROFILE, "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml")]
    workflow = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
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
    shard_jobs = [c for c in submissions(state) if "resnet-e40" in c["comment"]]
    assert shard_jobs, submissions(state)[-3:]
    for call in shard_jobs:  # a share of a GPU instead of a whole one; 40 epochs x 30 s x margin 2 = 40 min
        assert call["options"]["--gres"] == "shard:1" and "--gpus" not in call["options"], call
        assert call["time"] == "40" and call["options"]["--cpus-per-task"] == "1", call

    from introspect.plan import build_plan, load_config
    from introspect.train import train

    plan = build_plan(load_config(tmp_path / "config.yaml"))
    spec = plan.runs["digits/resnet8/resnet-e40/ce/seed0"].run_spec()
    straight = train(spec, tmp_path / "straight")
    preempted = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_acc_final", "val_acc_final", "train_acc_final", "test_acc_best_val", "epochs"):
        assert preempted[key] == straight[key], key
