"""Finished work survives faults: a run whose metrics.json is complete and valid is never retrained because
its outputs were deleted by a neighbour's failure, and a trainer dies with the job that started it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from introspect.train import RunSpec, train

ROOT = Path(__file__).resolve().parents[1]


def spec(epochs=2, **extra) -> RunSpec:
    return RunSpec.from_dict({
        "run_id": f"digits/mlp1024/mlp-e{epochs}/ce/seed1",
        "dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
        "model": "mlp1024", "method": {"name": "ce"},
        "budget": {"epochs": epochs, "batch_size": 64, "lr": 0.05}, "seed": 1, **extra})


def test_a_finished_run_whose_outputs_were_deleted_is_restored_not_retrained(tmp_path):
    run = tmp_path / "run"
    first = train(spec(), run)
    names = ("metrics.json", "model.pt", "epochs.csv")
    saved = {name: (run / name).read_bytes() for name in names}
    inodes = {name: (run / name).stat().st_ino for name in names}
    for name in names:  # what Snakemake does to every member of a failed pack
        (run / name).unlink()
    again = train(spec(fail_at_epoch=0), run)  # would fail at once if it trained
    assert again == first and {name: (run / name).read_bytes() for name in names} == saved
    assert {name: (run / name).stat().st_ino for name in names} == inodes  # the same files, linked back
    assert not (run / "checkpoint.pt").exists()


def test_outputs_in_place_are_returned_and_a_changed_definition_is_trained_afresh(tmp_path):
    run = tmp_path / "run"
    first = train(spec(), run)
    mtime = (run / "metrics.json").stat().st_mtime_ns
    assert train(spec(), run) == first and (run / "metrics.json").stat().st_mtime_ns == mtime  # nothing written
    (run / "metrics.json").unlink()
    changed = train(spec(budget={"epochs": 2, "batch_size": 64, "lr": 0.01}), run)  # same id, other lr
    assert changed["budget"]["lr"] == 0.01 and changed["test_acc_final"] != first["test_acc_final"]
    # the kept copy follows the run's latest result
    (run / "metrics.json").unlink()
    assert train(spec(budget={"epochs": 2, "batch_size": 64, "lr": 0.01}), run) == changed


def test_a_tampered_kept_copy_is_not_restored(tmp_path):
    run = tmp_path / "run"
    train(spec(), run)
    kept = run / ".finished" / "metrics.json"
    data = json.loads(kept.read_text())
    (run / "metrics.json").unlink()
    kept.unlink()  # break the link before editing, so the original run's file is not touched
    kept.write_text(json.dumps({**data, "seed": 2}))  # another run's
    from introspect.train import InjectedFailure

    with pytest.raises(InjectedFailure):  # not restored: it trains (and the injected failure shows it did)
        train(spec(fail_at_epoch=0), run)


def test_the_trainer_dies_with_the_shell_that_started_it(tmp_path):
    """SIGKILL of the job's shell: the trainer (PR_SET_PDEATHSIG) stops at the next batch instead of going on
    as an orphan and writing metrics.json after the job ended."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec(epochs=200).to_dict()))
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("INTROSPECT_WORKER", None)
    command = f"{sys.executable} -m introspect train --spec {spec_path} --out {run} --threads 1; sleep 600"
    shell = subprocess.Popen(["bash", "-c", command], env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (run / "epochs.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (run / "epochs.csv").exists(), "the trainer never finished an epoch"
    trainer = next(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == shell.pid)
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait()
    deadline = time.monotonic() + 60
    while _alive(trainer) and time.monotonic() < deadline:
        time.sleep(0.2)
    outlived = _alive(trainer)
    if outlived:
        os.kill(trainer, signal.SIGKILL)  # ours: no orphan left behind by a failing test
    assert not outlived, "the trainer outlived its shell"
    assert not (run / "metrics.json").exists()


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
