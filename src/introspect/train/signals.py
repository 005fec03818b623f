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
