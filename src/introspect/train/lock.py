"""One writer per run: a lock file in the run directory, held by the process that trains the run.

``fcntl.flock`` is the lock: the kernel releases it when its holder dies (``kill -9`` included), so a
dead trainer on the same host never blocks its successor. The file also records who holds it (host,
pid, SLURM job id, start time) for the message a second trainer prints, and a heartbeat refreshed
every minute by the holder. On shared file systems whose flock is local to one host (some Lustre and
BeeGFS mounts), a lock recorded by another host counts as held unless its holder is known dead: its
SLURM job is ours (a requeued job keeps its id, so the record is of our own earlier incarnation) or no
longer runs (squeue), or its heartbeat is older than ``stale_after`` seconds (5 missed beats) or more
than ``FUTURE_TOLERANCE`` seconds in the future (a clock that cannot be trusted). So after a node
failure, an out-of-memory kill or SIGKILL the next attempt takes the run over at once, not after
retries spent on "busy". A file system without flock at all (Lustre mounted ``noflock``) is a
:class:`LockingUnsupported` error of one line; the pre-flight job checks this on ``results_dir``.
Everything a trainer does to the run directory, the start-up cleanup of stale temporaries included,
happens under the lock.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import LOCKING_UNSUPPORTED
from ..io import open_lock_file
from .errors import LockingUnsupported, RunBusyError

HEARTBEAT_SECONDS = 60.0
STALE_AFTER_SECONDS = 5 * 60.0  # 5 missed heartbeats: the holder is gone even where SLURM cannot tell
FUTURE_TOLERANCE = 120.0  # a heartbeat further ahead than this comes from a clock that cannot be trusted
# squeue states of a job that still runs or will run again (a pending requeue included)
LIVE_JOB_STATES = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
                             "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"})


@contextmanager
def writer_lock(path: Path, run_id: str, *, wait: bool = False, poll: float = 5.0,
                stale_after: float = STALE_AFTER_SECONDS) -> Iterator[dict[str, Any]]:
    """Hold the run's writer lock at ``path`` for the duration of the block, or raise
    :class:`RunBusyError` (with ``wait``: wait until it is free). Yields what the lock records."""
    fd = open_lock_file(path)  # never through a symlink: the holder truncates it
    try:
        while not _try_lock(fd, stale_after):
            if not wait:
                raise RunBusyError(f"{run_id} is being trained by {_describe(_read(fd))}; not training it twice "
                                   f"(wait for it, or stop that process; its lock is {path})")
            time.sleep(poll)
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                  "started": _now(), "heartbeat": _now()}
        _write(fd, holder)
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(fd, holder, stop), daemon=True, name="lock-heartbeat")
        beat.start()
        try:
            yield holder
        finally:
            stop.set()
            beat.join()
            _write(fd, {})  # released: nobody holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_lock(fd: int, stale_after: float) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in LOCKING_UNSUPPORTED:
            raise LockingUnsupported(unsupported_message(error)) from None
        raise
    recorded = _read(fd)
    other_host = recorded.get("host") not in (None, socket.gethostname())
    if other_host and holder_alive(recorded, stale_after):
        fcntl.flock(fd, fcntl.LOCK_UN)  # this file system's flock does not see the other host's lock
        return False
    return True  # free, its holder on this host is dead (the kernel released it), or dead elsewhere


def unsupported_message(error: OSError) -> str:
    return (f"this file system does not support file locks (flock: {error.strerror}), so two jobs could train "
            "one run at once; put results_dir on a file system with locking (on Lustre: mount with flock)")


def holder_alive(recorded: dict[str, Any], stale_after: float = STALE_AFTER_SECONDS,
                 job_state: Callable[[str], str | None] | None = None) -> bool:
    """Whether the holder recorded by another host may still be training: its heartbeat is recent and
    not from the future, its SLURM job (if any) is not this very job, and SLURM does not say it has
    ended. ``job_state``: job id -> its squeue state, None when SLURM does not list it, "" when unknown."""
    age = time.time() - _timestamp(recorded.get("heartbeat"))
    if age > stale_after or age < -FUTURE_TOLERANCE:
        return False
    job = recorded.get("slurm_job_id")
    if not job:
        return True
    if str(job) == os.environ.get("SLURM_JOB_ID"):
        return False  # our own job's earlier run (requeued): it is not running any more
    state = (job_state or slurm_job_state)(str(job))
    return state == "" or state in LIVE_JOB_STATES


def slurm_job_state(job_id: str) -> str | None:
    """squeue's state of a job; None when SLURM no longer lists it; "" when squeue gives no answer."""
    try:
        result = subprocess.run(["squeue", "--noheader", "--states=all", "--jobs", job_id, "--format=%T"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    if result.returncode != 0:
        return None if "Invalid job id" in result.stderr else ""
    return result.stdout.split()[0] if result.stdout.split() else None


def _heartbeat(fd: int, holder: dict[str, Any], stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        holder["heartbeat"] = _now()
        _write(fd, holder)


def _write(fd: int, data: dict[str, Any]) -> None:
    text = (json.dumps(data, sort_keys=True) + "\n").encode() if data else b""
    os.ftruncate(fd, 0)
    os.pwrite(fd, text, 0)
    os.fsync(fd)


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:  # a write in progress, or a file that is not ours
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _timestamp(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return 0.0


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    slurm = f", SLURM job {holder['slurm_job_id']}" if holder.get("slurm_job_id") else ""
    return (f"pid {holder.get('pid')} on {holder.get('host')}{slurm} since {holder.get('started')} "
            f"(heartbeat {holder.get('heartbeat')})")
