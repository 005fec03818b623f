"""Specs and records as typed files, the run identity, paths inside their root, and views per config.

Every spec the plan builds survives its file unchanged; a file handed to the CLI is data: unknown
keys, wrong types, malformed JSON, a missing file and ids that would leave results_dir are one line
and the input-error exit code, and nothing is written outside results_dir."""
import copy
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from introspect.cli import main
from introspect.config.model import load_config
from introspect.errors import EXIT_INPUT_ERROR, InputError, UnsafePathError
from introspect.plan.build import ConfigError, build_plan
from introspect.plan.job_files import (
    from_data,
    job_files,
    read_record,
    read_spec,
    record_digest,
    spec_digest,
    spec_text,
)
from introspect.plan.views import AnalysisSpec, ClaimsSpec, FigureSpec, Selection, TableSpec
from introspect.runs.paths import check_id, check_results_dir
from introspect.runs.record import ResultsLayout, RunRecord

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"table": TableSpec, "figure": FigureSpec, "analysis": AnalysisSpec, "selection": Selection}


def smoke(results_dir: Path, **changes) -> dict:
    config = load_config(ROOT / "config" / "smoke.yaml")
    config.update(results_dir=str(results_dir), reported_results=str(ROOT / "config" / "reported_results.csv"))
    config.update(changes)
    return config


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return build_plan(smoke(tmp_path_factory.mktemp("plan") / "results"))


def spec_file(plan, kind: str, name: str) -> Path:
    """A job's spec file as the workflow's job_files step writes it."""
    files = job_files(plan)
    files.write()
    return files.path(kind, name)


def record_file(plan, run_id: str) -> Path:
    return spec_file(plan, "record", run_id)


def test_every_spec_and_record_is_the_same_after_its_file(plan):
    for kind, cls in KINDS.items():
        specs = {"table": plan.tables, "figure": plan.figures, "analysis": plan.analyses,
                 "selection": plan.selections}[kind]
        assert specs
        for name, spec in specs.items():
            assert read_spec(cls, spec_file(plan, kind, name)) == spec, (kind, name)
    assert read_spec(ClaimsSpec, spec_file(plan, "claims", "claims")) == plan.claims
    for run_id, run in plan.runs.items():
        path = record_file(plan, run_id)
        assert read_record(path) == run
        assert path.parent == plan.layout.run(run_id).directory and path.name.startswith("record.")


def test_specs_have_typed_fields_and_no_config_dict(plan):
    table = plan.tables["table3"]
    assert table.metric == "error" and table.lower_is_better and table.layout == "models_as_rows"
    assert table.baseline == "CE" and table.paper_table == 3 and table.title
    assert table.notes.dataset == "digits" and table.notes.seeds == [0, 1]
    assert plan.figures["figure3"].kind == "accuracy" and plan.analyses["students"].fractions
    for spec in [*plan.tables.values(), *plan.figures.values(), *plan.analyses.values()]:
        assert not hasattr(spec, "config") and not hasattr(spec, "settings")


def test_a_spec_file_is_named_by_its_content_and_never_rewritten(plan, tmp_path):
    path = spec_file(plan, "table", "table2")
    os.utime(path, (1_000_000, 1_000_000))
    assert spec_file(plan, "table", "table2") == path and path.stat().st_mtime == 1_000_000
    changed = build_plan(smoke(plan.config.results_dir, seeds=[0, 1, 2]))
    assert spec_digest(changed, "table", "table2") != spec_digest(plan, "table", "table2")
    new = spec_file(changed, "table", "table2")
    assert new != path and new.parent == path.parent and path.stat().st_mtime == 1_000_000
    assert json.loads(new.read_text())["notes"]["seeds"] == [0, 1, 2]


def test_planning_computes_the_job_files_and_writes_nothing(tmp_path):
    plan = build_plan(smoke(tmp_path / "results"))
    files = job_files(plan, {"preflight": ("{}\n", ["a", "b"])})
    assert not (tmp_path / "results").exists()
    assert len(files.files) == len(plan.runs) + len(plan.tables) + len(plan.figures) + len(plan.analyses) \
        + len(plan.selections) + 1 + 2  # claims, config, pre-flight
    # the pre-flight's spec is named by its identity (the files it writes), not by its text
    assert files.path("preflight", "preflight") == job_files(plan, {"preflight": ("{}x\n", ["a", "b"])}).path(
        "preflight", "preflight")
    assert sorted(files.write()) == sorted(files.files) and files.write() == []


def test_options_that_change_no_numbers_leave_the_run_identity(plan, tmp_path):
    """Data location, evaluation batch size, device and threads: the same ids, record files, params trigger
    and checkpoint identity; they reach the job as options and are recorded as provenance."""
    moved = build_plan(smoke(plan.config.results_dir, data_root=str(tmp_path / "scratch"), eval_batch_size=7,
                             device="cuda", threads_per_run=2))
    assert set(moved.runs) == set(plan.runs)
    for run_id in plan.runs:
        assert record_digest(moved, run_id) == record_digest(plan, run_id)
        assert spec_text(moved.runs[run_id]) == spec_text(plan.runs[run_id])
        here, there = plan.runs[run_id].run_spec(plan.run_options), moved.runs[run_id].run_spec(moved.run_options)
        assert here.training_identity() == there.training_identity()
        assert there.data_root == str(tmp_path / "scratch") and there.eval_batch_size == 7
    other_lr = copy.deepcopy(dict(plan.config.document))
    other_lr["budgets"]["mlp"]["lr"] = 0.5
    changed = build_plan(other_lr)
    mlp = next(r for r in plan.runs if "/mlp1024/" in r)
    assert record_digest(changed, mlp) != record_digest(plan, mlp)
    assert changed.runs[mlp].run_spec().training_identity() != plan.runs[mlp].run_spec().training_identity()


@pytest.mark.parametrize("results_dir", ["/", "/etc", "/usr/local/results", "/proc/self", "~", "/tmp", "/home"])
def test_results_dir_is_refused_where_it_would_overwrite_the_system(results_dir):
    with pytest.raises(UnsafePathError, match="results_dir"):
        check_results_dir(results_dir)
    with pytest.raises(ConfigError, match="results_dir"):
        build_plan(smoke(results_dir))


def test_results_dir_through_a_symlink_to_a_system_directory_is_refused(tmp_path):
    (tmp_path / "results").symlink_to("/etc")
    with pytest.raises(ConfigError, match="resolves to /etc"):
        build_plan(smoke(tmp_path / "results"))


@pytest.mark.parametrize("bad", ["../x", "a/../../b", "/abs", "a//b", ".", "a/./b", "a b", "x" * 256, "a;rm"])
def test_ids_that_could_leave_their_folder_are_refused(bad):
    with pytest.raises(UnsafePathError):
        check_id("run id", bad)


def test_the_config_name_namespaces_views_and_is_a_plain_name(tmp_path):
    named = build_plan(smoke(tmp_path / "results", name="other"))
    assert named.layout.table("table2", "md") == tmp_path / "results" / "other" / "tables" / "table2.md"
    assert named.layout.claims("csv") == tmp_path / "results" / "other" / "claims.csv"
    assert named.layout.run("a/b").directory == tmp_path / "results" / "runs" / "a" / "b"  # runs: shared
    assert named.tables["table2"].view_layout.tables_dir == named.layout.tables_dir
    for bad in ("runs", "selection", "../up", "a/b"):
        with pytest.raises(ConfigError, match="name"):
            build_plan(smoke(tmp_path / "results", name=bad))


# ---------------------------------------------------------------- the CLI, handed hostile files

def record_data(plan, **changes) -> dict:
    run = plan.runs[plan.ids("train")[0]]
    return {**run.to_dict(), **changes}


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def spec_data(plan, kind):
    specs = {"table": plan.tables, "figure": plan.figures, "analysis": plan.analyses, "selection": plan.selections,
             "claims": {"claims": plan.claims}}[kind]
    return json.loads(spec_text(next(iter(specs.values()))))


COMMANDS = {"table": ["table", "--reported", str(ROOT / "config" / "reported_results.csv")], "select": ["select"],
            "figure": ["figure"], "analyse": ["analyse"],
            "claims": ["claims", "--reported", str(ROOT / "config" / "reported_results.csv")]}
KIND_OF = {"table": "table", "select": "selection", "figure": "figure", "analyse": "analysis", "claims": "claims"}
BREAKAGES = {
    "malformed JSON": (lambda data: "{not json", "not valid JSON"),
    "an unknown key": (lambda data: {**data, "colour": "red"}, "unknown key(s) 'colour'"),
    "a wrong type": (lambda data: {**data, "results_dir": 3}, "results_dir: expected a string"),
    "a list for an object": (lambda data: [data], "(top level): expected an object"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_every_command_refuses_a_broken_spec_file_in_one_line(plan, tmp_path, capsys, command, breakage):
    mutate, fragment = BREAKAGES[breakage]
    path = write(tmp_path / "spec.json", mutate(spec_data(plan, KIND_OF[command])))
    assert main([COMMANDS[command][0], "--spec", str(path), *COMMANDS[command][1:]]) == EXIT_INPUT_ERROR
    error = one_line_error(capsys)
    assert str(path) in error and fragment in error


@pytest.mark.parametrize("command", ["train --record", *COMMANDS])
def test_a_missing_spec_file_is_one_line(tmp_path, capsys, command):
    name, *rest = command.split()
    option = rest or ["--spec"]
    args = [name, *option, str(tmp_path / "missing.json"), *COMMANDS.get(name, [name])[1:]]
    assert main(args) == EXIT_INPUT_ERROR
    assert "no such" in one_line_error(capsys)


@pytest.mark.parametrize("field,value", [("run_id", "../../../escaped/seed0"), ("teacher", "../../../x"),
                                         ("init_from", "/etc/passwd"), ("selection", "a/../../b"),
                                         ("results_dir", "/")])
def test_a_record_that_would_leave_results_dir_is_refused(plan, tmp_path, capsys, field, value):
    path = write(tmp_path / "record.json", record_data(plan, **{field: value}))
    assert main(["train", "--record", str(path)]) == EXIT_INPUT_ERROR
    assert field in one_line_error(capsys)
    assert not (tmp_path.parent / "escaped").exists() and not any(Path(plan.config.results_dir).rglob("*.pt"))


@pytest.mark.parametrize("field,value,fragment", [("seed", "0", "seed: expected an integer"),
                                                  ("kind", "evil", "kind: expected one of"),
                                                  ("method", {"name": ["ce"]}, "method.name"),
                                                  ("spec", {"dataset": {"name": "digits", "root": "/"}}, "root")])
def test_a_record_of_wrong_types_is_refused(plan, tmp_path, capsys, field, value, fragment):
    path = write(tmp_path / "record.json", record_data(plan, **{field: value}))
    assert main(["train", "--record", str(path)]) == EXIT_INPUT_ERROR
    assert fragment in one_line_error(capsys)


def test_a_symlink_out_of_results_dir_is_refused_on_the_resolved_path(tmp_path, capsys):
    plan = build_plan(smoke(tmp_path / "results"))
    outside = tmp_path / "outside"
    outside.mkdir()
    run = plan.runs[plan.ids("train")[0]]
    first = Path(plan.config.results_dir) / "runs" / run.run_id.split("/")[0]
    first.parent.mkdir(parents=True, exist_ok=True)
    first.symlink_to(outside, target_is_directory=True)
    path = write(tmp_path / "record.json", run.to_dict())
    assert main(["train", "--record", str(path)]) == EXIT_INPUT_ERROR
    assert "outside" in one_line_error(capsys) and not any(outside.iterdir())
    with pytest.raises(ConfigError, match="run_id"):  # the plan refuses it too
        build_plan(smoke(tmp_path / "results"))


def test_a_table_spec_named_out_of_results_dir_is_refused(plan, tmp_path, capsys):
    data = spec_data(plan, "table") | {"name": "../../escaped"}
    path = write(tmp_path / "spec.json", data)
    assert main(["table", "--spec", str(path), "--reported", str(ROOT / "config" / "reported_results.csv")]) == 2
    assert "name" in one_line_error(capsys)
    assert not (Path(plan.config.results_dir).parent / "escaped.md").exists()


def test_spec_ids_are_checked_in_every_cell(plan):
    data = spec_data(plan, "claims")
    view = next(iter(data["cells"]))
    data["cells"][view][0]["run_ids"][0] = "../../x"
    with pytest.raises(UnsafePathError, match=rf"cells\.{view}\[0\]\.run_ids"):
        from_data(ClaimsSpec, data)
    table = replace(plan.tables["table2"], teachers={"t": ["/etc"]})
    with pytest.raises(InputError, match="teachers.t"):
        from_data(TableSpec, json.loads(spec_text(table)))


def test_a_record_is_its_planned_run(plan):
    run = plan.runs[plan.ids("stage2")[0]]
    assert RunRecord.from_dict(json.loads(spec_text(run))) == run
    saved = run.to_dict()["spec"]
    assert "root" not in saved["dataset"] and "eval_batch_size" not in saved
    assert ResultsLayout(plan.config.results_dir).run(run.run_id).record.name == "record.json"


def test_a_view_folder_symlinked_out_of_results_dir_is_refused(tmp_path, capsys):
    plan = build_plan(smoke(tmp_path / "results"))
    outside = tmp_path / "outside"
    outside.mkdir()
    spec = spec_file(plan, "table", "table2")
    plan.layout.tables_dir.parent.mkdir(parents=True, exist_ok=True)
    plan.layout.tables_dir.symlink_to(outside, target_is_directory=True)
    assert main(["table", "--spec", str(spec), "--reported", str(ROOT / "config" / "reported_results.csv")]) == 2
    assert "outside" in one_line_error(capsys) and not any(outside.iterdir())
