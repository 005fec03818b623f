"""Config validation and the plan: bad values are rejected naming the key; runs are shared."""
import copy
from pathlib import Path

import pytest

from introspect.cluster.resources import summary as plan_summary
from introspect.config.validate import validate_config
from introspect.plan.build import ConfigError, build_plan, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default():
    return load_config(ROOT / "config" / "config.yaml")


def rejected(config, *fragments):
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_every_shipped_config_is_valid_and_plans():
    for path in sorted(set((ROOT / "config").glob("*.yaml")) - {ROOT / "config" / "base.yaml"}):
        plan = build_plan(load_config(path))
        assert plan.runs and plan.tables, path


@pytest.mark.parametrize("mutate,fragments", [
    (lambda c: c.update(seeds=["a"]), ["seeds[0]", "is not of type 'integer'"]),
    (lambda c: c.update(colour="red"), ["(top level)", "colour"]),
    (lambda c: c["budgets"]["resnet"].update(lr=-1), ["budgets.resnet.lr"]),
    (lambda c: c["budgets"]["resnet"].pop("epochs"), ["budgets.resnet", "'epochs' is a required property"]),
    (lambda c: c["methods"]["LS"].update(alpha=1.5), ["methods.LS.alpha"]),
    (lambda c: c["methods"]["LS"].update(alhpa=0.9), ["methods.LS.alhpa", "accepts: alpha"]),
    (lambda c: c["methods"]["CE"].update(method="sgdr"), ["methods.CE.method", "unknown method 'sgdr'"]),
    (lambda c: c["methods"]["LE(Grad)"].update(explainer="lime"), ["methods.LE(Grad).explainer"]),
    (lambda c: c["tables"]["table2"]["groups"][0].update(model="resnet9"), ["tables.table2.groups[0].model"]),
    (lambda c: c["tables"]["table2"]["methods"].append("KDX"), ["tables.table2", "'KDX' is not defined"]),
    (lambda c: c["tables"]["table2"].update(dataset="imagenet"), ["tables.table2.dataset"]),
    (lambda c: c.update(table_metric="best"), ["table_metric"]),
    (lambda c: c["datasets"]["digits"].update(split="random"), ["datasets.digits.split"]),
    (lambda c: c["datasets"]["digits"].update(source="mnist", split="per_seed"),
     ["datasets.digits.split", "own test set"]),
])
def test_bad_values_are_rejected_naming_the_key(default, mutate, fragments):
    config = copy.deepcopy(default)
    mutate(config)
    rejected(config, *fragments)


def test_runs_are_identified_by_what_they_compute(default):
    plan = build_plan(default)
    cells = {t: {(c.group, c.method): c.run_ids for c in spec.cells} for t, spec in plan.tables.items()}
    # the CE baseline of resnet14 in Tables 2 and 6 is one set of runs
    assert cells["table2"][("ResNet14", "CE")] == cells["table6"][("ResNet14", "CE")]
    assert cells["table2"][("ResNet14", "LE(Grad-CAM)")] == cells["table6"][("ResNet14", "LE(Grad-CAM)")]
    assert len(cells["table2"][("ResNet8", "CP")]) == len(default["seeds"])


def test_le_variants_of_one_model_and_seed_share_one_warmup(default):
    plan = build_plan(default)
    stage2 = [plan.runs[r] for r in plan.ids("stage2") if "/resnet8/" in r and r.endswith("seed0")]
    assert len(stage2) == 5  # LE with Grad-CAM, Grad, Grad×Input, GuidedBP; LE-Permut
    warmups = {tuple(r.depends_on) for r in stage2}
    assert len(warmups) == 1
    (warmup_id,) = next(iter(warmups))
    warmup = plan.runs[warmup_id]
    assert warmup.kind == "warmup" and warmup.method == {"name": "ce"}
    assert warmup.stop_epoch == stage2[0].method["warmup_epochs"]
    assert all(r.init_from == warmup_id for r in stage2)
    # the path of the checkpoint a Stage-2 job reads comes from the run layer
    assert stage2[0].run_spec().init_from == str(plan.layout.run(warmup_id).model)


def test_mlp_le_permut_uses_the_grad_explainer_override(default):
    plan = build_plan(default)
    mlp_permut = [r for r in plan.runs.values() if "/mlp1024/" in r.run_id and r.method["name"] == "le_permut"]
    assert mlp_permut and all(r.method["explainer"] == "grad" for r in mlp_permut)


def test_summary_counts_runs_per_table(default):
    config = copy.deepcopy(default) | {"seeds": [0, 1, 2], "figures": {}, "analyses": {}, "claims": [], "teachers": {},
                                       "sweeps": {"use": "validation", "seeds": [0, 1]}}
    config["methods"] = {"CE": {"method": "ce"}, "LS": {"method": "ls", "sweep": {"alpha": [0.8, 0.9, 0.95]}}}
    groups = [{"label": "CNN-6", "model": "cnn6", "budget": "cnn"},
              {"label": "MLP", "model": "mlp1024", "budget": "mlp"}]
    config["tables"] = {"a": {"title": "a", "dataset": "digits", "methods": ["CE", "LS"], "groups": groups},
                        "b": {"title": "b", "dataset": "digits", "methods": ["CE"], "groups": groups[:1]}}
    summary = plan_summary(build_plan(config))
    # a: 2 groups x 2 methods x 3 seeds; b: its CE runs are a's; one LS sweep per group: 3 alphas x 2 sweep seeds
    assert summary["runs_per_table"] == {"a": 12, "b": 3}
    assert summary["selections"] == 2 and summary["sweep_runs"] == 12
    assert summary["runs"] == 12 + 12 == summary["by_kind"]["train"] == sum(summary["by_kind"].values())


def distillation_config(default, shared=True):
    config = copy.deepcopy(default)
    config.update(figures={}, analyses={}, claims=[], tables={"table2": config["tables"]["table2"]})
    config["methods"].update({"KD": {"method": "kd"}, "Hint": {"method": "hint"}})
    config["teachers"] = {"big": {"model": "resnet26", "budget": "resnet", "method": "CE", "shared": shared}}
    config["tables"]["table5"] = {
        "title": "from a teacher", "dataset": "digits", "paper_table": 5, "paper_dataset": "cifar10",
        "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet", "teacher": "big"}],
        "methods": ["KD", "Hint", "LE(Grad-CAM)"], "compare_to": ["LE(Grad-CAM)"]}
    return config


def test_students_depend_on_their_teachers_checkpoint(default):
    plan = build_plan(distillation_config(default))
    teachers = plan.ids("teacher")
    epochs = default["budgets"]["resnet"]["epochs"]
    assert teachers == [f"digits/resnet26/resnet-e{epochs}/ce/seed0"]  # one shared teacher
    students = [plan.runs[r] for r in plan.ids("student")]
    assert len(students) == 2 * len(default["seeds"])
    for run in students:
        assert run.depends_on == teachers
        assert run.teacher == teachers[0]
        assert run.run_spec().teacher == str(plan.layout.run(teachers[0]).model)
        assert "-from_resnet26-" in run.run_id
    le = [plan.runs[r] for r in plan.ids("stage2") if "/resnet8/" in r]
    assert all(r.teacher is None and r.run_spec().teacher is None for r in le)  # LE needs no teacher
    assert plan.tables["table5"].teachers == {"resnet26 (big)": teachers}


def test_one_teacher_per_student_seed_when_not_shared(default):
    plan = build_plan(distillation_config(default, shared=False))
    assert len(plan.ids("teacher")) == len(default["seeds"])
    for run_id in plan.ids("student"):
        seed = plan.runs[run_id].seed
        epochs = default["budgets"]["resnet"]["epochs"]
        assert plan.runs[run_id].depends_on == [f"digits/resnet26/resnet-e{epochs}/ce/seed{seed}"]


def per_seed(config):
    config["datasets"]["digits"]["split"] = "per_seed"
    return config


def test_per_seed_splits_reject_a_teacher_of_another_seed(default):
    """A teacher trained with another seed trained on another split, i.e. on its student's test images."""
    with pytest.raises(ConfigError, match=r"teachers\.big: .*per_seed.*shared: false"):
        build_plan(per_seed(distillation_config(default, shared=True)))
    with pytest.raises(ConfigError, match=r"teachers\.peer_resnet14: .*seed_shift: 0"):
        build_plan(per_seed(copy.deepcopy(default) | {"tables": {"table4": default["tables"]["table4"]},
                                                       "figures": {}, "analyses": {}, "claims": []}))
    plan = build_plan(per_seed(distillation_config(default, shared=False)))
    for run_id in plan.ids("student"):
        (teacher,) = plan.runs[run_id].depends_on
        assert plan.runs[teacher].seed == plan.runs[run_id].seed
        assert plan.runs[run_id].spec.dataset.split == "per_seed"


def test_a_distillation_method_without_a_teacher_is_rejected(default):
    config = distillation_config(default)
    del config["tables"]["table5"]["groups"][0]["teacher"]
    with pytest.raises(ConfigError, match="KD needs a teacher"):
        build_plan(config)
    config = distillation_config(default)
    config["tables"]["table5"]["groups"][0]["teacher"] = "huge"
    rejected(config, "tables.table5.groups[0].teacher")


def test_takd_chains_teacher_assistant_student(default):
    config = distillation_config(default)
    config["teachers"]["ta14"] = {"model": "resnet14", "budget": "resnet", "method": "KD", "teacher": "big"}
    config["methods"]["TAKD"] = {"method": "kd"}
    table = config["tables"]["table5"]
    table["methods"].append("TAKD")
    table["groups"][0]["teacher_overrides"] = {"TAKD": "ta14"}
    plan = build_plan(config)
    (teacher,) = [r for r in plan.ids("teacher") if "/resnet26/" in r]
    (assistant,) = [r for r in plan.ids("teacher") if "/resnet14/" in r]
    assert plan.runs[assistant].depends_on == [teacher]
    assert plan.runs[assistant].method["name"] == "kd"
    takd = {c.method: c.run_ids for c in plan.tables["table5"].cells}["TAKD"]
    kd = {c.method: c.run_ids for c in plan.tables["table5"].cells}["KD"]
    assert all(plan.runs[r].depends_on == [assistant] for r in takd)
    assert all(plan.runs[r].depends_on == [teacher] for r in kd)
    assert set(takd).isdisjoint(kd)  # same method and hyper-parameters, different teacher: different runs
    assert set(plan.tables["table5"].teachers) == {"resnet26 (big)", "resnet14 (ta14)"}


def test_a_teacher_cycle_is_rejected(default):
    config = distillation_config(default)
    config["methods"]["KD"] = {"method": "kd"}
    config["teachers"]["big"].update(method="KD", teacher="big")
    with pytest.raises(ConfigError, match="teaches itself"):
        build_plan(config)


def test_unreadable_config_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml.*does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("seeds: [0\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")


# ---------------------------------------------------------------- sweeps, figures, the student analysis

def _cells(plan, table):
    return {(c.group, c.method): c for c in plan.tables[table].cells}


def test_a_sweep_becomes_candidate_runs_a_selection_and_final_runs(default):
    plan = build_plan(default)
    cell = _cells(plan, "table2")[("ResNet14", "Dropout")]
    selection = plan.selections[cell.selection]
    assert selection.grid == [{"rate": 0.1}, {"rate": 0.5}] and selection.metric == "val_acc_final"
    assert [len(ids) for ids in selection.candidates] == [1, 1]  # one sweep seed per grid point
    rates = [plan.runs[ids[0]].method["rate"] for ids in selection.candidates]
    assert rates == [0.1, 0.5] and all(plan.runs[ids[0]].selection is None for ids in selection.candidates)
    for run_id in cell.run_ids:
        run = plan.runs[run_id]
        assert run.selection == selection.selection_id
        assert run.run_spec().hyperparameters_from == selection.path and "rate" not in run.method
    # the sweep of another model is its own
    other = _cells(plan, "table2")[("ResNet8", "Dropout")]
    assert other.selection != cell.selection


def test_sweeps_use_paper_forces_the_configured_values(default):
    config = copy.deepcopy(default)
    config["sweeps"] = {"use": "paper"}
    plan = build_plan(config)
    assert not plan.selections
    cell = _cells(plan, "table2")[("ResNet14", "Dropout")]
    assert cell.selection is None
    assert all(plan.runs[r].method["rate"] == 0.1 and plan.runs[r].run_spec().hyperparameters_from is None
               for r in cell.run_ids)


def test_a_sweep_of_an_unknown_hyperparameter_is_rejected(default):
    config = copy.deepcopy(default)
    config["methods"]["Dropout"]["sweep"] = {"rte": [0.1]}
    rejected(config, "methods.Dropout.sweep.rte", "accepts: rate")
    config["methods"]["Dropout"]["sweep"] = {"rate": []}
    rejected(config, "methods.Dropout.sweep.rate")


def test_ban_peers_are_ce_runs_of_seed_plus_1000_never_the_ce_cells_runs(default):
    """A peer of another student seed (the CE cell's seed s + 1, wrapping round) made BAN's paired differences to
    CE dependent: the peer of seed s is a CE run of its own, at seed s + 1000."""
    plan = build_plan(default)
    ce = _cells(plan, "table2")[("ResNet14", "CE")].run_ids
    ban = _cells(plan, "table4")[("ResNet14", "BAN")].run_ids
    for seed, run_id in zip(default["seeds"], ban):
        (peer,) = plan.runs[run_id].depends_on
        assert peer not in ce and plan.runs[peer].seed == seed + 1000 and plan.runs[peer].method == {"name": "ce"}
        assert peer == ce[0].replace("/seed0", f"/seed{seed + 1000}")  # the CE run, another seed


def test_figures_reuse_the_tables_runs(default):
    plan = build_plan(default)
    figure3 = {(c.group, c.method): c.run_ids for c in plan.figures["figure3"].cells}
    assert figure3[("ResNet8", "LE(Grad)")] == _cells(plan, "table6")[("ResNet8", "LE(Grad)")].run_ids
    assert len(figure3) == 4  # one group (ResNet8) x four explainers
    panels = plan.figures["figure1"].panels
    assert panels[1].run_id == _cells(plan, "table2")[("ResNet14", "LE(Grad-CAM)")].run_ids[0]
    assert panels[0].explainer == "grad_input"


def test_the_student_analysis_pairs_every_student_with_its_groups_teacher(default):
    plan = build_plan(default)
    analysis = plan.analyses["students"]
    table5 = [p for p in analysis.pairs if p.table == "table5"]
    assert len(table5) == 2 * 8 * len(default["seeds"])
    teacher = plan.tables["table5"].teachers["resnet26 (resnet26)"]
    assert {p.teacher_run_id for p in table5} == set(teacher)  # TAKD's students too, not their assistant
    assert {p.method for p in analysis.figure_pairs} == set(default["tables"]["table5"]["methods"])
    config = copy.deepcopy(default)
    config["analyses"]["students"]["figure_table"] = "table2"
    with pytest.raises(ConfigError, match="figure_table"):
        build_plan(config)
