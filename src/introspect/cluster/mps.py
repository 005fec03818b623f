"""CUDA MPS for packed runs (``cluster.runs_per_gpu`` > 1): the k training processes of one SLURM job share
the GPU through one MPS control daemon instead of time-slicing it, so the kernels of small networks run
side by side. UNTESTED ON A GPU: written against NVIDIA's documented interface
(``nvidia-cuda-mps-control -d`` starts the daemon, ``echo quit | nvidia-cuda-mps-control`` stops it; clients
find it through ``CUDA_MPS_PIPE_DIRECTORY``); the tests check the commands and the bookkeeping only.

The workflow asks for it by setting ``INTROSPECT_PACK_MPS=1`` in packed training jobs on CUDA (unless
``INTROSPECT_MPS=0``, which the SLURM profile sets to turn it off). Each training process of the job then
runs inside :func:`packed_gpu_sharing`: under a lock in a directory of the job's own (named by
``SLURM_JOB_ID``), the first process starts the daemon and the last one to finish stops it; a node without
the control binary, or where the daemon does not start, trains as before (time-sliced), with a warning.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from ..io import FileRefused, atomic_write_text, make_directory, open_lock_file, read_text

log = logging.getLogger("introspect.cluster")

CONTROL = "nvidia-cuda-mps-control"
REQUEST = "INTROSPECT_PACK_MPS"  # set by the workflow for packed CUDA training jobs
OPT_OUT = "INTROSPECT_MPS"  # "0": never (the SLURM profile's switch)


def wanted(environ: MutableMapping[str, str], device: str) -> bool:
    """Whether this training process should share its GPU through MPS."""
    return (environ.get(REQUEST) == "1" and environ.get(OPT_OUT, "1") != "0" and str(device).startswith("cuda"))


def job_directory(environ: MutableMapping[str, str]) -> Path:
    """The MPS pipe and log directories' parent: one per SLURM job (all processes of a pack agree on it)."""
    job = environ.get("SLURM_JOB_ID") or f"pid{os.getppid()}"
    return Path(environ.get("TMPDIR") or tempfile.gettempdir()) / f"introspect-mps-{job}"


def client_environment(directory: Path) -> dict[str, str]:
    """The variables the daemon and its clients (the training processes) read."""
    return {"CUDA_MPS_PIPE_DIRECTORY": str(directory / "pipe"), "CUDA_MPS_LOG_DIRECTORY": str(directory / "log")}


def start_command() -> list[str]:
    return [CONTROL, "-d"]


def stop_command() -> tuple[list[str], str]:
    """The command and its standard input."""
    return [CONTROL], "quit\n"


def _run(command: list[str], environ: dict[str, str], stdin: str | None = None) -> bool:
    try:
        result = subprocess.run(command, input=stdin, env=environ, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("CUDA MPS: %s failed (%s); packed runs time-slice the GPU", " ".join(command), error)
        return False
    if result.returncode != 0:
        log.warning("CUDA MPS: %s exited %d (%s); packed runs time-slice the GPU", " ".join(command),
                    result.returncode, (result.stderr or result.stdout).strip()[:200])
    return result.returncode == 0


@contextmanager
def _counted(directory: Path) -> Iterator[Path]:
    """The job's client-count file, under the job directory's lock (through the one door, introspect.io)."""
    make_directory(directory)
    fd = open_lock_file(directory / "lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory / "clients"
    finally:
        os.close(fd)  # releases the lock


def _clients(path: Path) -> int:
    try:
        return int(read_text(path, "lock") or 0)
    except (FileRefused, ValueError):
        return 0


@contextmanager
def packed_gpu_sharing(device: str, environ: MutableMapping[str, str] | None = None,
                       run=_run, which=shutil.which) -> Iterator[bool]:
    """Inside, this process is an MPS client of its job's daemon (started here if it is the first, stopped
    when the last one leaves); yields whether MPS is in use. Does nothing unless :func:`wanted`."""
    environ = os.environ if environ is None else environ
    if not wanted(environ, device):
        yield False
        return
    if which(CONTROL) is None:
        log.warning("CUDA MPS: %s is not on this node; packed runs time-slice the GPU", CONTROL)
        yield False
        return
    directory = job_directory(environ)
    variables = client_environment(directory)
    for path in variables.values():
        make_directory(path)
    with _counted(directory) as counter:
        clients = _clients(counter)
        started = clients > 0 or run(start_command(), {**environ, **variables})
        if started:
            atomic_write_text(counter, str(clients + 1))
    if not started:
        yield False
        return
    environ.update(variables)  # before CUDA initialises in this process
    try:
        yield True
    finally:
        with _counted(directory) as counter:
            clients = max(_clients(counter) - 1, 0)
            atomic_write_text(counter, str(clients))
            if clients == 0:
                command, stdin = stop_command()
                run(command, {**environ, **variables}, stdin)
