"""SIGTERM (SLURM pre-emption or time limit) and SIGINT end a run at the next batch boundary, so the
checkpoint of the last finished epoch is what a retry resumes from."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopFlag:
    requested = False
    signal: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """A flag the loop checks between batches; set by SIGTERM or SIGINT while the context is open."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be installed from the main thread
        return

    def handler(signum, _frame):
        flag.requested, flag.signal = True, signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux ``PR_SET_PDEATHSIG``),
    so a training job's trainer stops with the job's shell instead of going on as an orphan that writes a
    run's files after Snakemake reported the job failed. SIGTERM: the loop stops at the next batch and
    keeps the last epoch's checkpoint. Elsewhere (no prctl) nothing changes."""
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signum), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signum)
