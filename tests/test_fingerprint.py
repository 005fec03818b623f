"""The result set's fingerprint (introspect.runs.fingerprint) and `introspect summary`'s comparison with
a committed one."""
import json
from pathlib import Path

import pytest
import torch

from introspect.cli import main
from introspect.errors import InputError
from introspect.runs import fingerprint as fp
from introspect.train import RunSpec, train

pytestmark = pytest.mark.slow  # trains runs


def spec(run_id: str, seed: int) -> RunSpec:
    return RunSpec.from_dict({"run_id": run_id, "dataset": {"name": "digits", "image_size": 8}, "model": "mlp1024",
                              "method": {"name": "ce"}, "budget": {"epochs": 2, "batch_size": 128, "lr": 0.05},
                              "seed": seed})


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fingerprint") / "results"
    for seed in (0, 1):
        train(spec(f"digits/mlp/seed{seed}", seed), root / "runs" / "digits" / "mlp" / f"seed{seed}")
    return root


def copy_results(source: Path, target: Path) -> Path:
    for path in source.rglob("*"):
        if path.is_file() and path.name in ("metrics.json", "epochs.csv"):
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return target


def test_a_retrained_result_set_has_the_same_fingerprint(results, tmp_path):
    ours = fp.fingerprint(results, "default")
    assert ours["runs"] == 2 and set(ours["run_digests"]) == {"digits/mlp/seed0", "digits/mlp/seed1"}
    train(spec("digits/mlp/seed0", 0), tmp_path / "runs" / "digits" / "mlp" / "seed0")
    again = fp.run_digests(tmp_path)
    assert again["digits/mlp/seed0"] == ours["run_digests"]["digits/mlp/seed0"]
    # order-independent: the combined digest of the same runs listed in another order
    assert fp.combined(dict(reversed(list(ours["run_digests"].items())))) == ours["fingerprint"]
    assert ours["run_digests"]["digits/mlp/seed0"] != ours["run_digests"]["digits/mlp/seed1"]


def test_timings_and_host_do_not_count_numbers_do(results, tmp_path):
    copy = copy_results(results, tmp_path / "copy")
    run = copy / "runs" / "digits" / "mlp" / "seed1"
    before = fp.run_digests(copy)["digits/mlp/seed1"]
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(wall_time_seconds=12345.0, host="elsewhere", device={"device": "cpu", "threads": 8})
    (run / "metrics.json").write_text(json.dumps(metrics))
    lines = (run / "epochs.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[-1] == "seconds"
    lines[1] = ",".join(lines[1].split(",")[:-1] + ["99.5"])  # another epoch time
    (run / "epochs.csv").write_text("\n".join(lines) + "\n")
    assert fp.run_digests(copy)["digits/mlp/seed1"] == before
    loss = header.index("loss")
    cells = lines[1].split(",")
    cells[loss] = repr(float(cells[loss]) + 1e-12)  # a last-bits change of one epoch's loss
    lines[1] = ",".join(cells)
    (run / "epochs.csv").write_text("\n".join(lines) + "\n")
    assert fp.run_digests(copy)["digits/mlp/seed1"] != before


def test_summary_writes_and_compares_the_committed_fingerprint(results, tmp_path, capsys):
    expected = tmp_path / "expected.json"
    assert main(["summary", "--results", str(results), "--fingerprint", str(expected), "--write-fingerprint"]) == 0
    written = json.loads(expected.read_text())
    assert written["fingerprint"] == fp.fingerprint(results, "default")["fingerprint"] and written["runs"] == 2
    ours = fp.fingerprint(results, "default")
    assert fp.compare(ours, written, expected)[-1] == "They match: all 2 committed runs reproduced bit for bit."
    changed = {**written, "run_digests": {**written["run_digests"], "digits/mlp/seed1": "0" * 16,
                                          "digits/mlp/seed7": "1" * 16}}
    changed["fingerprint"] = fp.combined(changed["run_digests"])
    lines = fp.compare(ours, changed, expected)
    assert lines[2] == "They differ: 1 of 3 committed runs match, 1 differ, 1 not finished here."
    assert lines[3] == "Runs that differ: digits/mlp/seed1" and lines[4] == "Runs not finished here: digits/mlp/seed7"
    assert fp.compare(ours, None, expected)[-1] == f"No committed fingerprint at {expected} to compare with."


def test_a_malformed_committed_fingerprint_is_one_line(tmp_path):
    bad = tmp_path / "expected.json"
    bad.write_text('{"fingerprint": 3}')
    with pytest.raises(InputError, match="not a fingerprint file"):
        fp.read_expected(bad)
    assert fp.read_expected(tmp_path / "absent.json") is None


def test_the_summary_names_the_cpu_kernel_set_and_threads_the_runs_used(results):
    from introspect.analysis.headline import provenance
    from introspect.kernels import cpu_model
    from introspect.runs.record import ResultsLayout

    kernels = torch.backends.cpu.get_cpu_capability()
    pinned = "pinned" if kernels == "AVX2" else "native"
    assert provenance(ResultsLayout(results))["cpu"] == [f"{cpu_model()}, {kernels} kernels ({pinned}), 1 thread(s) "
                                                         "(2 runs)"]


def test_where_the_results_folder_is_does_not_count(results, tmp_path):
    """A run that read a selection names its file's path; two folders with the same numbers match."""
    copy = copy_results(results, tmp_path / "copy")
    path = copy / "runs" / "digits" / "mlp" / "seed0" / "metrics.json"
    metrics = json.loads(path.read_text())
    digests = []
    for folder, chosen in (("/a", 0.1), ("/b", 0.1), ("/b", 0.5)):
        metrics["spec"]["hyperparameters_from"] = f"{folder}/selection/digits/mlp-sel.json"
        metrics["hyperparameters"] = {"rate": chosen}
        path.write_text(json.dumps(metrics))
        digests.append(fp.run_digests(copy)["digits/mlp/seed0"])
    assert digests[0] == digests[1] != digests[2]  # the folder does not count; the chosen value does
