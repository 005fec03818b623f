"""A process of a local workflow run ends with the run's Snakemake (introspect.cluster.head): the head's
token in the environment, watched through a pidfd; a cluster job (another SLURM job or host) is not watched."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from introspect.cluster.head import HEAD_ENV, head_token, local_head, start_time

pytestmark = pytest.mark.system  # processes killed and watched
ROOT = Path(__file__).resolve().parents[1]
WATCHER = ("import time; from introspect.cluster.head import end_with_head; "
           "print(end_with_head(), flush=True); time.sleep(120)")


def test_the_token_names_a_local_head_only(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    token = head_token(os.getpid())
    assert local_head(token) == (os.getpid(), start_time(os.getpid()))
    pid, started, host, _ = token.split(":")
    assert local_head(":".join([pid, started, "another-host", ""])) is None  # a job on another node
    assert local_head(":".join([pid, started, host, "1234"])) is None  # the head ran in SLURM job 1234, we do not
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert local_head(token) is None  # a cluster job of a head outside SLURM
    assert local_head(":".join([pid, started, host, "77"])) == (int(pid), started)  # a local job of head job 77
    for bad in ("", "12", "x:1:h:", f"{pid}::{host}:"):
        assert local_head(bad) is None


def _watcher(token: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), HEAD_ENV: token}
    env.pop("SLURM_JOB_ID", None)
    return subprocess.Popen([sys.executable, "-c", WATCHER], env=env, stdout=subprocess.PIPE, text=True)


def test_a_process_ends_when_its_head_is_killed():
    head = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        watcher = _watcher(":".join([str(head.pid), start_time(head.pid), socket.gethostname(), ""]))
        assert watcher.stdout.readline().strip() == "True"  # watching
        assert watcher.poll() is None
        head.kill()
        assert watcher.wait(timeout=30) == -signal.SIGTERM
    finally:
        head.kill()
        head.wait()


def test_a_process_whose_head_is_gone_already_ends_at_once():
    head = subprocess.Popen([sys.executable, "-c", "pass"])
    token = ":".join([str(head.pid), start_time(head.pid) or "1", socket.gethostname(), ""])
    head.wait()
    started = time.monotonic()
    watcher = _watcher(token)
    assert watcher.wait(timeout=30) == -signal.SIGTERM
    assert time.monotonic() - started < 30


def test_a_cluster_job_outlives_its_head():
    head = subprocess.Popen([sys.executable, "-c", "pass"])
    token = ":".join([str(head.pid), start_time(head.pid) or "1", socket.gethostname(), "999"])  # head in job 999
    head.wait()
    watcher = _watcher(token)  # no SLURM_JOB_ID: not a process of that head's SLURM job
    try:
        assert watcher.stdout.readline().strip() == "False"
        assert watcher.poll() is None
    finally:
        watcher.kill()
        watcher.wait()
