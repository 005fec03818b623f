"""One writer per run: a second trainer refuses (or waits) while the first runs; after the first is
killed with SIGKILL, the next one takes the run over and resumes it."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from introspect.errors import EXIT_BUSY
from introspect.runs.spec import RunSpec
from introspect.train import RunBusyError
from introspect.train.lock import writer_lock

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"run_id": "locked", "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15,
                                        "test_fraction": 0.2},
        "model": "resnet8", "method": {"name": "ce"}, "budget": {"epochs": 40, "batch_size": 32, "lr": 0.05},
        "seed": 1}


def _train(out: Path, *extra: str, spec=SPEC) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SLURM_JOB_ID": "4242"}
    env.pop("INTROSPECT_WORKER", None)
    spec_file = Path(f"{out}.spec.json")
    spec_file.write_text(json.dumps(RunSpec.from_dict(spec).to_dict()))  # every field, as a plan writes it
    cmd = [sys.executable, "-m", "introspect", "train", "--spec", str(spec_file), "--out", str(out),
           "--threads", "1", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), f"{path} did not appear"


@pytest.mark.system
def test_a_second_trainer_refuses_and_after_a_kill_the_next_one_resumes(tmp_path):
    run = tmp_path / "run"
    first = _train(run)
    try:
        _wait_for(run / "checkpoint.pt")
        holder = json.loads((run / "writer.lock").read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        assert holder["slurm_job_id"] == "4242" and holder["started"]
        second = _train(run)
        assert second.wait(timeout=120) == EXIT_BUSY
        message = second.stderr.read().strip()
        assert len(message.splitlines()) == 1 and f"pid {first.pid}" in message and "SLURM job 4242" in message
        assert first.poll() is None  # the first one goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert (run / "checkpoint.pt").exists() and not (run / "metrics.json").exists()
    third = _train(run)
    assert third.wait(timeout=600) == 0
    log = third.stderr.read()
    assert "resuming after epoch" in log
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 40


@pytest.mark.system
def test_with_wait_for_lock_a_second_trainer_waits_for_the_first(tmp_path):
    spec = {**SPEC, "budget": {**SPEC["budget"], "epochs": 2}}
    run = tmp_path / "run"
    with writer_lock(run.parent / "held.lock", "other"):
        pass  # a lock that is released leaves nothing held
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path; from introspect.train.lock import writer_lock\n"
        "with writer_lock(Path(sys.argv[2]), 'locked'):\n"
        "    print('held', flush=True); time.sleep(3)"), str(ROOT / "src"), str(run / "writer.lock")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    waiter = _train(run, "--wait-for-lock", spec=spec)
    assert waiter.wait(timeout=300) == 0 and holder.wait(timeout=10) == 0
    assert (run / "metrics.json").exists()


def test_a_lock_recorded_by_another_host_counts_until_its_heartbeat_is_stale(tmp_path):
    path = tmp_path / "writer.lock"
    fresh = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": fresh, "heartbeat": fresh}))
    with pytest.raises(RunBusyError, match="pid 1 on elsewhere"):
        with writer_lock(path, "r"):
            pass
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "2000-01-01T00:00:00+00:00",
                                "heartbeat": "2000-01-01T00:00:00+00:00"}))
    with writer_lock(path, "r") as holder:  # stale: taken over
        assert holder["pid"] == os.getpid()
    assert path.read_text() == ""  # released


def _record(heartbeat_offset: float, job: str | None = "777", host: str = "elsewhere") -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + heartbeat_offset))
    return {"host": host, "pid": 1, "slurm_job_id": job, "started": stamp, "heartbeat": stamp}


@pytest.mark.parametrize(("offset", "job", "state", "ours", "alive"), [
    (-30, "777", "RUNNING", None, True),       # fresh heartbeat, its job runs: held
    (-30, "777", "PENDING", None, True),       # requeued and waiting to run again: held
    (-30, "777", "", None, True),              # squeue gave no answer: the heartbeat decides
    (-30, None, None, None, True),             # not a SLURM job: the heartbeat decides
    (-30, "777", None, None, False),           # SLURM no longer lists its job (node failure, OOM kill)
    (-30, "777", "NODE_FAIL", None, False),    # listed, but ended
    (-30, "777", "RUNNING", "777", False),     # our own job's earlier run (a requeue keeps the job id)
    (-6 * 60, "777", "RUNNING", None, False),  # 6 minutes without a heartbeat (5 is the limit)
    (-4 * 60, None, None, None, True),         # 4 minutes: still held
    (60, "777", "RUNNING", None, True),        # a minute ahead: clocks differ a little
    (3 * 60, "777", "RUNNING", None, False),   # 3 minutes in the future: not a clock to trust
])
def test_a_lock_of_another_host_is_held_only_while_its_holder_may_live(monkeypatch, offset, job, state, ours, alive):
    from introspect.train.lock import holder_alive

    monkeypatch.setenv("SLURM_JOB_ID", ours or "1")
    asked = []
    assert holder_alive(_record(offset, job), job_state=lambda j: asked.append(j) or state) is alive
    assert asked in ([], [job])


@pytest.mark.system
def test_a_lock_whose_slurm_job_is_gone_is_taken_over_at_once(tmp_path, monkeypatch):
    """squeue (the stand-in SLURM) does not know job 777: the record of a fresh heartbeat is taken over."""
    from standin import standin_env

    for key, value in standin_env(tmp_path / "slurm").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    path = tmp_path / "writer.lock"
    path.write_text(json.dumps(_record(-10)))
    with writer_lock(path, "r") as holder:
        assert holder["pid"] == os.getpid()


def test_a_file_system_without_flock_is_one_line(tmp_path, monkeypatch):
    import errno

    from introspect.train import lock
    from introspect.train.errors import LockingUnsupported

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(lock.fcntl, "flock", no_locks)
    with pytest.raises(LockingUnsupported) as caught:
        with writer_lock(tmp_path / "writer.lock", "r"):
            pass
    message = str(caught.value)
    assert "\n" not in message and "does not support file locks" in message and "mount with flock" in message
