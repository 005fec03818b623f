"""End-to-end: `snakemake` on the smoke config in a temporary directory, then the tables' contents."""
import re

import pandas as pd
import pytest
import yaml

from introspect.cluster.run_summary import TRAINING_RULES, built_jobs
from introspect.plan.build import build_plan, load_config
from workflow_helpers import ROOT, catalogue_claims, job_counts, latest_log, snakemake, views_dir, write_config

pytestmark = pytest.mark.workflow


def test_smoke_workflow_produces_every_table_figure_and_analysis(smoke_run):
    workdir, config, result = smoke_run
    results = views_dir(workdir, config)
    tables = results / "tables"
    # the end-of-run summary: what this call built, its outputs, and the claims it wrote
    assert "Built in this call:" in result.stdout and "Outputs written:\n" in result.stdout
    assert "\nClaims (" in result.stdout
    # the terminal: a line per finished job, not Snakemake's block per job (its log file keeps them), and no
    # epoch lines (they are in each run's log)
    output = result.stdout + result.stderr
    assert "localrule" not in output and "reason:" not in output and " epoch 1/" not in output
    done = [line for line in result.stderr.splitlines() if re.match(r"\[\d\d:\d\d:\d\d\] \d+/\d+ ", line)]
    assert done and len(done) == int(done[-1].split()[1].split("/")[1]), done[-3:]  # every job, once
    assert len(output.splitlines()) < len(done) + 100
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

    workdir, config, _ = smoke_run
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
    md = (views_dir(workdir, config) / "tables" / "table2.md").read_text()
    assert f"Dropout (ResNet8): rate={selection['chosen']['rate']} selected by val\\_acc\\_final" in md
    assert "rate=swept over \\[0.1, 0.5\\]" in md  # Markdown-escaped brackets


def test_ban_students_learn_from_a_ce_peer_of_their_own(smoke_run):
    import json

    workdir, _, _ = smoke_run
    runs = workdir / "results" / "runs"
    ban_metrics = runs.glob("digits/resnet8/*/kd-*sel_*-from_resnet8-*/seed*/metrics.json")
    bans = [json.loads(p.read_text()) for p in ban_metrics]
    assert len(bans) == 2
    for ban in bans:
        peer_seed = ban["seed"] + 1000  # a CE run of its own, not the CE cell's run of another seed
        assert ban["spec"]["teacher"].endswith(f"/ce/seed{peer_seed}/model.pt")


def test_every_claim_gets_an_effect_a_test_and_a_verdict_that_follows_from_them(smoke_run):
    import math

    import yaml

    workdir, config, result = smoke_run
    results = views_dir(workdir, config)
    claims = pd.read_csv(results / "claims.csv", keep_default_na=False, na_values=[""])
    own = [c["name"] for c in config["claims"]]  # after the catalogue's (in the catalogue's order)
    judged = claims[claims.direction != "majority"]  # a majority claim's row follows its members
    assert sorted(judged.name) == sorted(config["claim_settings"]["only"] + own) and list(claims.name[-1:]) == own
    assert set(claims[claims.direction == "majority"].name) == {"t5_le_gradcam_outperforms_most_resnet8"}
    assert set(claims.verdict) <= {"replicated", "contradicted", "smaller than reported", "inconclusive",
                                   "inconclusive (underpowered)", "withheld (test-set resolution)"}
    assert "f2_similar_pairs_mlp1024" in set(claims.name)  # read from Figure 2's own data
    for row in claims.itertuples():
        if row.direction in ("similar_pairs", "majority"):  # figure 2's class pairs; a majority of its members
            assert row.verdict and row.reason, row.name
            continue
        assert row.n_pairs == 2, row.name
        if math.isnan(row.ci_low):  # a degenerate test says why instead of printing p = 0
            assert row.reason and row.verdict == "inconclusive" and math.isnan(row.p_holm)
        else:
            assert row.ci_low <= row.effect <= row.ci_high, row.name
        if row.verdict == "replicated" and row.direction == "greater":
            assert row.p_holm < 0.05 and row.effect > 0
        if row.verdict == "inconclusive (underpowered)":
            assert row.mde > row.target
        if row.verdict.startswith("inconclusive") and row.sd_diff > 0:  # False for NaN
            assert row.seeds_needed >= 2
        elif row.verdict.startswith("inconclusive") and row.sd_diff == 0:  # e.g. the same predictions on each seed
            assert math.isnan(row.seeds_needed) and "identical" in row.reason
        assert "low_n" in row.flags  # two seeds: every claim rests on flagged cells, and says so
        assert not math.isnan(row.optimistic_effect)
        assert 0 <= row.repeat_probability <= 1 and row.verdict != "smaller than reported"  # smoke: not the paper's
    t3 = claims.set_index("name").loc["t3_le_grad_gt_dropout_mlp1024"]
    assert t3.paper_effect == pytest.approx(1.27 - 1.10)  # an error table's effect, as accuracy
    md = (results / "claims.md").read_text()
    assert md.count("| t") + md.count("| f") >= len(claims) and "What it would take" in md
    summary = result.stdout + result.stderr
    assert "Claims (" in summary and "Sanity flags under claims" in summary
    assert re.search(r"^Verdict +Claims +Expected in a rerun$", summary, re.MULTILINE)  # plain text, aligned
    assert "\\" not in summary[summary.index("Claims ("):]  # no Markdown escapes
    assert load_config(ROOT / "config" / "smoke.yaml")["claims"] == config["claims"]
    assert "extra_seeds" in yaml.safe_load((results / "claims_next.yaml").read_text())


def test_the_html_report_holds_every_table_and_figure(smoke_report):
    report = smoke_report.read_text()
    for name in ("table1.html", "table6.html", "students.html", "claims.html", "figure1.png", "figure3.png",
                 "students_pairs.png"):
        assert name in report
    assert "Class-similarity information" in report or "Q2xhc3Mtc2ltaWxhcml0eSBpbmZvcm1hdGlvbi" in report


def test_shared_runs_are_trained_once_and_a_second_run_has_nothing_to_do(smoke_run):
    workdir, config, _ = smoke_run
    runs = workdir / "results" / "runs" / "digits"
    # the CE runs of Tables 2, 4 and 6 are the same directories (BAN's peers are CE runs of seeds 1000 and 1001)
    assert len(list(runs.glob("resnet8/*/ce/seed[01]/metrics.json"))) == 2
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
    import time

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(load_config(ROOT / "config" / "paper.yaml")))
    started = time.perf_counter()
    result = snakemake(tmp_path, "-n", "-p", "--cores", "1", "--config", f"results_dir={tmp_path / 'results'}",
                       f"reported_results={ROOT / 'config' / 'reported_results.csv'}")
    print(f"paper plan: {time.perf_counter() - started:.1f}s")
    # one job per planned training run, selection, table, figure and analysis, plus claims, tests and all
    plan = build_plan(load_config(tmp_path / "config.yaml"))
    jobs = job_counts(result.stdout)
    training = ("train", "teacher", "distill", "le_warmup", "le_stage2", "sweep_point")
    assert sum(jobs.get(rule, 0) for rule in training) == len(plan.runs)
    assert jobs["select_hyperparameters"] == len(plan.selections) > 0
    assert (jobs["table"], jobs["figure"], jobs["analyse_students"]) == (
        len(plan.tables), len(plan.figures), len(plan.analyses))
    assert jobs["claims"] == jobs["significance_tests"] == jobs["all"] == jobs["preflight"] == jobs["job_files"] == 1
    assert jobs["total"] == len(plan.runs) + len(plan.selections) + len(plan.tables) + len(plan.figures) + len(
        plan.analyses) + 5  # claims, tests, all, the pre-flight and the step that writes the specs and records
    # specs and records are files: no job's command carries one (Linux caps one argument at 128 KiB)
    commands = [line for line in result.stdout.splitlines() if "-m introspect" in line]
    assert len(commands) == jobs["total"] - 2 and max(map(len, commands)) < 16 * 1024
    assert not (tmp_path / "results").exists()  # planning wrote nothing


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
    md = (tmp_path / "results" / "smoke" / "tables" / "table5.md").read_text()
    assert "Teacher resnet26 (resnet26):" in md and "Teacher resnet14 (assistant14):" in md
    table = pd.read_csv(tmp_path / "results" / "smoke" / "tables" / "table5.csv")
    assert set(table.method) == {"KD", "AT+KD", "TAKD"} and (table.n == 2).all()
    assert table.set_index("method").loc["KD", "paper_mean"] == 88.07


def test_the_summary_target_prints_runs_per_table_and_gpu_hours(tmp_path):
    write_config(tmp_path, budgets={"cnn": {"epochs": 2, "batch_size": 128, "lr": 0.01}},
                 sweeps={"use": "validation", "seeds": [0]},
                 methods={"CE": {"method": "ce"}, "LS": {"method": "ls", "sweep": {"alpha": [0.8, 0.9, 0.95]}}},
                 tables={"t1": {"title": "t", "dataset": "digits", "methods": ["CE", "LS"],
                                "groups": [{"label": "CNN-6", "model": "cnn6", "budget": "cnn"}]}},
                 teachers={}, figures={}, analyses={}, claims=[], cluster={"epoch_seconds": {"default": 30}})
    result = snakemake(tmp_path, "summary", "--cores", "1")
    # seeds [0, 1]: CE and LS of the table, 2 x 2 runs; LS's sweep: 3 alphas x sweep seed 0; 2 epochs each
    assert "7 training runs (7 train, 0 teacher" in result.stdout and "14 epochs in all" in result.stdout
    assert "t1: 4 runs" in result.stdout and "sweeps: 3 runs in 1 selections" in result.stdout
    assert "estimated GPU-hours: 0.1," in result.stdout  # 14 epochs x 30 s = 0.117 h
    written = [str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*") if p.is_file()]
    # its own log and the config it read (a file, not command-line text): nothing was run
    assert len(written) == 3 and {"results/smoke/logs/summary.log", "results/smoke/logs/config_file.log"} < set(written)
    assert any(path.startswith("results/smoke/specs/config.") for path in written)


def copy_of_the_smoke_runs(smoke_run, workdir):
    """A new working directory whose results_dir holds the smoke run's finished runs, selections and the
    pre-flight's measurements of their step kinds (times kept), so configs over them plan and run only their
    views. (Without the pre-flight's files, a dry run would also list the runs after the pre-flight it must
    redo: Snakemake re-evaluates them only once that checkpoint has run.)"""
    import shutil

    source = smoke_run[0] / "results"
    for folder in ("runs", "selection", "preflight"):
        shutil.copytree(source / folder, workdir / "results" / folder)


def test_options_that_change_no_numbers_rerun_nothing(smoke_run, tmp_path):
    workdir, _, _ = smoke_run
    result = snakemake(workdir, "-n", "--cores", "1", "--config", f"data_root={tmp_path / 'scratch'}",
                       "eval_batch_size=7", "threads_per_run=2")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_an_interrupted_run_resumes_under_a_new_data_root(tmp_path):
    import json

    table = {"title": "CE", "dataset": "digits", "methods": ["CE"],
             "groups": [{"label": "MLP1024", "model": "mlp1024", "budget": "mlp"}]}
    run_id = "digits/mlp1024/mlp-e2/ce/seed0"
    common = dict(tables={"t": table}, figures={}, analyses={}, claims=[], teachers={}, seeds=[0, 1],
                  local_worker=False)
    write_config(tmp_path, fail_runs={run_id: 1}, **common)
    assert snakemake(tmp_path, "--cores", "1", check=False).returncode != 0
    run = tmp_path / "results" / "runs" / run_id
    assert (run / "checkpoint.pt").exists() and not (run / "metrics.json").exists()
    write_config(tmp_path, data_root=str(tmp_path / "scratch"), **common)
    snakemake(tmp_path, "--cores", "1")
    assert "resuming after epoch 1" in (run / "train.log").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["spec"]["dataset"]["root"] == str(tmp_path / "scratch")  # provenance


def test_a_config_with_600_claims_plans_and_runs_its_claims_job(smoke_run, tmp_path):
    """The claims spec is a file (~0.8 MB here), not a command-line argument."""
    copy_of_the_smoke_runs(smoke_run, tmp_path)
    config = write_config(tmp_path)
    claims = [{**claim, "name": f"{claim['name']}_{i}"} for i in range(600 // len(config["claims"]) + 1)
              for claim in config["claims"]][:600]
    config = write_config(tmp_path, claims=claims)
    target = str(views_dir(tmp_path, config) / "claims.csv")
    plan = snakemake(tmp_path, "-n", "-p", "--cores", "1", target).stdout
    assert "rule claims:" in plan
    assert max(len(line) for line in plan.splitlines() if "-m introspect" in line) < 16 * 1024
    # The job judges all 600: one Holm family of 600 TOST claims on two seeds, whose power integrals at
    # alpha / 600 are what made it slow (not pytest); they are cached by their arguments now.
    # The runs' records name this results_dir, so they are new files here and the dry run lists the runs
    # after them; once they are written, nothing trains (docs/reruns.md)
    snakemake(tmp_path, "--cores", "1", target)
    assert not {job.rule for job in built_jobs(latest_log(tmp_path))} & {*TRAINING_RULES, "select_hyperparameters"}
    written = pd.read_csv(target, keep_default_na=False)
    assert len(written) == 600 and written.name.is_unique
    assert (written.family_size == 600).all() and written.verdict.nunique() == 1  # copies of one claim


def test_two_configs_in_one_results_dir_keep_both_sets_of_views(smoke_run, tmp_path):
    copy_of_the_smoke_runs(smoke_run, tmp_path)
    smoke = write_config(tmp_path)
    views = {}
    for name, title in (("alpha", "First config"), ("beta", "Second config")):
        table = {**smoke["tables"]["table3"], "title": title}
        config = write_config(tmp_path, name=name, tables={"table3": table}, figures={}, analyses={}, teachers={},
                              claims=catalogue_claims("t3_le_grad_gt_dropout_mlp1024"))
        snakemake(tmp_path, "--cores", "1")
        assert not {job.rule for job in built_jobs(latest_log(tmp_path))} & set(TRAINING_RULES)  # runs are shared
        views[name] = views_dir(tmp_path, config)
    for name, title in (("alpha", "First config"), ("beta", "Second config")):
        assert title in (views[name] / "tables" / "table3.md").read_text()
        assert len(pd.read_csv(views[name] / "claims.csv")) == 1
    assert not (tmp_path / "results" / "tables").exists() and not (tmp_path / "results" / "claims.csv").exists()


def test_an_overlay_keeps_its_base_configs_name_and_lint_stays_clean(tmp_path):
    """`--configfile base overlay`: the overlay (other seeds, no name) is merged over the base and its views
    stay under the base's name. `snakemake --lint` finds nothing (the Snakefile uses public interfaces)."""
    import subprocess

    import yaml

    from workflow_helpers import BIN

    write_config(tmp_path)  # the smoke config: name smoke
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump({"seeds": [0]}))
    common = ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    dry = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "1", *common, "--configfile",
                          str(tmp_path / "config.yaml"), str(tmp_path / "overlay.yaml")],
                         capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert str(tmp_path / "results" / "smoke" / "tables" / "table2.md") in dry.stdout
    assert "/seed1/" not in dry.stdout and "/seed0/" in dry.stdout
    for args in ([], ["--configfile", str(ROOT / "config" / "smoke.yaml")]):
        lint = subprocess.run([str(BIN / "snakemake"), "--lint", *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=600)
        assert "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr, lint.stdout


def test_the_claims_overlay_trains_only_the_added_seeds(tmp_path):
    """claims_next.yaml named by --config seeds_from (read as data), or a hand-written second config file: a dry
    run plans training jobs only for seeds not yet trained (and rebuilds the views that read them)."""
    import yaml

    config = write_config(
        tmp_path, methods={"CE": {"method": "ce"}, "LS": {"method": "ls", "alpha": 0.9}},
        tables={"table3": {"title": "MLPs", "paper_table": 3, "paper_dataset": "mnist", "dataset": "digits",
                           "metric": "error", "methods": ["CE", "LS"], "compare_to": ["CE"],
                           "groups": [{"label": "MLP1024", "model": "mlp1024", "budget": "mlp"}]}},
        figures={}, analyses={}, teachers={}, claim_settings={"max_seeds": 4}, local_worker=False,
        claims=[{"name": "ls_gt_ce", "table": "table3", "group": "MLP1024", "a": "LS", "b": "CE",
                 "direction": "greater", "family": "t3", "text": "Sec. 5.1"}])
    snakemake(tmp_path, "--cores", "2")
    overlay = views_dir(tmp_path, config) / "claims_next.yaml"
    extra = yaml.safe_load(overlay.read_text())["extra_seeds"]
    assert extra in ({}, {"table3": {"MLP1024": {"CE": [2, 3], "LS": [2, 3]}}})  # {}: the claim was resolved
    (tmp_path / "hand.yaml").write_text(yaml.safe_dump({"extra_seeds": {"table3": {"MLP1024": {"LS": [2, 3]}}}}))
    for second, seeds in ((overlay, {2, 3} if extra else set()), (tmp_path / "hand.yaml", {2, 3})):
        how = {"overlays": (second,)} if second.name == "hand.yaml" else {}
        extra_args = () if how else ("--config", f"seeds_from={second}")
        plan = snakemake(tmp_path, "-n", "--cores", "1", *extra_args, **how).stdout
        runs = [line.split("run=")[1].strip() for line in plan.splitlines() if "run=" in line]
        assert {int(run.rsplit("seed", 1)[1]) for run in runs} == seeds, runs
        if second.name == "hand.yaml":
            assert len(runs) == 2 and all("/ls-" in run for run in runs)
            assert "rule table:" in plan and "rule claims:" in plan
