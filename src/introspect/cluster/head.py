"""Every process a local workflow run starts ends with that run's Snakemake (its "head").

Snakemake runs a local job as a shell in its own process; when Snakemake is killed (SIGKILL, an
out-of-memory kill, a closed terminal's SIGHUP to it alone), the shells and what they started go on as
orphans, and so does the warm worker's forked jobs (:mod:`.worker`): a claims job or a trainer then
writes its outputs after the call that started it has ended. The head marks its environment
(:func:`mark_head`, the Snakefile's onstart) with its process id, the process's start time (a reused
pid is not the head), its host and its SLURM job id; every ``introspect`` command a job of it runs
(the worker and its children included) calls :func:`end_with_head`, which has the kernel tell it when
the head exits (a pidfd, Linux 5.3+) and then sends SIGTERM to its own main thread: a trainer stops at
the next batch (its last epoch's checkpoint kept), any other command ends at once.

A SLURM job of the head runs under another SLURM job id (or on another host): it is not watched, since a
cluster job outlives its head by design (a restarted head picks it up). Elsewhere than Linux nothing
is watched.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import threading
from pathlib import Path

HEAD_ENV = "INTROSPECT_HEAD"


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def head_token(pid: int) -> str:
    """What names a head: pid, start time, host and SLURM job id ('' outside SLURM), ':'-separated."""
    return ":".join([str(pid), start_time(pid) or "", socket.gethostname(), os.environ.get("SLURM_JOB_ID", "")])


def mark_head() -> None:
    """Name this process (Snakemake) as the head of every process started from now on (they inherit it)."""
    os.environ[HEAD_ENV] = head_token(os.getpid())


def local_head(token: str | None) -> tuple[int, str] | None:
    """(pid, start time) of the head named by ``token`` if this process is one of its local jobs: same
    host and same SLURM job (a cluster job has its own), else None."""
    parts = (token or "").split(":")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1]:
        return None
    pid, started, host, slurm_job = parts
    if host != socket.gethostname() or slurm_job != os.environ.get("SLURM_JOB_ID", ""):
        return None
    return int(pid), started


def end_with_head(signum: int = signal.SIGTERM) -> bool:
    """Send ``signum`` to this process's main thread when the head that started it exits (at once if it
    has exited already). True when a head is watched (or was found gone)."""
    head = local_head(os.environ.get(HEAD_ENV))
    if head is None or not hasattr(os, "pidfd_open"):
        return False
    main = threading.main_thread().ident
    try:
        handle = os.pidfd_open(head[0])
    except ProcessLookupError:
        handle = None
    except OSError:  # no pidfd (old kernel, seccomp): nothing is watched
        return False
    if handle is None or start_time(head[0]) != head[1]:  # gone, or its pid taken by another process
        signal.pthread_kill(main, signum)
        return True

    def wait() -> None:
        select.select([handle], [], [])  # readable once the head has exited
        signal.pthread_kill(main, signum)

    threading.Thread(target=wait, daemon=True, name="end-with-head").start()
    return True
