"""CUDA MPS for packed runs (introspect.cluster.mps): which processes use it, the commands, and that the first
client starts the daemon and the last one stops it. The daemon itself is untested: no GPU here."""
import pytest

from introspect.cluster import mps


def recorder():
    calls = []

    def run(command, environ, stdin=None):
        calls.append((command, stdin, environ["CUDA_MPS_PIPE_DIRECTORY"], environ["CUDA_MPS_LOG_DIRECTORY"]))
        return True

    return calls, run


def packed(tmp_path, **extra):
    return {"INTROSPECT_PACK_MPS": "1", "SLURM_JOB_ID": "4711", "TMPDIR": str(tmp_path), **extra}


def test_only_packed_cuda_jobs_not_opted_out_use_mps(tmp_path):
    assert mps.wanted(packed(tmp_path), "cuda") and mps.wanted(packed(tmp_path), "cuda:1")
    assert not mps.wanted(packed(tmp_path), "cpu")
    assert not mps.wanted(packed(tmp_path, INTROSPECT_MPS="0"), "cuda")  # the profile's switch
    assert not mps.wanted({"SLURM_JOB_ID": "4711"}, "cuda")  # not a packed job


def test_the_commands_and_the_job_directory(tmp_path):
    assert mps.start_command() == ["nvidia-cuda-mps-control", "-d"]
    assert mps.stop_command() == (["nvidia-cuda-mps-control"], "quit\n")
    directory = mps.job_directory(packed(tmp_path))
    assert directory == tmp_path / "introspect-mps-4711"
    assert mps.client_environment(directory) == {"CUDA_MPS_PIPE_DIRECTORY": str(directory / "pipe"),
                                                 "CUDA_MPS_LOG_DIRECTORY": str(directory / "log")}


def test_the_first_client_starts_the_daemon_and_the_last_stops_it(tmp_path):
    calls, run = recorder()
    first, second = packed(tmp_path), packed(tmp_path)
    pipe = str(tmp_path / "introspect-mps-4711" / "pipe")
    with mps.packed_gpu_sharing("cuda", first, run=run, which=lambda _: "/usr/bin/x") as used_first:
        with mps.packed_gpu_sharing("cuda", second, run=run, which=lambda _: "/usr/bin/x") as used_second:
            assert used_first and used_second
            assert [c[0] for c in calls] == [["nvidia-cuda-mps-control", "-d"]]  # started once
            assert first["CUDA_MPS_PIPE_DIRECTORY"] == second["CUDA_MPS_PIPE_DIRECTORY"] == pipe
        assert len(calls) == 1  # one client left: the daemon keeps running
    assert calls[-1][:2] == (["nvidia-cuda-mps-control"], "quit\n") and calls[-1][2] == pipe
    assert (tmp_path / "introspect-mps-4711" / "clients").read_text() == "0"


def test_without_the_control_binary_or_a_daemon_the_runs_time_slice(tmp_path, caplog):
    environ = packed(tmp_path)
    with mps.packed_gpu_sharing("cuda", environ, which=lambda _: None) as used:
        assert not used and "CUDA_MPS_PIPE_DIRECTORY" not in environ
    assert "is not on this node" in caplog.text
    with mps.packed_gpu_sharing("cuda", environ, run=lambda *a, **k: False, which=lambda _: "/x") as used:
        assert not used and "CUDA_MPS_PIPE_DIRECTORY" not in environ


def test_a_failing_run_still_leaves_and_stops_the_daemon(tmp_path):
    calls, run = recorder()
    with pytest.raises(RuntimeError):
        with mps.packed_gpu_sharing("cuda", packed(tmp_path), run=run, which=lambda _: "/x"):
            raise RuntimeError("training failed")
    assert [c[1] for c in calls] == [None, "quit\n"]
