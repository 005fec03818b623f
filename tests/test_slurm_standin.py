"""The stand-in SLURM commands (tests/slurm/standin/) answer the plugin's own queries as SLURM does: the
exact command strings of snakemake-executor-plugin-slurm 2.8.0 (built by its own functions) parsed by its
own parser; and the real workflow runs through them end to end. These stand-ins are what the fault tests
(test_slurm_faults.py) rest on; the real one-node SLURM tests are test_slurm.py."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from standin import jobs, rule_of, run_workflow, standin_env, submissions, tiny_config

plugin = pytest.importorskip("snakemake_executor_plugin_slurm")
from snakemake_executor_plugin_slurm import job_status_query  # noqa: E402


def sh(command: str, env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, env={**os.environ, **env}, capture_output=True, text=True, **kwargs)


@contextmanager
def environment(env: dict):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def statuses(command: str, env: dict) -> dict:
    """The plugin's parse of a status command, run in the stand-in's environment."""
    with environment(env):
        result, _ = asyncio.run(job_status_query.query_job_status(command, logging.getLogger("test")))
    return result


def wait_for(predicate, timeout: float = 300.0) -> None:  # a bound on a hang: the stand-in is slow under load
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert predicate()


def ended_long_ago(state: Path, job_id: str) -> None:
    """Move a job's end back by a day in the stand-in's state, as the clock would (no sleeping on a loaded machine
    past a short MinJobAge, which the queries themselves could outlast)."""
    path = state / "jobs" / f"{job_id}.json"
    job = json.loads(path.read_text())
    path.write_text(json.dumps({**job, "ended": job["ended"] - 86400}))


@pytest.mark.system
def test_sbatch_squeue_sacct_answer_in_the_plugins_formats(tmp_path):
    env = standin_env(tmp_path / "state", {"min_job_age": 120, "first_id": 41})
    name = "introspect_run-uuid"
    submit = sh(f"sbatch --parsable --job-name {name} --output {tmp_path}/%j.log --export=ALL --comment "
                f"rule_train_wildcards_x -p gpu -t 10 --mem 1000 --requeue --ntasks=1 --cpus-per-task=2 "
                f"-D {tmp_path} --wrap=\"echo started \\$SLURM_JOB_ID; srun -n1 --cpu-bind=q echo step; exit 3\"",
                env)
    assert submit.returncode == 0 and submit.stdout == "42\n", submit
    assert plugin.validate_or_get_slurm_job_id("42", submit.stdout) == "42"
    wait_for(lambda: jobs(tmp_path / "state")[0]["state"] == "FAILED")
    assert (tmp_path / "42.log").read_text() == "started 42\nstep\n"  # the wrapped command and srun's step
    sacct = job_status_query.query_job_status_sacct(name)
    squeue = job_status_query.query_job_status_squeue(name)
    assert statuses(sacct, env) == {"42": "FAILED"} == statuses(squeue, env)
    assert statuses(job_status_query.query_job_status_sacct("another-run"), env) == {}
    ended_long_ago(tmp_path / "state", "42")  # MinJobAge passed: squeue no longer lists it, sacct does
    assert statuses(squeue, env) == {} and statuses(sacct, env) == {"42": "FAILED"}
    missing = sh("squeue -h -j 42 -o %T", env)
    assert missing.returncode == 1 and "Invalid job id specified" in missing.stderr
    with environment(env):  # the plugin reads MinJobAge from `scontrol show config`
        assert job_status_query.get_min_job_age() == 120
    (call,) = submissions(tmp_path / "state")
    assert (call["time_minutes"], call["mem_mb"], call["partition"], rule_of(call)) == (10, 1000, "gpu", "train")


@pytest.mark.system
def test_scancel_reads_as_cancelled_by_uid_in_sacct(tmp_path):
    env = standin_env(tmp_path / "state")
    job = sh(f"sbatch --parsable --job-name n --output {tmp_path}/%j.log --wrap='sleep 30'", env).stdout.strip()
    wait_for(lambda: jobs(tmp_path / "state")[0]["state"] == "RUNNING")
    assert sh(f"scancel {job}", env).returncode == 0
    state = sh(f"sacct -X -n -P -j {job} -o State", env).stdout.strip()
    assert state == f"CANCELLED by {os.getuid()}"  # as real sacct writes it (see cluster/slurm_status.py)
    assert sh(f"squeue -h -j {job} -o %T", env).stdout.strip() == "CANCELLED"


@pytest.mark.system
def test_a_submit_limit_refuses_with_slurms_message(tmp_path):
    env = standin_env(tmp_path / "state", {"submit_limit": 3, "other_jobs": 2})
    first = sh(f"sbatch --parsable -o {tmp_path}/%j.log --wrap='sleep 30'", env)
    second = sh(f"sbatch --parsable -o {tmp_path}/%j.log --wrap='sleep 30'", env)
    try:
        assert first.returncode == 0 and second.returncode == 1
        assert "QOSMaxSubmitJobPerUserLimit" in second.stderr
        assert [c["refused"] for c in submissions(tmp_path / "state")] == [False, True]
    finally:
        sh(f"scancel {first.stdout.strip()}", env)


@pytest.mark.workflow
def test_the_workflow_runs_through_the_standin(tmp_path):
    """The real plugin submits the pre-flight and the training job to the stand-in and sees them end."""
    tiny_config(tmp_path)
    state = tmp_path / "slurm"
    run_workflow(tmp_path, state)
    assert (tmp_path / "results" / "smoke" / "tables" / "table2.csv").exists()
    calls = submissions(state)
    assert [rule_of(c) for c in calls] == ["preflight", "train"]
    assert {j["state"] for j in jobs(state)} == {"COMPLETED"}
