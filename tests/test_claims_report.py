"""The claims adapter on a constructed results directory: the runs are read through the run layer, the cells
carry their flags (with a baseline not called "CE"), and claims_next.yaml adds seeds only where a claim needs them."""
import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from introspect.claims.report import write_claims_report
from introspect.config.claim import Claim
from introspect.plan.views import Cell, ClaimSettings, ClaimsSpec
from introspect.runs.record import ResultsLayout

REPORTED = Path(__file__).resolve().parents[1] / "config" / "reported_results.csv"
SEEDS = [0, 1, 2, 3, 4]
# per method: final test accuracy per seed; LE is 0.4 pp ahead of the baseline with a wide spread (open claim),
# Win 3 pp ahead on every seed (resolved), KD far below its weak teacher's student level on one seed
ACCURACY = {
    "Cross-entropy": [90.0, 90.5, 90.2, 90.4, 89.9],
    "LE": [90.9, 90.1, 91.0, 90.3, 90.7],
    "Win": [93.0, 93.6, 93.1, 93.5, 92.8],
    "KD": [91.0, 91.2, 91.1, 91.0, 78.0],
}


def finished(layout: ResultsLayout, run_id: str, seed: int, accuracy: float, *, model: str = "resnet8",
             dead: list[float] | None = None) -> None:
    files = layout.run(run_id)
    files.directory.mkdir(parents=True)
    files.metrics.write_text(json.dumps({"seed": seed, "test_acc_final": accuracy, "test_acc_max": accuracy + 0.1,
                                         "n_test": 360, "n_classes": 10, "model": model, "run_id": run_id,
                                         "spec": {"run_id": run_id},
                                         "git_commit": "abc123", "host": "node7", "platform": "Linux-x86_64",
                                         "versions": {"torch": "2.9.0"}}))
    if dead is not None:
        rows = "\n".join(f"{e},{share}" for e, share in enumerate(dead, 1))
        files.epochs.write_text(f"epoch,dead_explanations\n{rows}\n")


def claim(name, a, b, direction="greater", margin=None):
    return Claim(name, "table2", "ResNet8", a, b, direction, margin, "table2", f"the paper: {a} > {b}", model="resnet8",
                 dataset="cifar10", paper_dataset="cifar10", paper_table=2, metric_kind="accuracy")


@pytest.fixture
def spec(tmp_path) -> ClaimsSpec:
    layout = ResultsLayout(tmp_path)
    cells = []
    for method, values in ACCURACY.items():
        ids = [f"{method}/seed{s}" for s in SEEDS]
        for s, v in zip(SEEDS, values):
            finished(layout, ids[s], s, v, dead=[0.02, 0.2] if method == "LE" else None)
        cells.append(Cell("ResNet8", method, "resnet8", "cifar10", ids, list(SEEDS),
                          teacher_run_ids=["teacher/seed0"] * 5 if method == "KD" else []))
    finished(layout, "teacher/seed0", 0, 89.0, model="resnet14")
    claims = [claim("le_gt_ce", "LE", "Cross-entropy"), claim("win_gt_ce", "Win", "Cross-entropy"),
              claim("le_equiv_kd", "LE", "KD", "equivalent", 0.5)]
    return ClaimsSpec(str(tmp_path), claims, {"table2": cells},
                      settings=ClaimSettings(max_seeds=12, seeds=(0, 1, 2, 3, 4)),
                      baselines={"table2": "Cross-entropy"}, seed_gpu_hours={"le_gt_ce": 0.25})


def test_claims_report_reads_runs_flags_cells_and_plans_seeds(spec, tmp_path):
    results = {r.name: r for r in write_claims_report(spec, REPORTED)}
    frame = pd.read_csv(tmp_path / "default" / "claims.csv").set_index("name")
    le = results["le_gt_ce"]
    assert le.verdict == "inconclusive (underpowered)" and le.seeds_needed > 12
    assert frame.loc["le_gt_ce", "gpu_hours_needed"] == pytest.approx(0.25 * le.seeds_needed)
    assert results["win_gt_ce"].verdict == "replicated" and pd.isna(frame.loc["win_gt_ce", "seeds_needed"])
    # the baseline is called "Cross-entropy": KD still gets its teacher and collapse flags, LE its dead maps
    kd_flags = {f.code for f in results["le_equiv_kd"].flags if f.method == "KD"}
    assert {"teacher_not_better", "collapsed", "outlier_seed"} <= kd_flags
    assert "dead_explanations" in {f.code for f in le.flags} and "11.0%" in frame.loc["le_gt_ce", "flags"]
    # the paper prints no "LE" or "Cross-entropy": the smallest effect of interest is the target
    assert frame.loc["le_gt_ce", "target_source"] == "smallest effect of interest"
    assert frame.loc["le_gt_ce", "target"] == 0.5
    # KD learned from one teacher run on every seed: its claims say the teacher's variance is not sampled
    assert "teacher variance not sampled: one teacher run serves every seed of KD" in results["le_equiv_kd"].reason
    assert "teacher variance" not in le.reason
    md = (tmp_path / "default" / "claims.md").read_text()
    assert "the paper: LE \\> Cross-entropy" in md and "touches" in md
    # the open claims need more than max_seeds (12) per cell: nothing that cannot resolve them is planned
    text = (tmp_path / "default" / "claims_next.yaml").read_text()
    assert yaml.safe_load(text) == {"extra_seeds": {}} and "Not planned (more than 12 seeds per cell): le_gt_ce" in text


def test_claims_next_adds_the_seeds_each_claim_needs_most_valuable_first(spec, tmp_path):
    spec = replace(spec, settings=replace(spec.settings, max_seeds=2000),
                   cell_gpu_hours={"table2 · ResNet8 · LE": 1.0, "table2 · ResNet8 · Cross-entropy": 1.0,
                                   "table2 · ResNet8 · KD": 10.0})
    results = {r.name: r for r in write_claims_report(spec, REPORTED)}
    le, kd = results["le_gt_ce"], results["le_equiv_kd"]
    assert le.seeds_needed and kd.seeds_needed and kd.seeds_needed <= 2000
    text = (tmp_path / "default" / "claims_next.yaml").read_text()
    extra = yaml.safe_load(text)["extra_seeds"]["table2"]["ResNet8"]
    # each cell up to the most seeds any of its open claims needs; Win's cell is resolved and gets none
    assert extra["Cross-entropy"] == list(range(5, le.seeds_needed))
    assert extra["LE"] == list(range(5, max(le.seeds_needed, kd.seeds_needed)))
    assert extra["KD"] == list(range(5, kd.seeds_needed)) and "Win" not in extra
    # value order: LE > CE costs 2 GPU-hours a seed; LE ≈ KD adds KD's seeds at 10 (and LE's beyond LE > CE's)
    first = 2.0 * (le.seeds_needed - 5)
    second = 10.0 * (kd.seeds_needed - 5) + max(0, kd.seeds_needed - le.seeds_needed)
    order = [line for line in text.splitlines() if line.startswith("#   ")]
    if first <= second:
        assert order[0] == f"#   1. le_gt_ce: {le.seeds_needed} seeds, adds {first:.2f} GPU-hours"
        assert order[1] == f"#   2. le_equiv_kd: {kd.seeds_needed} seeds, adds {second:.2f} GPU-hours"
    else:
        assert order[0].startswith("#   1. le_equiv_kd")


def test_the_headline_is_generated_from_the_results_with_its_provenance(spec, tmp_path, capsys):
    from introspect.cli import main

    write_claims_report(spec, REPORTED)
    assert main(["summary", "--results", str(tmp_path), "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "- Commit: abc123 (21 runs)" in text and "- Machine: node7 (21 runs)" in text
    assert "torch: 2\\.9.0 (21 runs)" in text  # escaped: a line-start "2." would open a Markdown list
    assert "can flip across machines" in text and "| replicated | 1 | " in text and "| total | 3 | 3.0 |" in text
    assert "| win\\_gt\\_ce |" in text and "teacher\\_not\\_better (1 claims)" in text
    from introspect.analysis.headline import headline

    assert main(["summary", "--results", str(tmp_path)]) == 0  # printed: plain text, even into a pipe
    plain = capsys.readouterr().out
    assert plain.startswith(headline(tmp_path, markdown=False))
    assert "torch: 2.9.0 (21 runs)" in plain and "teacher_not_better (1 claims)" in plain
    assert "\\" not in plain and "`" not in plain and "|" not in plain
    counts = plain[plain.index("\nVerdict "):].splitlines()[1:8]  # aligned columns: verdict, claims, expected
    assert counts[0].split() == ["Verdict", "Claims", "Expected", "in", "a", "rerun"]
    assert counts[1].split()[:2] == ["replicated", "1"] and counts[-1].split() == ["total", "3", "3.0"]
    assert len({line.index(line.split()[-1]) for line in counts[1:] if line.split()[-1] != "rerun"}) == 1
    resolved = plain[plain.index("\nResolved claim"):].splitlines()[2]
    assert resolved.split()[0] == "win_gt_ce"
    assert main(["summary", "--results", str(tmp_path / "nothing")]) != 0  # one line, no traceback
    assert "claims.csv" in capsys.readouterr().err


def test_training_flags_are_read_from_the_runs_and_named_in_the_claims(tmp_path):
    """train_acc_final from metrics.json, the last epochs' test accuracy from epochs.csv, and a peer of the
    student's own architecture (BAN's) reach the flags of the claims on those cells."""
    layout = ResultsLayout(tmp_path)
    cells = []
    for method, values in (("CE", ACCURACY["Cross-entropy"]), ("BAN", [88.0, 88.2, 87.9, 88.1, 88.3])):
        ids = [f"{method}/seed{s}" for s in SEEDS]
        for s, v in zip(SEEDS, values):
            finished(layout, ids[s], s, v)
            metrics = json.loads(layout.run(ids[s]).metrics.read_text())
            layout.run(ids[s]).metrics.write_text(json.dumps({**metrics, "train_acc_final": 93.0 if s == 2 else 99.5}))
            change = -12.0 if (method, s) == ("BAN", 4) else 0.5
            layout.run(ids[s]).epochs.write_text(f"epoch,train_acc,test_acc\n1,90,{v - change}\n2,99,{v}\n")
        peers = [f"peer/seed{s + 1000}" for s in SEEDS] if method == "BAN" else []
        cells.append(Cell("ResNet8", method, "resnet8", "cifar10", ids, list(SEEDS), teacher_run_ids=peers))
    for s in SEEDS:
        finished(layout, f"peer/seed{s + 1000}", s + 1000, 91.0)
    spec = ClaimsSpec(str(tmp_path), [claim("ban_gt_ce", "BAN", "CE")], {"table2": cells},
                      settings=ClaimSettings(seeds=tuple(SEEDS)), baselines={"table2": "CE"})
    flags = {(f.method, f.code): f.text for f in write_claims_report(spec, REPORTED)[0].flags}
    assert "91.00%" in flags[("BAN", "worse_than_own_teacher")]
    assert "seed 2: 93.0%" in flags[("CE", "undertrained")] and "seed 2: 93.0%" in flags[("BAN", "undertrained")]
    assert "seed 4: -12.0 pp" in flags[("BAN", "final_epoch_drop")]
    assert ("BAN", "below_baseline") in flags  # 2.1 pp below CE: its peer makes it a student


def test_smaller_than_reported_only_in_the_papers_setting(tmp_path):
    """The same numbers judged as CIFAR-10 at the paper's 160 epochs and as digits at 5: the paper's +2.0 pp
    effect of A over B is excluded by the corrected interval of a +0.3 pp effect, which only the paper's setting
    may call "smaller than reported"; elsewhere the verdict is about the direction and says why."""
    layout = ResultsLayout(tmp_path)
    cells = []
    for method, values in (("A", [90.3, 90.9, 90.4, 90.7, 90.3]), ("B", ACCURACY["Cross-entropy"])):
        ids = [f"{method}/seed{s}" for s in SEEDS]
        for s, v in zip(SEEDS, values):
            finished(layout, ids[s], s, v)
        cells.append(Cell("ResNet8", method, "resnet8", "cifar10", ids, list(SEEDS)))
    reported = tmp_path / "reported.csv"
    reported.write_text("table,dataset,model,method,metric,mean,std,source\n"
                        "2,cifar10,resnet8,A,test_acc,90.0,0.2,LE paper Table 2\n"
                        "2,cifar10,resnet8,B,test_acc,88.0,0.2,LE paper Table 2\n")

    def judged(dataset: str, epochs: int):
        spec = ClaimsSpec(str(tmp_path), [replace(claim("a_gt_b", "A", "B"), dataset=dataset, epochs=epochs)],
                          {"table2": cells}, settings=ClaimSettings(seeds=tuple(SEEDS)))
        return write_claims_report(spec, reported)[0]

    paper = judged("cifar10", 160)
    assert paper.paper_effect == pytest.approx(2.0) and paper.corrected_ci_high < 2.0
    assert paper.verdict == "smaller than reported" and paper.paper_setting
    digits = judged("digits", 5)
    assert digits.verdict == "replicated" and not digits.paper_setting
    why = "direction only: resnet8 on digits, 5 epochs is not the paper's setting (cifar10, 160 epochs)"
    assert why in digits.reason
    shorter = judged("cifar10", 5)  # the paper's data at another budget is not its setting either
    assert shorter.verdict == "replicated" and "direction only" in shorter.reason


def test_a_cost_claim_measures_each_model_with_its_warmup_and_teacher(tmp_path):
    """LE's cost is its run plus its warm-up; KD's its run plus its (shared) teacher's training, counted for each
    seed: what one more KD model needs. The effect is the share of KD's mean cost LE saves, paired by seed."""
    layout = ResultsLayout(tmp_path)
    seconds = {"LE": [10.0, 12.0, 11.0, 10.5, 11.5], "warm": [2.0] * 5, "KD": [8.0, 8.5, 7.5, 8.0, 9.0]}
    cells, warmups = [], {}
    for method in ("LE", "KD"):
        ids = [f"{method}/seed{s}" for s in SEEDS]
        for s in SEEDS:
            finished(layout, ids[s], s, 90.0 + 0.1 * s)
            metrics = json.loads(layout.run(ids[s]).metrics.read_text())
            layout.run(ids[s]).metrics.write_text(json.dumps({**metrics, "wall_time_seconds": seconds[method][s]}))
            if method == "LE":  # a warm-up's id as the plan makes it: a CE run named for its role
                warm_id = f"digits/resnet8/resnet-e5/warmup-w1/seed{s}"
                finished(layout, warm_id, s, 50.0)
                warm = layout.run(warm_id).metrics
                warm.write_text(json.dumps({**json.loads(warm.read_text()), "wall_time_seconds": 2.0, "run_id": warm_id,
                                            "spec": {"run_id": warm_id, "method": {"name": "ce"}}}))
                warmups[ids[s]] = warm_id
        cells.append(Cell("ResNet8", method, "resnet8", "cifar10", ids, list(SEEDS),
                          teacher_run_ids=["teacher/seed0"] * 5 if method == "KD" else []))
    finished(layout, "teacher/seed0", 0, 93.0, model="resnet26")
    teacher = layout.run("teacher/seed0").metrics
    teacher.write_text(json.dumps({**json.loads(teacher.read_text()), "wall_time_seconds": 20.0}))
    spec = ClaimsSpec(str(tmp_path), [claim("le_cheaper", "LE", "KD", "cheaper")], {"table2": cells},
                      settings=ClaimSettings(seeds=tuple(SEEDS)), warmup_of=warmups)
    result = write_claims_report(spec, REPORTED)[0]
    le = [a + w for a, w in zip(seconds["LE"], seconds["warm"])]
    kd = [k + 20.0 for k in seconds["KD"]]
    saved = [100.0 * (k - v) / (sum(kd) / 5) for v, k in zip(le, kd)]
    assert result.test == "paired t of costs, two-sided" and result.n_pairs == 5
    assert result.effect == pytest.approx(sum(saved) / 5) and result.verdict == "replicated"
    assert math.isnan(result.paper_effect) and "direction only" not in result.reason


def test_subset_p_values_by_hand():
    from introspect.claims.similarity import subset_p_values

    # 5 values, the named two are 0 and 1 (mean 1.5): of the 10 pairs only (0, 1) has a mean <= 1.5
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert subset_p_values(values, [0, 1]) == (pytest.approx(0.1), pytest.approx(1.0))
    # the named (1, 2) has mean 2.5: (0,1) 1.5, (0,2) 2, (0,3) 2.5, (1,2) 2.5 are <= it; all but (0,1) and (0,2),
    # 8 of 10, are >= it
    assert subset_p_values(values, [1, 2]) == (pytest.approx(0.4), pytest.approx(0.8))


@pytest.mark.parametrize("closer, verdict", [(True, "replicated"), (False, "contradicted")])
def test_a_class_similarity_claim_reads_its_figures_data(tmp_path, closer, verdict):
    """Figure 2(b): the four named pairs the closest (or farthest) of the 45 pairs of ten classes."""
    from introspect.claims.similarity import similarity_result

    named = [("0", "6"), ("1", "7"), ("3", "5"), ("4", "9")]
    rows = []
    for i, j in ((i, j) for i in range(10) for j in range(10)):
        pair = (str(min(i, j)), str(max(i, j)))
        distance = 0.0 if i == j else (0.2 if pair in named else 0.5 + 0.01 * (i + j)) if closer else \
            (0.0 if i == j else (0.9 if pair in named else 0.5 + 0.01 * (i + j)))
        rows.append({"panel": "(b) MLP", "run_id": "r", "explainer": "grad_input", "class_a": str(i),
                     "class_b": str(j), "cosine_distance": distance})
    layout = ResultsLayout(tmp_path)
    layout.figure("figure2", "csv").parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(layout.figure("figure2", "csv"), index=False)
    spec = Claim("f2", "figure2", "(b) MLP", "LE(Grad)", "other class pairs", "similar_pairs", None, "figure2",
                 "Sec. 5.4.1", pairs=tuple(tuple(p) for p in named), model="mlp1024", dataset="digits",
                 paper_dataset="mnist", metric_kind="accuracy", epochs=3)
    result = similarity_result(spec, layout)
    assert result.verdict == verdict
    tail = result.p_test if closer else 1 - result.p_test + 1 / 148_995
    assert tail == pytest.approx(1 / 148_995)  # one of C(45, 4) subsets is as extreme
    assert ("(0/6) 1," in result.reason) == closer and "no repeat probability" in result.reason
