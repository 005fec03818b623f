"""A local fork server for the benchmark's jobs, as multiprocessing's ``forkserver`` does it.

Every Snakemake job is its own process, and on a CPU most of a small job's time was spent importing
torch (about 2.5 s of a 4 s job). With ``local_worker: true`` the Snakefile starts one server per
local workflow run; it imports torch and the package once, and each job's ``python -m introspect``
process (the client, which never imports torch) hands it its arguments, working directory,
environment and standard streams. The server forks a child that runs the command with exactly the
code path of an in-process run, so the numbers are identical; the client relays the child's exit
status and forwards SIGTERM/SIGINT to it (a preempted run still stops at an epoch boundary and keeps
its checkpoint). If the client disappears the child is stopped the same way. When no server answers,
the client runs the command itself: the worker is an optimisation, never a requirement.

The server serves only jobs that its own Snakemake process started (the client is a descendant of
``--parent-pid``): a cluster job that happens to land on the same host and inherited the socket's
variable runs itself, inside its own allocation.

The server never runs a torch operation itself, so no thread pool exists when it forks. It is handed
the command dispatcher (``run``) by its caller and imports nothing of the CLI (no cli <-> worker
cycle). With ``remove_directory`` it owns the socket's directory and removes it on every exit it can
see (SIGTERM, SIGINT, SIGHUP, its parent gone, an error); the Snakefile removes it after a SIGKILL.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

SOCKET_ENV = "INTROSPECT_WORKER"
_HEADER = struct.Struct("!I")
_STATUS = struct.Struct("!i")
_PID = struct.Struct("!q")
_MAX_REQUEST = 16 << 20  # argv and environment of one job; a larger length is not a client of ours


# ---------------------------------------------------------------- client (no torch here)

def run_through_worker(argv: list[str]) -> int | None:
    """Run ``python -m introspect <argv>`` in a forked child of the server named by ``$INTROSPECT_WORKER``.

    Returns the child's exit status, or None when no server is reachable (run it yourself then).
    """
    path = os.environ.get(SOCKET_ENV)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(5.0)
        conn.connect(path)
        request = json.dumps({"argv": argv, "sys_argv": sys.argv, "cwd": os.getcwd(),
                              "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [_HEADER.pack(len(request)) + request], [0, 1, 2])
        child = _PID.unpack(_read_exactly(conn, _PID.size))[0]
    except (OSError, ConnectionError):
        conn.close()
        return None
    conn.settimeout(None)
    forwarded = {sig: signal.signal(sig, lambda signum, _frame: _forward(child, signum))
                 for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _STATUS.unpack(_read_exactly(conn, _STATUS.size))[0]
    except ConnectionError:
        print(f"introspect: the worker's child process {child} died without an exit status", file=sys.stderr)
        return 1
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
        conn.close()


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


# ---------------------------------------------------------------- server

Dispatcher = Callable[[list[str]], int]  # runs one command line, returns its exit status


def serve(path: str | Path, run: Dispatcher, parent_pid: int | None = None, remove_directory: bool = False) -> None:
    """Accept jobs on the UNIX socket ``path`` until SIGTERM/SIGINT/SIGHUP, or until ``parent_pid`` is
    gone; each job is ``run(argv)`` in a forked child. With ``remove_directory`` the socket's
    directory is removed when the server stops."""
    path = Path(path)
    try:
        _preload()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        server.bind(str(path))
        try:
            _accept_jobs(server, path, run, parent_pid)
        finally:
            server.close()
            path.unlink(missing_ok=True)
    finally:
        if remove_directory:
            shutil.rmtree(path.parent, ignore_errors=True)


def _preload() -> None:
    import numpy.random  # noqa: F401  (numpy imports it lazily, 0.1 s, at a job's first split)
    import torch  # noqa: F401  (the point: imported once, before any fork)

    from .. import analysis, data, explain, methods, models, train  # noqa: F401
    from ..analysis import figures, selection, students, tables  # noqa: F401

    data.preload_datasets()  # what every job would read again, read once


def _accept_jobs(server: socket.socket, path: Path, run: Dispatcher, parent_pid: int | None) -> None:
    server.listen(64)
    server.settimeout(1.0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    print(f"introspect worker: serving on {path} (pid {os.getpid()})", file=sys.stderr, flush=True)
    while not stopping.is_set() and (parent_pid is None or os.getppid() == parent_pid):
        try:
            conn, _ = server.accept()
        except (TimeoutError, InterruptedError):
            continue
        if _started_by(conn, parent_pid):
            _fork_job(server, conn, run)
        else:
            conn.close()  # not a job of our Snakemake: the client runs it itself

def _started_by(conn: socket.socket, ancestor: int | None) -> bool:
    """Whether the connecting process descends from ``ancestor`` (Linux: its peer credentials and /proc)."""
    if ancestor is None:
        return True
    try:
        pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
        while pid > 1:
            if pid == ancestor:
                return True
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent's pid
    except (OSError, AttributeError, ValueError, IndexError, struct.error):
        return False
    return False


def _fork_job(server: socket.socket, conn: socket.socket, run: Dispatcher) -> None:
    fds: list[int] = []
    try:
        conn.settimeout(5.0)
        first, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
        size = _HEADER.unpack(first[:_HEADER.size])[0]
        if size > _MAX_REQUEST:
            raise ValueError(f"a request of {size} bytes")
        body = first[_HEADER.size:]
        if len(body) < size:
            body += _read_exactly(conn, size - len(body))
        request = _checked_request(json.loads(body), fds)
    except (OSError, ValueError, struct.error, ConnectionError) as error:
        print(f"introspect worker: bad request ({error})", file=sys.stderr, flush=True)
        conn.close()
        for fd in fds:  # the streams a bad request passed
            os.close(fd)
        return
    child = os.fork()
    if child == 0:  # the child: becomes the job
        server.close()
        _run_child(conn, request, fds, run)
    print(f"introspect worker: job {child}: {' '.join(request.get('argv', [])[:1])}", file=sys.stderr, flush=True)
    conn.close()
    for fd in fds:
        os.close(fd)


def _checked_request(request: object, fds: list[int]) -> dict:
    """The request a client sends (argv, sys_argv, cwd, env) with its three standard streams, or ValueError."""
    if len(fds) != 3 or not isinstance(request, dict):
        raise ValueError("not a request with three standard streams")
    valid = (_strings(request.get("argv")) and _strings(request.get("sys_argv"))
             and isinstance(request.get("cwd"), str) and isinstance(request.get("env"), dict)
             and _strings(list(request["env"])) and _strings(list(request["env"].values())))
    if not valid:
        raise ValueError("argv, sys_argv, cwd or env missing or of the wrong type")
    return request


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _run_child(conn: socket.socket, request: dict, fds: list[int], run: Dispatcher) -> None:
    status = 1
    try:
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
        os.setsid()  # its own session: signals to the server's group do not reach it, the client's do
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(SOCKET_ENV, None)  # a nested command runs in this process
        sys.argv = request["sys_argv"]  # provenance records the job's command, not the server's
        conn.settimeout(None)
        conn.sendall(_PID.pack(os.getpid()))
        _stop_when_client_leaves(conn)
        status = run(request["argv"])
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001  (the job's own stderr gets the traceback)
        traceback.print_exc()
        status = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(_STATUS.pack(status))
        except OSError:
            pass
        os._exit(status)


def _stop_when_client_leaves(conn: socket.socket) -> None:
    """A killed client (SIGKILL from Snakemake or SLURM) must not leave its job running."""

    def watch() -> None:
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="client-watch").start()


class LocalWorker:
    """A worker process this Snakemake started (:func:`start_local_worker`); :meth:`stop` ends it."""

    def __init__(self, process, directory: str):
        self.process, self.directory = process, directory

    def stop(self) -> None:
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)  # after a SIGKILL of the worker too


def start_local_worker(timeout: float = 60) -> LocalWorker | None:
    """Start a worker serving the jobs of this (Snakemake) process and point this process's environment
    at it (``INTROSPECT_WORKER``, which the jobs inherit); None, with one line on stdout, if it did not start:
    every job then imports torch itself."""
    import subprocess
    import tempfile
    import time

    directory = tempfile.mkdtemp(prefix="introspect-worker-")
    path = os.path.join(directory, "socket")
    env = dict(os.environ)
    env.pop(SOCKET_ENV, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "introspect", "worker", "--socket", path, "--parent-pid", str(os.getpid()),
         "--remove-directory"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if os.path.exists(path):
        os.environ[SOCKET_ENV] = path
        return LocalWorker(process, directory)
    process.kill()
    shutil.rmtree(directory, ignore_errors=True)
    print("introspect: the local worker did not start; every job imports torch itself")
    return None
