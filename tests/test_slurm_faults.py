"""SLURM's faults and limits, through the stand-in SLURM commands (tests/slurm/standin/) and the real
`snakemake --profile slurm` with snakemake-executor-plugin-slurm 2.8.0: each fault is injected for the
first matching submission(s) and the campaign must go on to its table. Measured here with stand-ins
only (one machine, jobs run locally); docs/cluster.md says what each fault does."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from standin import HEAD_BUDGET, PROFILE, jobs, rule_of, run_workflow, standin_env, submissions, tiny_config
from workflow_helpers import BIN, ROOT

pytestmark = pytest.mark.workflow
pytest.importorskip("snakemake_executor_plugin_slurm")


def table_built(workdir) -> bool:
    return (workdir / "results" / "smoke" / "tables" / "table2.csv").exists()


def training_jobs(state) -> list[dict]:
    return [job for job in jobs(state) if rule_of(job) == "train"]


@pytest.mark.parametrize("end", ["PREEMPTED", "NODE_FAIL"])
def test_a_job_ended_without_requeue_is_retried_once_slurm_forgets_it(tmp_path, end):
    """The plugin alone waits on such a job forever ("leaving it to SLURM to requeue"); here squeue lists it
    for 2 s after it ended, then no more: it is failed, retried, and the campaign finishes."""
    tiny_config(tmp_path)
    state = tmp_path / "slurm"
    standin_env(state, {"faults": [{"match": "rule_train_", "state": end, "listed": 2}]})
    result = run_workflow(tmp_path, state)
    assert table_built(tmp_path)
    assert [job["state"] for job in training_jobs(state)] == [end, "COMPLETED"]
    first = training_jobs(state)[0]["id"]
    assert f"SLURM job {first} ended {end} and SLURM no longer lists it" in result.stdout + result.stderr


def test_a_submit_limit_delays_jobs_and_fails_none(tmp_path):
    """MaxSubmitJobs 50 with 49 of the user's jobs elsewhere: one job of the campaign at a time is accepted,
    every other submission is refused until it ends; the refusals are waited out (here every 1 s)."""
    tiny_config(tmp_path, seeds=(0, 1, 2))
    state = tmp_path / "slurm"
    standin_env(state, {"submit_limit": 50, "other_jobs": 49})
    result = run_workflow(tmp_path, state, "--retries", "0",
                          env={"INTROSPECT_SUBMIT_WAIT": "1"})
    assert table_built(tmp_path), result.stderr[-3000:]
    calls = submissions(state)
    accepted = [rule_of(c) for c in calls if not c["refused"]]
    assert sorted(accepted) == ["preflight", "train", "train", "train"]  # each job once
    assert any(c["refused"] for c in calls)  # the limit did bite (three training jobs were ready at once)
    assert "QOSMaxSubmitJobPerUserLimit): submitting it again every 1 s" in result.stdout + result.stderr


def test_a_lock_left_by_a_job_that_no_longer_exists_is_taken_over(tmp_path):
    """A node failed under a trainer: its lock names another host, a fresh heartbeat and a SLURM job that
    SLURM no longer knows. The next attempt takes the run over at once (no retries here), instead of exiting
    75 ("busy") until the heartbeat is stale."""
    tiny_config(tmp_path)
    state = tmp_path / "slurm"
    run_dir = tmp_path / "results" / "runs" / "digits" / "resnet8" / "resnet-e1" / "ce" / "seed0"
    run_dir.mkdir(parents=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    (run_dir / "writer.lock").write_text(json.dumps({"host": "node-that-failed", "pid": 4321, "started": now,
                                                     "heartbeat": now, "slurm_job_id": "999"}))
    run_workflow(tmp_path, state, "--retries", "0")
    assert table_built(tmp_path)
    assert [job["state"] for job in training_jobs(state)] == ["COMPLETED"]
    assert (run_dir / "writer.lock").read_text() == ""  # released by the job that took it over


def test_a_timeout_and_an_oom_kill_are_retried_with_higher_limits(tmp_path):
    """The run needs more than its first time limit (10 min, the floor) and more than 1500 MB: it ends
    TIMEOUT at 10 min / 1000 MB, OUT_OF_MEMORY at 15 min / 1500 MB, and completes at 20 min / 2000 MB
    (attempts ask 1x, 1.5x, 2x; the profile's retries: 2)."""
    tiny_config(tmp_path, cluster={"mem_mb_per_run": 1000})
    state = tmp_path / "slurm"
    standin_env(state, {"faults": [{"match": "rule_train_", "state": "TIMEOUT", "below": {"time_minutes": 15}},
                                   {"match": "rule_train_", "state": "OUT_OF_MEMORY", "below": {"mem_mb": 2000}}]})
    run_workflow(tmp_path, state)
    assert table_built(tmp_path)
    training = training_jobs(state)
    assert [job["state"] for job in training] == ["TIMEOUT", "OUT_OF_MEMORY", "COMPLETED"]
    assert [(job["time_minutes"], job["mem_mb"]) for job in training] == [(10, 1000), (15, 1500), (20, 2000)]


def test_a_retry_never_asks_more_than_the_node_has(tmp_path):
    """A node of 1200 MB (sinfo): the run is killed OUT_OF_MEMORY at 1000 MB; its retry would ask 1500 MB,
    which no node has (SLURM would leave it pending for ever), and asks the node's 1200 MB instead, saying so."""
    tiny_config(tmp_path, cluster={"mem_mb_per_run": 1000})
    state = tmp_path / "slurm"
    standin_env(state, {"node": {"cpus": 4, "mem_mb": 1200},
                        "faults": [{"match": "rule_train_", "state": "OUT_OF_MEMORY", "below": {"mem_mb": 1200}}]})
    result = run_workflow(tmp_path, state)
    assert table_built(tmp_path)
    training = training_jobs(state)
    assert [(job["state"], job["mem_mb"]) for job in training] == [("OUT_OF_MEMORY", 1000), ("COMPLETED", 1200)]
    assert "memory (MB) 1500 -> 1200: no node of the partition offers more" in result.stdout + result.stderr


def test_the_head_hands_over_to_a_new_head_before_its_limit_and_keeps_running_jobs(tmp_path):
    """profiles/slurm/head.sbatch as a (stand-in) SLURM job gets USR1, as --signal=B:USR1@600 sends it ten
    minutes before its limit, while a training job runs: it stops its Snakemake without cancelling that job,
    submits a head that starts after both ended, and that head finishes the campaign without training the
    run again."""
    tiny_config(tmp_path, epochs=15)
    state = tmp_path / "slurm"
    env = {**os.environ, **standin_env(state), "INTROSPECT_VENV": str(BIN.parent), "INTROSPECT_HEAD_POLL": "1"}
    script = ROOT / "profiles" / "slurm" / "head.sbatch"
    head = subprocess.run(
        ["sbatch", "--parsable", "--output", str(tmp_path / "head-%j.log"), str(script), "--snakefile",
         str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
         *PROFILE[2:]], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()
    deadline = time.monotonic() + HEAD_BUDGET
    while time.monotonic() < deadline and not any(j["state"] == "RUNNING" for j in training_jobs(state)):
        time.sleep(0.5)
    subprocess.run(["scancel", "--signal=USR1", "--batch", head], env=env, check=True)
    while time.monotonic() < deadline + HEAD_BUDGET and (len(jobs(state)) < 4 or any(
            j["state"] in ("PENDING", "RUNNING") for j in jobs(state))):
        time.sleep(1)
    heads = [j for j in jobs(state) if j["name"] == "introspect-head"]
    logs = {j["id"]: (tmp_path / f"head-{j['id']}.log").read_text() for j in heads}
    assert [j["state"] for j in heads] == ["COMPLETED", "COMPLETED"], logs
    assert "handing over to a new head" in logs[head]
    (train,) = training_jobs(state)  # trained once: the running job was neither cancelled nor repeated
    assert train["state"] == "COMPLETED" and heads[1]["after"] == [head, train["id"]]
    assert heads[1]["time_minutes"] == 2 * 24 * 60  # the same limit
    assert table_built(tmp_path), logs


def test_a_head_started_while_an_earlier_heads_job_runs_waits_for_it(tmp_path):
    """head.sbatch, started while a job of the workflow (named introspect_*, in its directory) still runs,
    starts Snakemake only once that job ended (here a dry run, so nothing is submitted)."""
    tiny_config(tmp_path)
    state = tmp_path / "slurm"
    env = {**os.environ, **standin_env(state), "INTROSPECT_VENV": str(BIN.parent), "INTROSPECT_HEAD_POLL": "1"}
    earlier = subprocess.run(["sbatch", "--parsable", "--job-name", "introspect_an-earlier-head", "-D", str(tmp_path),
                              "--output", str(tmp_path / "earlier.log"), "--wrap", "sleep 15"],
                             env=env, capture_output=True, text=True, check=True).stdout.strip()
    script = ROOT / "profiles" / "slurm" / "head.sbatch"
    head = subprocess.run(
        ["sbatch", "--parsable", "--output", str(tmp_path / "head.log"), str(script), "--snakefile",
         str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
         "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()
    deadline = time.monotonic() + HEAD_BUDGET
    while time.monotonic() < deadline and any(j["state"] in ("PENDING", "RUNNING") for j in jobs(state)):
        time.sleep(0.5)
    by_id = {job["id"]: job for job in jobs(state)}
    log = (tmp_path / "head.log").read_text()
    assert by_id[head]["state"] == "COMPLETED", log
    assert log.count("waiting for 1 job(s) of an earlier head to end") >= 2, log  # once a second (POLL) until it ended
    assert log.index("waiting for 1 job(s)") < log.index("Job stats:")  # the dry run after the wait
    assert by_id[earlier]["ended"] <= by_id[head]["ended"] and len(by_id) == 2  # nothing submitted by the head
