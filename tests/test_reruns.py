"""The rerun matrix: {fresh, after a full run} x {dry run, one target, all} x {no change, budget change, new
method, new seed, deleted output, killed trainer, killed Snakemake, failed pack member}, on a tiny config
this file builds (Table 3's MLP: CE, Dropout with a two-point sweep, LE(Grad) with its warm-up; two seeds).

Each case copies the results of one shared base run (or starts empty), runs `snakemake` as a user would
and asserts which runs were trained (from Snakemake's own log of the call), that no other run was, and
that a dry run left the working directory byte-identical (Snakemake's own .snakemake/ aside). Each case
records its job count and wall time (printed; docs/reruns.md quotes them).

A fresh tree with a changed config is the same as a fresh run of another config, so "fresh x all" is run
for the base config alone (the base fixture); the fresh dry runs and targets cover every change.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from introspect.cluster.run_summary import TRAINING_RULES, built_jobs
from introspect.config.model import load_config
from introspect.plan.build import build_plan
from workflow_helpers import BIN, ROOT, latest_log

pytestmark = pytest.mark.workflow

CE0 = "digits/mlp1024/mlp-e2/ce/seed0"
TIMINGS: dict[str, tuple[int, float]] = {}


def base_config() -> dict:
    smoke = load_config(ROOT / "config" / "smoke.yaml")  # with its base resolved
    return {
        **{k: smoke[k] for k in ("name", "seeds", "threads_per_run", "device", "table_metric", "datasets", "sweeps")},
        "results_dir": "results", "data_root": "data",
        "reported_results": str(ROOT / "config" / "reported_results.csv"),
        "budgets": {"mlp": {**smoke["budgets"]["mlp"], "batch_size": 128}},
        "methods": {name: smoke["methods"][name] for name in ("CE", "Dropout", "LE(Grad)")},
        "teachers": {}, "figures": {}, "analyses": {}, "claims": [],
        "claim_settings": {"catalogue": "paper", "only": ["t3_le_grad_gt_dropout_mlp1024"]},
        "tables": {"table3": {**smoke["tables"]["table3"], "methods": ["CE", "Dropout", "LE(Grad)"]}},
    }


def changed(change: str) -> dict:
    config = base_config()
    if change == "budget change":
        config["budgets"]["mlp"]["epochs"] = 3
    elif change == "new method":
        config["methods"]["LS"] = {"method": "ls", "alpha": 0.9}
        config["tables"]["table3"]["methods"].append("LS")
    elif change == "new seed":
        config["seeds"] = [0, 1, 2]
    return config


def write(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def plan_of(workdir: Path, config: dict):
    return build_plan({**config, "results_dir": str(workdir / "results")})


def smk(workdir: Path, *args: str, check: bool = True, timeout: int = 1200) -> subprocess.CompletedProcess:
    """`snakemake` as a user runs it in ``workdir`` (targets first: --configfile takes several values). The
    timeout bounds a hang, not the speed: the base config's full run took 554 s at a load average of 20."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(BIN / "snakemake"), *args, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-5000:]}")
    result.log = latest_log(workdir) if "-n" not in args else ""  # every job's block (the terminal has a line)
    return result


def timed(key: str, workdir: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    result = smk(workdir, *args, **kwargs)
    seconds = time.perf_counter() - started
    jobs = len([j for j in built_jobs(result.log) if j.rule != "all"]) if "-n" not in args else len(listed(result))
    TIMINGS[key] = (jobs, seconds)
    print(f"\nRERUN {key}: {jobs} jobs, {seconds:.1f} s")
    return result


def trained(result: subprocess.CompletedProcess) -> set[str]:
    """Runs whose training job finished in this call (from Snakemake's log of it)."""
    return {j.wildcards.removeprefix("run=") for j in built_jobs(result.log) if j.rule in TRAINING_RULES}


def listed(result: subprocess.CompletedProcess) -> set[str]:
    """Runs whose training job a dry run lists (for timed(): defined before its use at run time)."""
    runs, rule = set(), None
    for line in result.stdout.splitlines() + result.stderr.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("    wildcards: run=") and rule in TRAINING_RULES:
            runs.add(line.split("run=", 1)[1].strip())
    return runs


def tree_digest(workdir: Path) -> str:
    """Every file of the working directory but Snakemake's own .snakemake/: names, sizes and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in workdir.rglob("*") if ".snakemake" not in p.relative_to(workdir).parts):
        digest.update(str(path.relative_to(workdir)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The base config run once, fresh, as `snakemake --cores 2` (the "fresh x all x no change" case)."""
    workdir = tmp_path_factory.mktemp("base")
    write(workdir, base_config())
    result = timed("fresh / all / no change", workdir, "--cores", "2")
    assert trained(result) == set(plan_of(workdir, base_config()).runs)
    assert "Built in this call:" in result.stdout and "\nClaims (" in result.stdout
    return workdir


def start(base: Path, tmp_path: Path, state: str, config: dict) -> Path:
    workdir = tmp_path / "work"
    if state == "after":
        shutil.copytree(base, workdir, symlinks=True)
    else:
        workdir.mkdir()
    write(workdir, config)
    return workdir


CHANGES = ("no change", "budget change", "new method", "new seed")
CASES = [(state, mode, change) for state in ("fresh", "after") for mode in ("dry", "target", "all")
         for change in CHANGES if (state, mode) != ("fresh", "all")]


@pytest.mark.parametrize("state, mode, change", CASES)
def test_a_config_change_trains_exactly_what_it_changed(base, tmp_path, state, mode, change):
    config = changed(change)
    workdir = start(base, tmp_path, state, config)
    runs = set(plan_of(workdir, config).runs)
    finished = set(plan_of(workdir, base_config()).runs) if state == "after" else set()
    new = sorted(runs - finished)
    target = next((r for r in new if "/ce/" in r or "/ls-" in r), CE0)
    expected = runs - finished if mode != "target" else {target} - finished
    # a target first: --configfile takes several values
    metrics = f"results/runs/{target}/metrics.json"  # as the rules name it (results_dir is relative)
    args = ([metrics] if mode == "target" else []) + ["--cores", "2"]
    if mode == "dry":
        before = tree_digest(workdir)
        result = timed(f"{state} / dry / {change}", workdir, "-n", *args)
        assert tree_digest(workdir) == before  # planning wrote nothing
        assert listed(result) == expected
        if not expected and state == "after":
            assert "Nothing to be done" in result.stdout + result.stderr
        return
    result = timed(f"{state} / {mode} / {change}", workdir, *args)
    assert trained(result) == expected
    summary = result.stdout
    if expected:
        assert f"{len(expected)} of them training runs" in summary
    else:
        assert "Nothing to be done" in result.stderr or "Nothing was built in this call" in summary
    claims_built = any(job.rule == "claims" for job in built_jobs(result.log))
    assert ("\nClaims (" in summary) == claims_built  # a claims summary only of claims this call wrote
    again = smk(workdir, "-n", *args)  # the next dry run has nothing to do
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.parametrize("mode", ["dry", "target", "all"])
def test_a_deleted_metrics_json_is_put_back_without_training(base, tmp_path, mode):
    """After a full run, one run's metrics.json deleted: `all` builds nothing (the tables are up to date, and
    Snakemake does not look at a missing intermediate file); asked for by name, the run's job puts back the
    kept copy (introspect.train.finished) and trains nothing."""
    workdir = start(base, tmp_path, "after", base_config())
    metrics = workdir / "results" / "runs" / CE0 / "metrics.json"
    original = metrics.read_bytes()
    metrics.unlink()
    args = [f"results/runs/{CE0}/metrics.json", "--cores", "2"] if mode != "all" else ["--cores", "2"]
    if mode == "dry":
        before = tree_digest(workdir)
        result = timed("after / dry / deleted output", workdir, "-n", *args)
        assert tree_digest(workdir) == before and listed(result) == {CE0}
        return
    result = timed(f"after / {mode} / deleted output", workdir, *args)
    if mode == "all":
        assert trained(result) == set() and "Nothing to be done" in result.stderr
        assert not metrics.exists()
        return
    assert trained(result) == {CE0} and metrics.read_bytes() == original
    assert "finished already" in (metrics.parent / "train.log").read_text()


def trainer_of(run_dir: Path) -> int | None:
    """The process that holds the run's writer lock open (the trainer), if one does."""
    lock = str(run_dir / "writer.lock")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == lock for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def wait_for(predicate, timeout: float = 300, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out")


def background(workdir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env or {}), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(BIN / "snakemake"), *args, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml")]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def seed2(config: dict) -> dict:
    return {**config, "seeds": [0, 1, 2], "budgets": {"mlp": {**config["budgets"]["mlp"], "epochs": 8}}}


def test_a_killed_trainer_fails_its_job_and_the_rerun_resumes_it_and_trains_nothing_else(base, tmp_path):
    config = seed2(base_config())
    workdir = start(base, tmp_path, "after", config)
    victim = workdir / "results" / "runs" / "digits/mlp1024/mlp-e8/ce/seed0"
    head = background(workdir, "--cores", "2")
    wait_for(lambda: (victim / "checkpoint.pt").exists())
    pid = wait_for(lambda: trainer_of(victim))
    os.kill(pid, signal.SIGKILL)  # a trainer this test's Snakemake started
    head.communicate(timeout=900)
    assert head.returncode != 0 and not (victim / "metrics.json").exists()
    first = {j.wildcards.removeprefix("run=") for j in built_jobs(latest_log(workdir)) if j.rule in TRAINING_RULES}
    result = timed("after / all / killed trainer (rerun)", workdir, "--cores", "2")
    second = trained(result)
    runs = set(plan_of(workdir, config).runs)
    assert first | second == runs and not first & second  # each run trained once, the victim in the rerun
    assert str(victim.relative_to(workdir / "results" / "runs")) in second
    assert "resuming after epoch" in (victim / "train.log").read_text()


def test_a_killed_snakemake_leaves_no_run_to_train_twice(base, tmp_path):
    config = seed2(base_config())
    workdir = start(base, tmp_path, "after", config)
    first_run = workdir / "results" / "runs" / "digits/mlp1024/mlp-e8/ce/seed0"
    head = background(workdir, "--cores", "2")
    wait_for(lambda: (first_run / "checkpoint.pt").exists())
    os.kill(head.pid, signal.SIGKILL)  # Snakemake itself; its jobs go on as orphans or die with it
    head.communicate(timeout=60)
    runs_dir = workdir / "results" / "runs"
    wait_for(lambda: not any(trainer_of(d) for d in runs_dir.glob("digits/mlp1024/mlp-e8/*/seed*")), timeout=600,
             poll=0.5)
    done = {str(p.parent.relative_to(runs_dir)) for p in runs_dir.glob("digits/mlp1024/mlp-e8/*/seed*/metrics.json")}
    kept = {run: (runs_dir / run / "metrics.json").read_bytes() for run in done}
    # the same command refuses (the jobs the killed head was running are incomplete, its lock is left); the
    # recovery the README gives: `snakemake --unlock`, then the same command with --rerun-incomplete
    result = smk(workdir, "--cores", "2", check=False)
    assert result.returncode != 0 and ("IncompleteFilesException" in result.stderr or "LockException" in result.stderr)
    smk(workdir, "--unlock")
    result = timed("after / all / killed snakemake (rerun)", workdir, "--cores", "2", "--rerun-incomplete")
    for run, data in kept.items():  # finished before or after the kill: never trained again
        assert (runs_dir / run / "metrics.json").read_bytes() == data
        log = (runs_dir / run / "train.log").read_text()
        assert run not in trained(result) or "finished already" in log
    assert all((runs_dir / run / "metrics.json").exists() for run in plan_of(workdir, config).runs)


def tagged(tag: str) -> dict[int, str]:
    """Every process whose environment holds RERUN_TAG=tag (Snakemake's and whatever it started), with its
    command line."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"RERUN_TAG={tag}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:
            continue
    return found


@pytest.mark.parametrize("signum, local_worker", [(signal.SIGKILL, True), (signal.SIGKILL, False),
                                                   (signal.SIGTERM, True)],
                         ids=["SIGKILL-worker", "SIGKILL-no_worker", "SIGTERM-worker"])
def test_a_killed_snakemake_takes_every_process_of_its_run_with_it(base, tmp_path, signum, local_worker):
    """SIGKILL to Snakemake while runs train (forked by the warm worker, or each job's own process): every
    process it started ends within seconds (introspect.cluster.head), the run it was training stops at its next
    batch instead of finishing, and nothing in the working directory changes afterwards. SIGTERM is Snakemake's
    graceful stop: no new job, the running ones finish, then Snakemake, the worker and every job are gone."""
    workdir = start(base, tmp_path, "after", {**seed2(base_config()), "local_worker": local_worker})
    victim = workdir / "results" / "runs" / "digits/mlp1024/mlp-e8/ce/seed0"
    tag = f"{os.getpid()}-{tmp_path.name}"
    head = background(workdir, "--cores", "2", env={"RERUN_TAG": tag})
    wait_for(lambda: (victim / "checkpoint.pt").exists())
    os.kill(head.pid, signum)  # at once: the victim has 7 of its 8 epochs to go
    killed = time.perf_counter()
    head.communicate(timeout=600)
    try:
        wait_for(lambda: not tagged(tag), timeout=60, poll=0.2)
    except AssertionError:
        raise AssertionError(f"processes of the killed run remain: {tagged(tag)}") from None
    print(f"\nRERUN Snakemake killed ({signal.Signals(signum).name}, worker: {local_worker}): no process left after "
          f"{time.perf_counter() - killed:.1f} s")
    if signum == signal.SIGKILL:
        assert not (victim / "metrics.json").exists()
        assert "stopped by signal 15" in (victim / "train.log").read_text()  # SIGTERM when the head died
    else:
        assert (victim / "metrics.json").exists() and "stopped by signal" not in (victim / "train.log").read_text()
    after_kill = tree_digest(workdir)
    smk(workdir, "--unlock")  # the README's first recovery step (a few seconds): nothing else writes meanwhile
    assert tree_digest(workdir) == after_kill


def test_print_measured_timings():
    """The figures docs/reruns.md quotes (run with -s to see them)."""
    for key, (jobs, seconds) in sorted(TIMINGS.items()):
        print(f"TIMING {key}: {jobs} jobs, {seconds:.1f} s")


def test_a_pack_with_one_failing_member_keeps_its_finished_member(tmp_path):
    """cluster.runs_per_gpu: 2 under the stand-in SLURM: one SLURM job trains a pack of two runs, one of which
    fails at its first epoch. Snakemake fails the whole group job, deletes every member's outputs (the
    finished one's too) and retries the group; the finished member's job puts its kept files back and trains
    nothing (introspect.train.finished), in every retry and in the next call, which trains the failed run."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from standin import jobs, run_workflow, standin_env, tiny_config

    runs = {seed: f"digits/resnet8/resnet-e2/ce/seed{seed}" for seed in (0, 1)}
    cluster = {"runs_per_gpu": 2, "fake_gpus": True, "min_runtime_minutes": 1}
    tiny_config(tmp_path, seeds=(0, 1), epochs=2, cluster=cluster, fail_runs={runs[1]: 1})
    state = tmp_path / "slurm"
    standin_env(state)
    started = time.perf_counter()
    failed = run_workflow(tmp_path, state, "--retries", "1", check=False)
    assert failed.returncode != 0
    run0 = tmp_path / "results" / "runs" / runs[0]
    assert "finished already" in (run0 / "train.log").read_text()  # put back in the retry (each job's log is new)
    kept = run0 / ".finished" / "metrics.json"
    first = (kept.read_bytes(), kept.stat().st_ino)  # its wall_time_seconds would differ had it trained again
    tiny_config(tmp_path, seeds=(0, 1), epochs=2, cluster=cluster)  # the failure fixed
    result = run_workflow(tmp_path, state)
    TIMINGS["after / all / failed pack member (stand-in SLURM, both calls)"] = (
        len(jobs(state)), time.perf_counter() - started)
    assert (kept.read_bytes(), kept.stat().st_ino) == first and (run0 / "metrics.json").read_bytes() == first[0]
    assert "finished already" in (run0 / "train.log").read_text()
    assert (tmp_path / "results" / "runs" / runs[1] / "metrics.json").exists(), result.stderr[-3000:]
    preflight_ended = min(job["ended"] for job in jobs(state) if job["comment"] == "rule_preflight")
    for job in jobs(state):  # each pack's job names each run once, and starts after the pre-flight passed
        if "pack_anchor" in job["comment"]:
            targets = target_jobs((state / "jobs" / f"{job['id']}.sh").read_text())
            assert len(targets) == len(set(targets)) == 3, targets  # the anchor and the two runs
            assert job["submitted"] >= preflight_ended, job


def target_jobs(script: str) -> list[str]:
    """The --target-jobs of a SLURM job's script (the plugin's `python -m snakemake ... --target-jobs A B --x`)."""
    words = shlex.split(script.split("--target-jobs", 1)[1])
    return words[:next(i for i, word in enumerate(words) if word.startswith("--"))]
