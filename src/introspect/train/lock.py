"""One writer per run: a lock file in the run directory, held by the process that trains the run.

``fcntl.flock`` is the lock: the kernel releases it when its holder dies (``kill -9`` included), so a
dead trainer on the same host never blocks its successor. The file also records who holds it (host,
pid, SLURM job id, start time) for the message a second trainer prints, and a heartbeat refreshed
every minute by the holder: on shared file systems whose flock is local to one host (some Lustre and
BeeGFS mounts), a lock recorded by another host counts as held until its heartbeat is older than
``stale_after`` seconds. Everything a trainer does to the run directory, the start-up cleanup of
stale temporaries included, happens under the lock.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import RunBusyError

HEARTBEAT_SECONDS = 60.0
STALE_AFTER_SECONDS = 15 * 60.0  # generous: 15 missed heartbeats before another host takes over


@contextmanager
def writer_lock(path: Path, run_id: str, *, wait: bool = False, poll: float = 5.0,
                stale_after: float = STALE_AFTER_SECONDS) -> Iterator[dict[str, Any]]:
    """Hold the run's writer lock at ``path`` for the duration of the block, or raise
    :class:`RunBusyError` (with ``wait``: wait until it is free). Yields what the lock records."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
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
    recorded = _read(fd)
    other_host = recorded.get("host") not in (None, socket.gethostname())
    if other_host and time.time() - _timestamp(recorded.get("heartbeat")) < stale_after:
        fcntl.flock(fd, fcntl.LOCK_UN)  # this file system's flock does not see the other host's lock
        return False
    return True  # free, its holder on this host is dead (the kernel released it), or stale elsewhere


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
