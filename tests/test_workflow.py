"""End-to-end: `snakemake` on the smoke config in a temporary directory, then the tables' contents."""
import pandas as pd
import pytest

from workflow_helpers import ROOT, snakemake, write_config

pytestmark = pytest.mark.workflow


def test_smoke_workflow_produces_every_table_figure_and_analysis(smoke_run):
    workdir, config, result = smoke_run
    results = workdir / "results"
    tables = results / "tables"
    assert "Tables:" in result.stdout + result.stderr
    for name in ("table1", "table2", "table3", "table4", "table5", "table6"):
        for ext in ("md", "tex", "csv", "html"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0
    for name in ("figure1", "figure2", "figure3", "students_pairs"):
        assert (results / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (results / "figures" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert not pd.read_csv(results / "figures" / f"{name}.csv").empty

    t2 = pd.read_csv(tables / "table2.csv")
    assert set(t2.method) == {"CE", "Dropout", "LS", "LE(Grad-CAM)"} and set(t2.group) == {"ResNet8"}
    assert (t2.n == 2).all() and t2["mean"].between(0, 100).all() and t2["std"].notna().all()
    assert t2.set_index(["group", "method"]).loc[("ResNet8", "CE"), "paper_mean"] == 87.95
    assert t2.groupby("group").best.sum().ge(1).all()

    t3 = pd.read_csv(tables / "table3.csv")
    assert t3.metric.iloc[0] == "test error (%)"
    assert t3.set_index("method").loc["LE(Grad)", "paper_mean"] == 1.10
    assert "Pereyra" in (tables / "table3.md").read_text()

    t6 = pd.read_csv(tables / "table6.csv")
    assert ("MLP1024", "LE(Grad-CAM)") not in set(zip(t6.group, t6.method))
    assert len(t6) == 7
    md6 = (tables / "table6.md").read_text()
    assert md6.index("| CE ") < md6.index("| LE-Permut ")  # methods as rows, as the paper prints it

    t1, t5 = pd.read_csv(tables / "table1.csv"), pd.read_csv(tables / "table5.csv")
    assert set(t1.method) == {"CE", "KD", "CWTM", "e2KD"}
    assert set(t5.method) == {"KD", "TAKD", "LE(Grad-CAM)", "XDistillation"}
    assert "Teacher cnn8 (cnn8):" in (tables / "table1.md").read_text()
    assert "Teacher resnet8 (assistant8):" in (tables / "table5.md").read_text()
    assert set(pd.read_csv(tables / "table4.csv").method) == {"CE", "DML", "BAN", "LE(Grad-CAM)"}

    students = pd.read_csv(tables / "students.csv")
    assert len(students) == 8 and (students.n == 2).all()
    assert students.agreement_mean.between(0, 100).all() and students.explanation_similarity_mean.between(-1, 1).all()
    figure3 = pd.read_csv(results / "figures" / "figure3.csv")
    assert list(figure3.method) == ["LE(Grad×Input)", "LE(Grad)", "LE(Grad-CAM)"] and (figure3.n == 2).all()
    assert figure3.paper_mean.tolist()[1:] == [88.27, 88.70] and figure3.paper_mean.isna().tolist()[0]
    assert (figure3.ci95_low <= figure3["mean"]).all() and (figure3["mean"] <= figure3.ci95_high).all()
    similarity = pd.read_csv(results / "figures" / "figure2.csv")
    assert len(similarity) == 2 * 10 * 10

    tests = pd.read_csv(results / "stats" / "tests.csv")
    assert set(tests.table) == {f"table{i}" for i in range(1, 7)}
    assert {"statistic", "p", "p_holm", "effect_size", "ci_low", "ci_high"} <= set(tests.columns)
    assert len(tests[(tests.table == "table2") & (tests.test == "paired_t")]) == 3


def test_sweeps_select_on_validation_and_the_final_runs_use_the_choice(smoke_run):
    """sweep runs -> selection file (validation scores) -> final runs trained with the chosen value."""
    import json

    workdir, _, _ = smoke_run
    results = workdir / "results"
    (selection_file,) = (results / "selection").glob("digits/resnet8/*/Dropout-rate-*.json")
    selection = json.loads(selection_file.read_text())
    scores = {s["point"]["rate"]: s["score"] for s in selection["scores"]}
    assert set(scores) == {0.1, 0.5} and selection["metric"] == "val_acc_final"
    assert selection["chosen"] == {"rate": max(scores, key=lambda rate: (scores[rate], -rate))}
    for run_id in selection["scores"][0]["runs"] + selection["scores"][1]["runs"]:
        sweep_run = json.loads((results / "runs" / run_id / "metrics.json").read_text())
        assert scores[sweep_run["hyperparameters"]["rate"]] == sweep_run["val_acc_final"]
    finals = [json.loads(p.read_text()) for p in results.glob("runs/digits/resnet8/*/dropout-sel_*/seed*/metrics.json")]
    assert len(finals) == 2
    for final in finals:
        assert final["hyperparameters"]["rate"] == selection["chosen"]["rate"]
        assert (workdir / final["spec"]["hyperparameters_from"]).resolve() == selection_file.resolve()
    md = (results / "tables" / "table2.md").read_text()
    assert f"Dropout (ResNet8): rate={selection['chosen']['rate']} selected by val_acc_final" in md
    assert "rate=swept over [0.1, 0.5]" in md


def test_ban_students_learn_from_the_ce_run_of_the_next_seed(smoke_run):
    import json

    workdir, _, _ = smoke_run
    runs = workdir / "results" / "runs"
    ban_metrics = runs.glob("digits/resnet8/*/kd-*sel_*-from_resnet8-*/seed*/metrics.json")
    bans = [json.loads(p.read_text()) for p in ban_metrics]
    assert len(bans) == 2
    for ban in bans:
        peer_seed = {0: 1, 1: 0}[ban["seed"]]
        assert ban["spec"]["teacher"].endswith(f"/ce/seed{peer_seed}/model.pt")


def test_every_claim_gets_an_effect_a_test_and_a_verdict_that_follows_from_them(smoke_run):
    import math

    import yaml

    workdir, config, result = smoke_run
    results = workdir / "results"
    claims = pd.read_csv(results / "claims.csv", keep_default_na=False, na_values=[""])
    assert list(claims.name) == [c["name"] for c in config["claims"]]
    assert set(claims.verdict) <= {"replicated", "contradicted", "inconclusive", "inconclusive (underpowered)"}
    for row in claims.itertuples():
        assert row.n_pairs == 2, row.name
        if math.isnan(row.ci_low):  # a degenerate test says why instead of printing p = 0
            assert row.reason and row.verdict == "inconclusive" and math.isnan(row.p_holm)
        else:
            assert row.ci_low <= row.effect <= row.ci_high, row.name
        if row.verdict == "replicated" and row.direction == "greater":
            assert row.p_holm < 0.05 and row.effect > 0
        if row.verdict == "inconclusive (underpowered)":
            target = row.margin if row.direction == "equivalent" else abs(row.paper_effect)
            assert row.mde > target
        assert "low_n" in row.flags  # two seeds: every claim rests on flagged cells, and says so
        assert not math.isnan(row.optimistic_effect)
    t3 = claims.set_index("name").loc["t3_le_grad_gt_dropout_mlp1024"]
    assert t3.paper_effect == pytest.approx(1.27 - 1.10)  # an error table's effect, as accuracy
    md = (results / "claims.md").read_text()
    assert md.count("| t") >= len(claims) and "cannot resolve" in md
    summary = result.stdout + result.stderr
    assert "Claims (" in summary and "Sanity flags under claims" in summary
    assert yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())["claims"] == config["claims"]


def test_the_html_report_holds_every_table_and_figure(smoke_report):
    report = smoke_report.read_text()
    for name in ("table1.html", "table6.html", "students.html", "claims.html", "figure1.png", "figure3.png",
                 "students_pairs.png"):
        assert name in report
    assert "Class-similarity information" in report or "Q2xhc3Mtc2ltaWxhcml0eSBpbmZvcm1hdGlvbi" in report


def test_shared_runs_are_trained_once_and_a_second_run_has_nothing_to_do(smoke_run):
    workdir, config, _ = smoke_run
    runs = workdir / "results" / "runs" / "digits"
    # the CE runs of Tables 2, 4 and 6 (and the BAN peers) are the same directories
    assert len(list(runs.glob("resnet8/*/ce/seed*/metrics.json"))) == 2
    warmups = sorted(p.parent.name for p in runs.glob("resnet8/*/warmup-*/seed0/metrics.json"))
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
    # training runs + the pre-flight + selections + tables + figures + the student analysis + claims + tests file + all
    assert int(jobs.split()[1]) == 415 + 1 + 17 + 6 + 3 + 1 + 1 + 1 + 1
    assert "rule select_hyperparameters:" in result.stdout and "rule analyse_students:" in result.stdout


def test_distillation_from_a_teacher_runs_end_to_end(tmp_path):  # in-process jobs (no local worker)
    """A teacher job, students that take its checkpoint as input, and the teacher in the caption."""
    write_config(
        tmp_path,
        methods={"KD": {"method": "kd"}, "AT+KD": {"method": "at_kd"}, "TAKD": {"method": "kd"},
                 "CE": {"method": "ce"}},
        teachers={"resnet26": {"model": "resnet26", "budget": "resnet", "method": "CE"},
                  "assistant14": {"model": "resnet14", "budget": "resnet", "method": "KD", "teacher": "resnet26"}},
        tables={"table5": {"title": "Networks learned from a teacher", "paper_table": 5, "paper_dataset": "cifar10",
                           "dataset": "digits", "methods": ["KD", "AT+KD", "TAKD"], "compare_to": ["KD"],
                           "groups": [{"label": "ResNet8", "model": "resnet8", "budget": "resnet",
                                       "teacher": "resnet26", "teacher_overrides": {"TAKD": "assistant14"}}]}},
        figures={}, analyses={}, claims=[], local_worker=False,
    )
    plan = snakemake(tmp_path, "-n", "--cores", "1").stdout
    assert plan.count("rule teacher:") == 2 and plan.count("rule distill:") == 6  # teacher, assistant
    snakemake(tmp_path, "--cores", "2")
    md = (tmp_path / "results" / "tables" / "table5.md").read_text()
    assert "Teacher resnet26 (resnet26):" in md and "Teacher resnet14 (assistant14):" in md
    table = pd.read_csv(tmp_path / "results" / "tables" / "table5.csv")
    assert set(table.method) == {"KD", "AT+KD", "TAKD"} and (table.n == 2).all()
    assert table.set_index("method").loc["KD", "paper_mean"] == 88.07


def test_the_summary_target_prints_runs_per_table_and_gpu_hours(tmp_path):
    write_config(tmp_path)
    result = snakemake(tmp_path, "summary", "--cores", "1")
    assert "54 training runs" in result.stdout and "table5: 8 runs" in result.stdout
    assert "sweeps: 8 runs in 4 selections" in result.stdout and "estimated GPU-hours" in result.stdout
    written = [str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert written == ["results/logs/summary.log"]  # its own log only: nothing was run
