"""The SLURM path against a real single-node SLURM with accounting (tests/slurm/cluster.sh), run as the
README says: `snakemake --profile slurm` from the repository root, the partition from SBATCH_PARTITION.
A one-table cut of the smoke config with a failing seed that is rerun alone, the sbatch requests of its
jobs, and SIGTERM preemption of a job on a GPU shard. Only the status polling is made faster on the
command line and in the head's environment: the plugin's next status check comes 3 s after one that saw a
job end (the profile says 20 s), and, as INTROSPECT_STATUS_CHECK_MAX caps its back-off (10 s longer each time
it sees none), 3 s after one that saw none too. A job of these tests takes 10-20 s
unloaded (SLURM start and the job's own Snakemake take half of it), 20-39 s on a loaded machine.

In CI (CI=true) SLURM is installed (.ci/provision) and must work: any problem fails the test loudly.
Elsewhere the tests are skipped, with the reason printed, when SLURM is not installed or we are not root.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import in_ci
from introspect.config.model import load_config
from introspect.train.finished import FINISHED
from workflow_helpers import BIN, ROOT, catalogue_claims, snakemake, table_numbers, write_config

pytestmark = pytest.mark.workflow
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
# `slurm` resolves in the current directory: the commands run from ROOT (cwd=ROOT), with --directory.
PROFILE = ["--profile", "slurm", "--slurm-init-seconds-before-status-checks", "3", "--latency-wait", "5"]
# four jobs at once on the test node (12 GB declared); its GPUs are fake GRES, the runs train on the CPU
SMALL_JOBS = {"mem_mb_per_run": 1000, "fake_gpus": True}
PARTITION = "gpu"  # the test cluster's second partition (its default is `debug`)
TRAINING_RULES = {"train", "teacher", "distill", "le_warmup", "le_stage2"}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = [c for c in ("slurmctld", "slurmd", "sbatch", "slurmdbd", "munged", "mariadbd") if not shutil.which(c)]
    if os.geteuid() != 0 or missing:
        reason = (f"SLURM tests need root and {', '.join(missing) or 'SLURM'}: run `sudo .ci/provision` "
                  "(Debian's slurm-wlm, slurmdbd, MariaDB and munge)")
        assert not in_ci(), reason  # CI provisions them: a missing one is a failure there, not a skip
        print(f"\nskipping: {reason}")
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True,
                             env={**free_ports(), **os.environ})
    assert started.returncode == 0, f"SLURM did not start:\n{started.stdout}\n{started.stderr}"
    env = {"SLURM_CONF": str(state / "slurm.conf"), "PATH": f"{state / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "SBATCH_PARTITION": PARTITION, "INTROSPECT_STATUS_CHECK_MAX": "3"}
    yield env, state
    subprocess.run(["bash", str(CLUSTER), "stop", str(state)], check=False)


def free_ports() -> dict[str, str]:
    """Ports the OS says are free for the cluster's daemons (an explicit SLURMCTLD_PORT etc. wins): a second
    test session on the machine (another checkout) then starts its own cluster instead of failing on
    MariaDB's or slurmctld's "address already in use"."""
    names = ("SLURMCTLD_PORT", "SLURMD_PORT", "SLURMDBD_PORT", "MARIADB_PORT")
    sockets = [socket.socket() for _ in names]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return {name: str(sock.getsockname()[1]) for name, sock in zip(names, sockets)}
    finally:
        for sock in sockets:
            sock.close()


# The longest a head of these tests may take (a loaded machine: the small config's three calls take 2-8 min each).
# A request no node can grant would pend for ever: the test fails loudly instead, naming the queue.
HEAD_TIMEOUT = 1200


def through_slurm(workdir: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`snakemake --profile slurm` in ``workdir``, ended after HEAD_TIMEOUT s with its SLURM jobs cancelled and
    the queue and the head's output in the failure."""
    try:
        return snakemake(workdir, *PROFILE, *args, env=env, check=check, cwd=ROOT, timeout=HEAD_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        queue = subprocess.run(["squeue", "-h", "-o", "%i %T %r %C %m %k %Z"], env={**os.environ, **env},
                               capture_output=True, text=True).stdout
        mine = [line.split()[0] for line in queue.splitlines() if line.split()[-1] == str(workdir)]
        subprocess.run(["scancel", *mine], env={**os.environ, **env}, check=False) if mine else None
        output = (expired.stderr or b"")[-4000:]
        raise AssertionError(f"the head did not end in {HEAD_TIMEOUT} s; the queue was:\n{queue}\n"
                             f"{output.decode() if isinstance(output, bytes) else output}") from None


def submissions(state: Path) -> list[dict]:
    """Every sbatch call so far (the cluster's sbatch wrapper logs its arguments but the command)."""
    calls, log = [], state / "log" / "sbatch.args"
    for line in (log.read_text() if log.exists() else "").splitlines():
        args = line.rstrip("\t").split("\t")
        if "--output" not in args:
            continue  # a head that head.sbatch submitted (its hand-over: --output=...)
        log = Path(args[args.index("--output") + 1])  # .snakemake/slurm_logs/rule_<rule>/<wildcards>/%j.log
        rule = log.parts[log.parts.index("slurm_logs") + 1].removeprefix("rule_")
        options = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
        calls.append({"rule": rule, "args": args, "comment": args[args.index("--comment") + 1], "options": options,
                      "partition": args[args.index("-p") + 1], "time": args[args.index("-t") + 1],
                      "mem": args[args.index("--mem") + 1]})
    return calls


def run_metrics(runs: Path) -> list[Path]:
    """Every run's metrics.json under ``runs``, without the copies a finished run keeps under .finished/."""
    return sorted(p for p in runs.glob("**/metrics.json") if FINISHED not in p.parts)


def metrics_mtimes(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in run_metrics(results / "runs")}


def small_config() -> dict:
    """The smoke config cut to one table (ResNet8: CE, LS and LE(Grad-CAM), its warm-up and Stage 2; 2 seeds,
    8 runs), one accuracy figure (a cluster job on the CPU) and one claim (a local job, like the table): a few
    minutes on SLURM. The figure reads only CE, so it runs beside the Stage-2 runs rather than after them."""
    smoke = load_config(ROOT / "config" / "smoke.yaml")
    table2 = {**smoke["tables"]["table2"], "methods": ["CE", "LS", "LE(Grad-CAM)"]}
    figure3 = {**smoke["figures"]["figure3"], "methods": ["CE"]}
    claims = catalogue_claims("t2_le_gradcam_gt_ce_resnet8")
    return {"tables": {"table2": table2}, "figures": {"figure3": figure3}, "claims": claims, "teachers": {},
            "analyses": {}, "cluster": SMALL_JOBS}


def test_small_config_through_slurm_with_a_failed_seed_rerun_alone(slurm, tmp_path):
    env, state = slurm
    # The same config run locally, for the numbers; in a thread, while SLURM jobs wait to be polled.
    reference_dir = tmp_path / "local"
    reference_dir.mkdir()
    write_config(reference_dir, **small_config())
    local = ThreadPoolExecutor(1).submit(snakemake, reference_dir, "--cores", "1")
    workdir = tmp_path / "slurm"
    workdir.mkdir()
    failing = "digits/resnet8/resnet-e3/ls-alpha0.9/seed1"  # a run no other run depends on
    write_config(workdir, fail_runs={failing: 1}, **small_config())
    results = workdir / "results"
    views = results / "smoke"  # the smoke config's name

    first = through_slurm(workdir, env, check=False)
    output = first.stdout + first.stderr
    assert first.returncode != 0
    # onerror names the failed job (once, though SLURM ran it three times) and its logs, nothing else
    report = output[output.index("1 job(s) failed:"):]
    report = report[:report.index("Each log says why")]
    assert f"train: {results / 'runs' / failing / 'train.log'}, " in report, report
    assert "[SLURM FAILED]" in report and report.count("/results/runs/") == 1, report
    assert "failure injected at epoch 1" in (results / "runs" / failing / "train.log").read_text()
    # the table and the claims (which read all its cells) need the failed run and are refused; the figure is built
    assert not (views / "tables" / "table2.csv").exists() and not (views / "claims.csv").exists()
    assert (views / "figures" / "figure3.csv").exists()
    finished = metrics_mtimes(results)
    assert len(finished) == 8 - 1  # every other run of the DAG finished (--keep-going)

    partial = through_slurm(workdir, env, "--config", "allow_missing_seeds=True")
    table = table_numbers(views, "table2").set_index(["group", "method"])
    assert table.loc[("ResNet8", "LS"), "n"] == 1 and (table.n.drop(("ResNet8", "LS")) == 2).all()
    assert "Missing runs (1)" in (views / "tables" / "table2.md").read_text()
    assert (views / "claims.csv").exists()
    assert metrics_mtimes(results) == finished, partial.stdout[-2000:]  # nothing retrained

    write_config(workdir, **small_config())  # the failure is gone from the config
    through_slurm(workdir, env)
    after = metrics_mtimes(results)
    assert set(after) - set(finished) == {f"runs/{failing}/metrics.json"}
    assert {k: v for k, v in after.items() if k in finished} == finished  # others untouched
    local.result(timeout=1500)
    reference_views = reference_dir / "results" / "smoke"
    ours, reference = table_numbers(views, "table2"), table_numbers(reference_views, "table2")
    assert ours.reset_index(drop=True).equals(reference.reset_index(drop=True))
    for name in ("figures/figure3.csv", "claims.csv"):
        assert (views / name).read_text() == (reference_views / name).read_text(), name

    calls = submissions(state)
    # jobs that run models go to SBATCH_PARTITION; the CPU-only figure (no cpu_partition set) to the cluster's
    # default partition, which the plugin reads from sinfo, not to the GPU partition SBATCH_PARTITION names
    assert {c["partition"] for c in calls if c["rule"] != "figure"} == {PARTITION}
    training = [c for c in calls if c["rule"] in TRAINING_RULES]
    assert len(training) >= 8 + 2  # every run once, the failing one 1 + retries (2) times in the first pass
    assert {c["rule"] for c in training} == {"train", "le_warmup", "le_stage2"}
    assert [c["rule"] for c in calls].count("preflight") == 1  # one pre-flight, before any training job
    for call in training:  # smoke config: threads_per_run 1, default cluster section
        assert call["options"]["--gpus"] == "1" and call["options"]["--cpus-per-task"] == "1", call
        assert "--requeue" in call["args"], call
    failing_calls = [c["mem"] for c in training if c["comment"].endswith(failing.replace("/", "_"))]
    # retries ask 1.5x, then 2x the memory (and time); the last pass, with the failure gone, starts at 1x again
    assert failing_calls == ["1000", "1500", "2000", "1000"], failing_calls
    assert {c["mem"] for c in training if not c["comment"].endswith(failing.replace("/", "_"))} == {"1000"}
    ce_runs = [c for c in training if "_ce_seed" in c["comment"]]
    # measured (pre-flight) or not (3 epochs x 30 s x margin 2 = 3 min), below the 10-minute floor
    assert ce_runs and {c["time"] for c in ce_runs} == {"10"}
    figures = [c for c in calls if c["rule"] == "figure"]
    assert figures
    for call in figures:  # the accuracy figure reads metrics: no GPU, --cpus-per-task from the rule's threads
        assert "--gpus" not in call["options"] and call["time"] == "60" and call["partition"] == "debug", call
        assert call["options"]["--cpus-per-task"] == "1", call
    assert not {c["rule"] for c in calls} & {"table", "claims", "significance_tests"}  # local rules
    # slurm-keep-successful-logs: a finished run's SLURM log is still there
    kept = list((workdir / ".snakemake" / "slurm_logs" / "rule_train").glob("digits_resnet8_resnet-e3_ce_seed0/*.log"))
    assert kept, sorted(str(p) for p in (workdir / ".snakemake" / "slurm_logs").rglob("*.log"))[:20]


def test_sigterm_preemption_under_slurm_on_a_gpu_shard_resumes_to_identical_metrics(slurm, tmp_path):
    env, state = slurm
    budgets = {"resnet": {"epochs": 15, "batch_size": 128, "lr": 0.1, "lr_milestones": [0.5, 0.75]}}
    tables = {"table2": {"title": "one run", "dataset": "digits", "methods": ["CE"],
                         "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet"}]}}
    write_config(tmp_path, seeds=[0], budgets=budgets, tables=tables, teachers={}, figures={}, analyses={}, claims=[],
                 cluster={**SMALL_JOBS, "gpu_shards_per_run": 1})
    run_dir = tmp_path / "results" / "runs" / "digits" / "resnet8" / "resnet-e15" / "ce" / "seed0"
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
    try:
        log, _ = workflow.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        workflow.kill()
        output = workflow.communicate()[0][-4000:]
        raise AssertionError(f"the head did not end after the pre-emption:\n{output}") from None
    assert workflow.returncode == 0, log[-4000:]
    train_log = (run_dir / "train.log").read_text()
    assert "resuming after epoch" in train_log, train_log[-2000:]
    shard_jobs = [c for c in submissions(state) if "resnet-e15" in c["comment"]]
    assert shard_jobs, submissions(state)[-3:]
    # the time limit from the pre-flight's measured epoch seconds: 15 epochs x margin 2, at least 10 minutes
    (calibration,) = (tmp_path / "results" / "preflight" / "cpu").glob("*.json")  # one step kind
    (measured,) = json.loads(calibration.read_text())["kinds"].values()
    limit = max(10, math.ceil(15 * measured["epoch_seconds"] * 2 / 60))
    for attempt, call in enumerate(shard_jobs, 1):  # a share of a GPU instead of a whole one
        assert call["options"]["--gres"] == "shard:1" and "--gpus" not in call["options"], call
        assert call["options"]["--cpus-per-task"] == "1", call
        assert call["time"] == str(math.ceil(limit * (1.0, 1.5, 2.0)[min(attempt, 3) - 1])), call  # a retry: 1.5x

    from introspect.plan.build import build_plan, load_config
    from introspect.train import train

    plan = build_plan(load_config(tmp_path / "config.yaml"))
    spec = plan.runs["digits/resnet8/resnet-e15/ce/seed0"].run_spec()
    straight = train(spec, tmp_path / "straight")
    preempted = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_acc_final", "val_acc_final", "train_acc_final", "test_acc_best_val", "epochs"):
        assert preempted[key] == straight[key], key


def test_four_runs_packed_on_one_gpu_equal_the_unpacked_runs(slurm, tmp_path):
    """cluster.runs_per_gpu: 4 -> one SLURM job for four runs, asking one GPU; the CPU-only accuracy figure
    goes to cluster.cpu_partition; the runs' numbers equal those of the same runs trained one per job."""
    env, state = slurm
    smoke = load_config(ROOT / "config" / "smoke.yaml")
    views = {"seeds": [0, 1, 2, 3], "teachers": {}, "analyses": {}, "claims": [],
             "tables": {"table2": {**smoke["tables"]["table2"], "methods": ["CE"], "compare_to": []}},
             "figures": {"figure3": {**smoke["figures"]["figure3"], "methods": ["CE"]}}}
    reference_dir = tmp_path / "local"
    reference_dir.mkdir()
    write_config(reference_dir, **views)
    local = ThreadPoolExecutor(1).submit(snakemake, reference_dir, "--cores", "1")
    workdir = tmp_path / "slurm"
    workdir.mkdir()
    write_config(workdir, **views, cluster={**SMALL_JOBS, "runs_per_gpu": 4, "cpu_partition": "debug"})
    before = len(submissions(state))
    through_slurm(workdir, env)
    calls = submissions(state)[before:]
    packed = [c for c in calls if "pack_train" in c["rule"]]
    assert len(packed) == 1, calls  # one job for the four runs
    (job,) = packed
    assert job["options"]["--gres"] == "gpu:1" and "--gpus" not in job["options"], job  # one GPU
    assert job["options"]["--cpus-per-task"] == "4" and job["mem"] == "4000", job  # what four runs need
    assert job["partition"] == PARTITION
    assert {c["rule"] for c in calls} == {"preflight", job["rule"], "figure"}
    (figure,) = [c for c in calls if c["rule"] == "figure"]
    assert figure["partition"] == "debug" and "--gres" not in figure["options"] and "--gpus" not in figure["options"]
    local.result(timeout=1500)
    keys = ("test_acc_final", "val_acc_final", "train_acc_final", "test_acc_best_val", "test_acc_max", "epochs",
            "spec", "hyperparameters")
    runs = run_metrics(workdir / "results" / "runs")
    assert len(runs) == 4
    for path in runs:
        twin = reference_dir / "results" / path.relative_to(workdir / "results")
        ours, theirs = json.loads(path.read_text()), json.loads(twin.read_text())
        assert {k: ours[k] for k in keys if k != "spec"} == {k: theirs[k] for k in keys if k != "spec"}, path
        assert ours["spec"]["run_id"] == theirs["spec"]["run_id"]
        epochs = [line.rsplit(",", 1)[0] for line in (path.parent / "epochs.csv").read_text().splitlines()]
        assert epochs == [line.rsplit(",", 1)[0] for line in (twin.parent / "epochs.csv").read_text().splitlines()]


def test_the_head_runs_as_a_slurm_job(slurm, tmp_path):
    """profiles/slurm/head.sbatch: the workflow's head submitted as a low-resource job of its own runs the
    campaign to the end (its jobs named introspect_<run id>, which the README's recovery steps look for)."""
    env, state = slurm
    smoke = load_config(ROOT / "config" / "smoke.yaml")
    write_config(tmp_path, seeds=[0], teachers={}, analyses={}, claims=[], figures={}, cluster=SMALL_JOBS,
                 tables={"table2": {**smoke["tables"]["table2"], "methods": ["CE"], "compare_to": []}})
    env = {**os.environ, **env, "INTROSPECT_VENV": str(BIN.parent)}
    sbatch = shutil.which("sbatch", path=os.environ["PATH"])  # the real one: the wrapper logs the head's jobs only
    script = ROOT / "profiles" / "slurm" / "head.sbatch"
    submitted = subprocess.run(
        [sbatch, "--parsable", "--output", str(tmp_path / "head.log"), str(script), "--snakefile",
         str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
         *PROFILE[2:]],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    head = submitted.stdout.strip().split(";")[0]
    deadline = time.time() + 600
    while time.time() < deadline and head in subprocess.run(["squeue", "-h", "-o", "%i"], env=env,
                                                             capture_output=True, text=True).stdout.split():
        time.sleep(2)
    log = (tmp_path / "head.log").read_text()
    state_line = subprocess.run(["sacct", "-n", "-X", "-j", head, "-o", "State"], env=env, capture_output=True,
                                text=True).stdout.strip()
    assert state_line == "COMPLETED", log[-4000:]
    assert (tmp_path / "results" / "smoke" / "tables" / "table2.csv").exists()
    assert "SLURM run ID: introspect_" in log
    calls = [c for c in submissions(state) if str(tmp_path) in " ".join(c["args"])]
    assert {c["rule"] for c in calls} == {"preflight", "train"}


def test_the_head_hands_over_to_a_new_head_before_its_time_limit(slurm, tmp_path):
    """USR1 to head.sbatch's batch shell (what --signal=B:USR1@600 sends ten minutes before its limit) while a
    training job runs: the head stops its Snakemake without cancelling the job and submits a head that starts
    after both ended (squeue --me, scontrol show job and --dependency=afterany of a real SLURM); that head
    finishes the campaign without training the run again."""
    env, state = slurm
    budgets = {"resnet": {"epochs": 15, "batch_size": 128, "lr": 0.1, "lr_milestones": [0.5, 0.75]}}
    tables = {"table2": {"title": "one run", "dataset": "digits", "methods": ["CE"],
                         "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet"}]}}
    write_config(tmp_path, seeds=[0], budgets=budgets, tables=tables, teachers={}, figures={}, analyses={},
                 claims=[], cluster=SMALL_JOBS)
    env = {**os.environ, **env, "INTROSPECT_VENV": str(BIN.parent), "INTROSPECT_HEAD_POLL": "2"}
    before = len(submissions(state))
    sbatch = shutil.which("sbatch", path=os.environ["PATH"])  # the real one: the wrapper logs the head's jobs only
    head = subprocess.run(
        [sbatch, "--parsable", "--output", str(tmp_path / "head-%j.log"),
         str(ROOT / "profiles" / "slurm" / "head.sbatch"), "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), *PROFILE[2:]],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip().split(";")[0]

    def queue() -> list[list[str]]:  # [id, comment, state, working directory] of every listed job
        listing = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T|%Z"], env=env, capture_output=True, text=True)
        return [line.split("|") for line in listing.stdout.splitlines()]

    def training() -> list[list[str]]:  # this test's (an earlier test's ended jobs stay listed for MinJobAge)
        return [job for job in queue() if "rule_train" in job[1] and job[3] == str(tmp_path)]

    deadline = time.time() + 600
    while time.time() < deadline and not any(job[2] == "RUNNING" for job in training()):
        time.sleep(1)
    (train,) = [job[0] for job in training()]
    subprocess.run(["scancel", "--batch", "--signal=USR1", head], env=env, check=True)
    while time.time() < deadline and not any(p.name != f"head-{head}.log" for p in tmp_path.glob("head-*.log")):
        time.sleep(1)
    (log,) = [p for p in tmp_path.glob("head-*.log") if p.name != f"head-{head}.log"]
    successor = log.stem.removeprefix("head-")

    def final_state(job: str) -> str:  # sacct's, once it says the job ended (accounting lags squeue)
        while True:
            state = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"], env=env,
                                   capture_output=True, text=True).stdout.strip()
            if state not in ("", "PENDING", "RUNNING", "COMPLETING") or time.time() > deadline + 600:
                return state
            time.sleep(2)

    states = {job: final_state(job) for job in (head, train, successor)}
    first = (tmp_path / f"head-{head}.log").read_text()
    assert states == dict.fromkeys((head, train, successor), "COMPLETED"), (states, first[-3000:],
                                                                            log.read_text()[-3000:])
    assert "handing over to a new head" in first and f"the next head is job {successor}" in first
    assert (tmp_path / "results" / "smoke" / "tables" / "table2.csv").exists(), log.read_text()[-3000:]
    assert [c["rule"] for c in submissions(state)[before:]].count("train") == 1  # not trained again


def test_a_missing_dataset_fails_one_job_not_hundreds(slurm, tmp_path):
    """A CIFAR-10 config whose data_root does not exist: the pre-flight is the one job submitted, once, and the
    one that fails (not every run three times), with the line naming the data root and the fix."""
    env, state = slurm
    smoke = load_config(ROOT / "config" / "smoke.yaml")
    data_root = tmp_path / "no-data"
    write_config(tmp_path, data_root=str(data_root), teachers={}, analyses={}, claims=[], figures={},
                 cluster=SMALL_JOBS, datasets={"digits": {"source": "cifar10", "val_fraction": 0.1}},
                 tables={"table2": {**smoke["tables"]["table2"], "methods": ["CE", "LE(Grad-CAM)"]}})
    before = len(submissions(state))
    result = through_slurm(tmp_path, env, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    calls = submissions(state)[before:]
    assert [c["rule"] for c in calls] == ["preflight"], calls  # the pre-flight once (retries: 0), nothing else
    in_runs = {p.name for p in (tmp_path / "results" / "runs").rglob("*") if p.is_file()}
    assert all(name.startswith("record.") for name in in_runs), in_runs  # records only: no training job started
    line = next(line for line in output.splitlines() if line.startswith("pre-flight failed:"))
    assert f"python -m introspect download cifar10 --root {data_root}" in line
    report = output[output.index("1 job(s) failed:"):]
    log = tmp_path / "results" / "smoke" / "logs" / "preflight" / "cpu.log"
    assert report.splitlines()[1].startswith(f"  preflight: {log}")


def test_a_job_slurm_cancels_is_detected_and_reported(slurm, tmp_path):
    """Pre-emption that cancels instead of requeueing leaves sacct's State as `CANCELLED by <uid>`, which the
    plugin alone never sees end (introspect.cluster.slurm_status); the head ends and names the job and its state."""
    env, state = slurm
    budgets = {"resnet": {"epochs": 15, "batch_size": 128, "lr": 0.1, "lr_milestones": [0.5, 0.75]}}
    tables = {"table2": {"title": "one run", "dataset": "digits", "methods": ["CE"],
                         "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet"}]}}
    write_config(tmp_path, seeds=[0], budgets=budgets, tables=tables, teachers={}, figures={}, analyses={},
                 claims=[], cluster=SMALL_JOBS)
    run_dir = tmp_path / "results" / "runs" / "digits" / "resnet8" / "resnet-e15" / "ce" / "seed0"
    env = {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"}
    cmd = [str(BIN / "snakemake"), *PROFILE, "--retries", "0", "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml")]
    workflow = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "checkpoint.pt").exists() and workflow.poll() is None:
        time.sleep(0.2)
    jobs = subprocess.run(["squeue", "-h", "-o", "%i %k"], env=env, capture_output=True, text=True).stdout
    (job_id,) = [line.split()[0] for line in jobs.splitlines() if "rule_train" in line]
    subprocess.run(["scancel", job_id], env=env, check=True)
    try:
        log, _ = workflow.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        workflow.kill()
        raise AssertionError("the head never saw the cancelled job end") from None
    assert workflow.returncode != 0
    report = log[log.index("1 job(s) failed:"):]
    assert f"{job_id}.log [SLURM CANCELLED]" in report
    assert f"train (SLURM job {job_id}: CANCELLED). Rerun the same command" in report


def test_a_second_trainer_of_a_running_run_refuses_under_slurm(slurm, tmp_path):
    """A SLURM job that would train a run another process is training (a resubmission after a head crash)
    refuses at once with the lock's holder named, and the first trainer goes on."""
    from introspect.errors import EXIT_BUSY
    from introspect.runs.spec import RunSpec

    env, _ = slurm
    spec = {"run_id": "locked", "model": "resnet8", "method": {"name": "ce"}, "seed": 1,
            "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
            "budget": {"epochs": 1000, "batch_size": 32, "lr": 0.05}}  # still training when the job starts
    (tmp_path / "spec.json").write_text(json.dumps(RunSpec.from_dict(spec).to_dict()))  # every field
    command = [str(BIN / "python"), "-m", "introspect", "train", "--spec", str(tmp_path / "spec.json"),
               "--out", str(tmp_path / "run"), "--threads", "1"]
    job_env = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
    job_env.pop("INTROSPECT_WORKER", None)
    first = subprocess.Popen(command, env=job_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert (tmp_path / "run" / "checkpoint.pt").exists(), "the first trainer did not start"
        job = subprocess.run(["sbatch", "--wait", "-o", str(tmp_path / "job.out"), "--mem", "1000",
                              "--wrap", " ".join(command)], env=job_env, capture_output=True, text=True,
                             timeout=300)
        output = (tmp_path / "job.out").read_text()
        assert job.returncode == EXIT_BUSY, (job.stdout, job.stderr, output)
        assert "busy: locked is being trained by" in output and f"pid {first.pid}" in output, output
        assert "not training it twice" in output and "Traceback" not in output
        assert first.poll() is None  # the first trainer goes on
    finally:
        first.kill()
        first.wait()
