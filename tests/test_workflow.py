"""End-to-end: `snakemake` on the smoke config in a temporary directory, then the tables' contents."""
import pandas as pd
import pytest

from workflow_helpers import ROOT, snakemake, write_config

pytestmark = pytest.mark.workflow


def test_smoke_workflow_produces_the_tables(smoke_run):
    workdir, config, result = smoke_run
    tables = workdir / "results" / "tables"
    assert "Tables:" in result.stdout + result.stderr
    for name in ("table2", "table3", "table6"):
        for ext in ("md", "tex", "csv"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0

    t2 = pd.read_csv(tables / "table2.csv")
    assert set(t2.method) == {"CE", "Dropout", "LS", "CP", "LE(Grad-CAM)"} and set(t2.group) == {"ResNet14", "ResNet8"}
    assert (t2.n == 2).all() and t2["mean"].between(0, 100).all() and t2["std"].notna().all()
    assert t2.set_index(["group", "method"]).loc[("ResNet14", "CE"), "paper_mean"] == 90.26
    assert t2.groupby("group").best.sum().ge(1).all()

    t3 = pd.read_csv(tables / "table3.csv")
    assert set(t3.method) == {"CE", "Dropout", "LS", "CP", "LE(Grad)"}
    assert t3.metric.iloc[0] == "test error (%)"
    assert t3.set_index("method").loc["LE(Grad)", "paper_mean"] == 1.10
    assert "Pereyra" in (tables / "table3.md").read_text()

    t6 = pd.read_csv(tables / "table6.csv")
    assert ("MLP1024", "LE(Grad-CAM)") not in set(zip(t6.group, t6.method))
    assert len(t6) == 11
    md6 = (tables / "table6.md").read_text()
    assert md6.index("| CE ") < md6.index("| LE-Permut ")  # methods as rows, as the paper prints it

    tests = pd.read_csv(workdir / "results" / "stats" / "tests.csv")
    assert set(tests.table) == {"table2", "table3", "table6"}
    assert {"statistic", "p", "p_holm", "effect_size", "ci_low", "ci_high"} <= set(tests.columns)
    assert len(tests[(tests.table == "table2") & (tests.test == "paired_t")]) == 8


def test_shared_runs_are_trained_once_and_a_second_run_has_nothing_to_do(smoke_run):
    workdir, config, _ = smoke_run
    runs = workdir / "results" / "runs" / "digits"
    # the CE runs of Table 2 and Table 6 are the same directories
    assert len(list(runs.glob("resnet14/*/ce/seed*/metrics.json"))) == 2
    warmups = sorted(p.parent.name for p in runs.glob("resnet14/*/warmup-*/seed0/metrics.json"))
    assert len(warmups) == 1
    assert "Nothing to be done" in snakemake(workdir, "-n", "--cores", "1").stdout


def test_a_bad_config_fails_before_any_job_naming_the_key(tmp_path):
    write_config(tmp_path, seeds=[0, "one"])
    result = snakemake(tmp_path, "--cores", "1", check=False)
    assert result.returncode != 0
    assert "seeds[1]" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_the_paper_config_plans_without_error(tmp_path):
    """`snakemake -n --configfile config/paper.yaml` plans the full reproduction (no data needed)."""
    import shutil
    import time

    shutil.copy(ROOT / "config" / "paper.yaml", tmp_path / "config.yaml")
    started = time.perf_counter()
    result = snakemake(tmp_path, "-n", "--cores", "1", "--config", f"results_dir={tmp_path / 'results'}",
                       f"reported_results={ROOT / 'config' / 'reported_results.csv'}")
    print(f"paper plan: {time.perf_counter() - started:.1f}s")
    jobs = next(line for line in result.stdout.splitlines() if line.startswith("total"))
    assert int(jobs.split()[1]) == 258 + 6 + 2  # training runs + tables + tests file + all


def test_distillation_from_a_teacher_runs_end_to_end(tmp_path):
    """A teacher job, students that take its checkpoint as input, and the teacher in the caption."""
    write_config(
        tmp_path,
        methods={"KD": {"method": "kd"}, "AT+KD": {"method": "at_kd"}, "TAKD": {"method": "kd"}, "CE": {"method": "ce"}},
        teachers={"resnet26": {"model": "resnet26", "budget": "resnet", "method": "CE"},
                  "assistant14": {"model": "resnet14", "budget": "resnet", "method": "KD", "teacher": "resnet26"}},
        tables={"table5": {"title": "Networks learned from a teacher", "paper_table": 5, "paper_dataset": "cifar10",
                           "dataset": "digits", "methods": ["KD", "AT+KD", "TAKD"], "compare_to": ["KD"],
                           "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet",
                                       "teacher": "resnet26", "teacher_overrides": {"TAKD": "assistant14"}}]}},
    )
    plan = snakemake(tmp_path, "-n", "--cores", "1").stdout
    assert plan.count("rule teacher:") == 2 and plan.count("rule distill:") == 6  # teacher, assistant
    snakemake(tmp_path, "--cores", "2")
    md = (tmp_path / "results" / "tables" / "table5.md").read_text()
    assert "Teacher resnet26 (resnet26):" in md and "Teacher resnet14 (assistant14):" in md
    table = pd.read_csv(tmp_path / "results" / "tables" / "table5.csv")
    assert set(table.method) == {"KD", "AT+KD", "TAKD"} and (table.n == 2).all()
    assert table.set_index("method").loc["KD", "paper_mean"] == 88.07
