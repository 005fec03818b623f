"""The local worker: jobs forked from a warm process give the same files as standalone jobs, forward
signals, and fall back to running themselves when no worker answers. Each test of a job through the
worker checks the worker's own log for that job, so a worker that serves nothing fails them; the
worker removes its directory on every exit it can see."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.system  # a worker process, forked jobs and signals
ROOT = Path(__file__).resolve().parents[1]
SPEC = {"run_id": "w", "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
        "model": "resnet8", "method": {"name": "le", "explainer": "grad_cam"},
        "budget": {"epochs": 2, "batch_size": 128, "lr": 0.1}, "seed": 3}


def _start_worker(directory: Path, *extra: str, log: Path | None = None) -> tuple[subprocess.Popen, Path]:
    path = directory / "socket"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("INTROSPECT_WORKER", None)
    stderr = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the worker writes it
    process = subprocess.Popen([sys.executable, "-m", "introspect", "worker", "--socket", str(path), *extra],
                               env=env, stderr=stderr)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), "the worker did not start"
    return process, path


class Worker:
    def __init__(self, socket: Path, log: Path):
        self.socket, self.log = socket, log

@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    log = tmp_path_factory.mktemp("worker-log") / "worker.log"
    process, path = _start_worker(tmp_path_factory.mktemp("worker"), log=log)
    yield Worker(path, log)
    process.terminate()
    process.wait(timeout=120)  # a bound on a hang: with torch loaded, exiting took over 10 s at load 15-25
    assert not path.exists()  # it removes its socket


def _jobs(worker: Worker) -> int:
    return worker.log.read_text().count("introspect worker: job ")


def _train(out, socket=None, spec=SPEC, **popen):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("INTROSPECT_WORKER", None)
    if socket:
        env["INTROSPECT_WORKER"] = str(getattr(socket, "socket", socket))
    spec_file = Path(str(out) + ".spec.json")
    spec_file.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    cmd = [sys.executable, "-m", "introspect", "train", "--spec", str(spec_file), "--out", str(out), "--threads", "1"]
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, **popen)


def _metrics(out):
    metrics = json.loads((out / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in ("wall_time_seconds", "command", "host")}


def test_a_job_through_the_worker_equals_a_standalone_job(worker, tmp_path):
    before = _jobs(worker)
    through, alone = _train(tmp_path / "through", worker), _train(tmp_path / "alone")
    assert through.wait(timeout=120) == 0 and alone.wait(timeout=120) == 0
    assert _jobs(worker) == before + 1  # the worker forked it (and not the standalone one)
    assert "test accuracy" in through.stderr.read()  # the job's own stderr, via the passed descriptor
    assert _metrics(tmp_path / "through") == _metrics(tmp_path / "alone")
    epochs = [(tmp_path / d / "epochs.csv").read_text().splitlines() for d in ("through", "alone")]
    strip = [[line.rsplit(",", 1)[0] for line in rows] for rows in epochs]  # all but the seconds column
    assert strip[0] == strip[1]


def test_sigterm_to_the_client_stops_the_forked_job_at_an_epoch_boundary(worker, tmp_path):
    spec = {**SPEC, "budget": {**SPEC["budget"], "epochs": 200}}
    before = _jobs(worker)
    client = _train(tmp_path / "run", worker, spec)
    deadline = time.monotonic() + 60
    while not (tmp_path / "run" / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=60) == 143
    assert "stopped by signal 15" in client.stderr.read()
    assert _jobs(worker) == before + 1
    assert (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_without_a_worker_the_job_runs_itself(tmp_path):
    client = _train(tmp_path / "run", tmp_path / "no-such-socket")
    assert client.wait(timeout=120) == 0
    assert (tmp_path / "run" / "metrics.json").exists()


def test_a_failing_job_reports_its_exit_status_through_the_worker(worker, tmp_path):
    before = _jobs(worker)
    client = _train(tmp_path / "run", worker, {**SPEC, "teacher": str(tmp_path / "missing.pt"),
                                               "method": {"name": "kd"}})
    assert client.wait(timeout=60) == 3
    assert "does not exist" in client.stderr.read()
    assert _jobs(worker) == before + 1


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_the_worker_removes_its_directory_when_stopped(how):
    directory = Path(tempfile.mkdtemp(prefix="introspect-worker-"))
    process, _ = _start_worker(directory, "--remove-directory")
    process.send_signal(getattr(signal, how))
    try:
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert not directory.exists()


def test_the_worker_removes_its_directory_when_its_parent_is_gone():
    """As when Snakemake is killed: the parent starts the worker with --parent-pid and dies."""
    directory = Path(tempfile.mkdtemp(prefix="introspect-worker-"))
    parent = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-m', 'introspect', 'worker', '--socket', sys.argv[1] + '/socket',"
        " '--parent-pid', str(os.getpid()), '--remove-directory'], stderr=subprocess.DEVNULL)\n"
        "while not os.path.exists(sys.argv[1] + '/socket'): time.sleep(0.1)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-c", parent, str(directory)], env=env, timeout=120, check=True)
    # the parent waited for the socket, so the worker was serving when its parent exited
    deadline = time.monotonic() + 30
    while directory.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not directory.exists()


def test_the_worker_does_not_import_the_command_line_dispatcher():
    source = (ROOT / "src" / "introspect" / "cluster" / "worker.py").read_text()
    assert "from .cli" not in source and "import cli" not in source and "introspect.cli" not in source


def test_the_worker_removes_its_directory_when_it_fails_to_start():
    directory = Path(tempfile.mkdtemp(prefix="introspect-worker-")) / ("x" * 120)  # a socket path too long
    directory.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-m", "introspect", "worker", "--socket", str(directory / "socket"),
                             "--remove-directory"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and not directory.exists()
    assert result.stderr.strip().startswith("error: the worker cannot serve on") and "Traceback" not in result.stderr
    directory.parent.rmdir()


def test_an_input_error_through_the_worker_is_one_line_and_its_exit_code(worker, tmp_path):
    client = _train(tmp_path / "run", worker, "{not json")
    assert client.wait(timeout=60) == 2  # errors.EXIT_INPUT_ERROR
    err = client.stderr.read().strip()
    assert len(err.splitlines()) == 1 and "not valid JSON" in err and "Traceback" not in err, err


def test_the_worker_serves_only_processes_its_snakemake_started():
    """A cluster job on the worker's host (not a descendant of its Snakemake) runs itself."""
    import socket

    from introspect.cluster.worker import _started_by

    server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _started_by(server, os.getpid())  # this process: the peer, its own ancestor
        assert _started_by(server, os.getppid())  # and its parent
        assert not _started_by(server, stranger.pid)  # a process that did not start it
        assert _started_by(server, None)  # no Snakemake named: a worker started by hand serves anyone
    finally:
        stranger.kill()
        stranger.wait()
        server.close()
        client.close()


@pytest.mark.parametrize("request_data", [b"[1, 2]", b'{"argv": "train"}', b"{not json",
                                          b'{"argv": [], "sys_argv": [], "cwd": 1, "env": {}}'])
def test_a_malformed_request_is_refused_without_a_job_and_the_worker_serves_on(worker, tmp_path, request_data):
    import socket

    from introspect.cluster.worker import _HEADER

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(str(worker.socket))
    socket.send_fds(conn, [_HEADER.pack(len(request_data)) + request_data], [0, 1, 2])
    assert conn.recv(8) == b""  # closed without forking a job
    conn.close()
    client = _train(tmp_path / "run", worker)  # and the next job is served
    assert client.wait(timeout=120) == 0
