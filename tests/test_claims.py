import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from introspect.analysis.sanity import Flag
from introspect.claims.engine import (
    CONTRADICTED,
    INCONCLUSIVE,
    REPLICATED,
    SMALLER,
    UNDERPOWERED,
    WITHHELD,
    decide,
    evaluate_claims,
    measure,
)
from introspect.claims.render import claims_frame, claims_markdown, summary, write_claims
from introspect.config.claim import Claim


def at(group):
    """The engine's key of a group's values: claim_of's view and the group (Claim.values_key)."""
    return f"t · {group}"


def claim_of(name, method_a, method_b, group, dataset, direction, paper_effect=None, margin=None, family="all",
             text="", **kw):
    """A claim of view "t" as the claims job hands it to the engine (the paper's dataset and effect read)."""
    return Claim(name, "t", group, method_a, method_b, direction, margin, family, text, model=group,
                 paper_dataset=dataset, paper_effect=paper_effect, **kw)


CE = {0: 90.0, 1: 90.5, 2: 90.2, 3: 90.4, 4: 89.9}


def shifted(diffs, base=CE):
    return {seed: base[seed] + d for seed, d in zip(sorted(base), diffs)}


# method -> per-seed differences to CE on "resnet14"
DIFFS = {
    "Win": [1.0, 1.2, 0.9, 1.1, 1.0],
    "Loss": [-1.0, -1.2, -0.9, -1.1, -1.0],
    "Noisy": [0.5, -0.6, 0.3, -0.2, 0.1],
    "Small": [0.1, -0.1, 0.2, 0.0, -0.05],
    "SmallWin": [0.3, 0.35, 0.25, 0.3, 0.32],
    "Same": [0.05, -0.05, 0.1, 0.0, -0.02],
    "Far": [1.5, 1.6, 1.4, 1.55, 1.45],
    "Wide": [1.0, -1.0, 0.5, -0.8, 0.4],
}
VALUES = {(at("resnet14"), "CE"): CE, **{(at("resnet14"), m): shifted(d) for m, d in DIFFS.items()}}


def greater(method, paper_effect, name=None, **kw):
    return claim_of(name or f"{method}>CE", method, "CE", "resnet14", "cifar10", "greater", paper_effect, **kw)


def equivalent(method, margin=0.5, **kw):
    return claim_of(f"{method}~CE", method, "CE", "resnet14", "cifar10", "equivalent", 0.0, margin, **kw)


CLAIMS = [greater("Win", 0.95), greater("Loss", 0.5), greater("Noisy", 0.2), greater("Small", 0.95),
          greater("SmallWin", 0.95), equivalent("Same"), equivalent("Far"), equivalent("Wide")]


@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in evaluate_claims(CLAIMS, VALUES)}


def test_statistics_match_scipy(results):
    for method, diffs in DIFFS.items():
        r = next(r for r in results.values() if r.method_a == method)
        a, b = [VALUES[(at("resnet14"), method)][s] for s in CE], list(CE.values())
        ref = stats.ttest_rel(a, b)
        ci, corrected = ref.confidence_interval(), ref.confidence_interval(1 - 0.05 / len(CLAIMS))
        assert r.effect == pytest.approx(np.mean(diffs)) and r.n_pairs == 5
        assert (r.t, r.p, r.df) == pytest.approx((ref.statistic, ref.pvalue, 4))
        assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high))
        assert (r.corrected_ci_low, r.corrected_ci_high) == pytest.approx((corrected.low, corrected.high))
        assert r.sd_diff == pytest.approx(np.std(diffs, ddof=1))


def verify_tool():
    """tools/verify_claims.py, which recomputes claims.csv's power figures by simulation."""
    path = Path(__file__).resolve().parents[1] / "tools" / "verify_claims.py"
    spec = importlib.util.spec_from_file_location("verify_claims", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mde_and_seeds_needed_in_claims_csv_agree_with_a_simulation_at_the_corrected_level(tmp_path, capsys):
    claims = [replace(c, family="beats" if c.direction == "greater" else "same", seed_gpu_hours=0.5, paper_sd=0.6)
              for c in CLAIMS] + [greater("Noisy", None, family="order", name="order1", seed_gpu_hours=0.5),
                                  greater("Wide", None, family="order", name="order2", seed_gpu_hours=0.5),
                                  replace(greater("Noisy", None, name="nb"), direction="not_better"),
                                  replace(greater("Wide", None, name="cost"), direction="cheaper", family="cost")]
    write_claims(evaluate_claims(claims, VALUES, smallest_effect=0.3), tmp_path / "claims")
    frame = pd.read_csv(tmp_path / "claims.csv")
    assert verify_tool().main(tmp_path / "claims.csv") == 0, capsys.readouterr().out
    open_rows = frame[frame.verdict.isin([INCONCLUSIVE, UNDERPOWERED])]
    assert len(open_rows) >= 3 and set(open_rows.direction) >= {"greater", "equivalent", "not_better", "cheaper"}
    priced = open_rows[~open_rows.name.isin(["nb", "cost"])]
    assert (priced.gpu_hours_needed == 0.5 * priced.seeds_needed).all()
    assert priced[priced.paper_sd.notna()].paper_seeds_needed.notna().all()
    assert frame.set_index("name").alpha_family.to_dict()["order1"] == pytest.approx(0.05 / 2)
    targets = frame.set_index("name")
    assert targets.loc["order1", "target"] == 0.3
    assert targets.loc["order1", "target_source"] == "smallest effect of interest"
    assert targets.loc["Same~CE", "target_source"] == "margin" and targets.loc["Win>CE", "target"] == 0.95
    # the check can fail: an MDE 2% too small, a seed count one too few
    wrong = frame.copy()
    wrong.loc[wrong.name == "Noisy>CE", "mde"] *= 0.98
    wrong.to_csv(tmp_path / "wrong.csv", index=False)
    assert verify_tool().main(tmp_path / "wrong.csv") == 1 and "Noisy>CE: MDE" in capsys.readouterr().out
    wrong = frame.copy()
    row = wrong.index[wrong.name == "Wide~CE"][0]
    wrong.loc[row, "seeds_needed"] -= 1
    wrong.to_csv(tmp_path / "wrong.csv", index=False)
    assert verify_tool().main(tmp_path / "wrong.csv") == 1 and "Wide~CE: seeds_needed" in capsys.readouterr().out


def test_the_mde_at_the_corrected_level_is_larger_than_at_alpha():
    """The issue's case: 5 pairs in a 14-claim family need a bigger effect than at 0.05."""
    alone = evaluate_claims([greater("Noisy", 0.2)], VALUES)[0]
    crowd = [greater("Noisy", 0.2)] + [greater("Win", 1.0, name=f"w{i}") for i in range(13)]
    in_family = evaluate_claims(crowd, VALUES)[0]
    assert in_family.family_size == 14 and in_family.alpha_family == pytest.approx(0.05 / 14)
    assert in_family.mde > 1.5 * alone.mde


def test_holm_over_the_family_matches_statsmodels(results):
    ordered = [results[c.name] for c in CLAIMS]
    expected = multipletests([r.p_test for r in ordered], method="holm")[1]
    assert [r.p_holm for r in ordered] == pytest.approx(list(expected))


def test_greater_verdicts(results):
    assert results["Win>CE"].verdict == REPLICATED
    assert results["Loss>CE"].verdict == CONTRADICTED and "CE significantly better" in results["Loss>CE"].reason
    noisy = results["Noisy>CE"]
    assert noisy.verdict == UNDERPOWERED and noisy.underpowered and noisy.mde > 0.2 and noisy.seeds_needed > 5
    small = results["Small>CE"]  # not significant, but even the corrected interval excludes the paper's +0.95
    assert small.p_holm > 0.05 and small.corrected_ci_high < 0.95
    assert small.verdict == SMALLER and "not significant against zero" in small.reason
    smaller_win = results["SmallWin>CE"]  # significantly ahead, by less than the paper's effect
    assert smaller_win.p_holm < 0.05 and smaller_win.verdict == SMALLER
    assert "significantly ahead" in smaller_win.reason and smaller_win.seeds_needed is None


def test_smaller_than_reported_uses_the_corrected_interval():
    # the 95% interval excludes +0.35, the interval corrected for a family of 8 does not: no verdict from it
    diffs = [0.3, 0.1, 0.2, 0.25, 0.15]
    values = {(at("m"), "A"): shifted(diffs), (at("m"), "CE"): CE}
    ci = stats.ttest_rel(list(values[(at("m"), "A")].values()), list(CE.values())).confidence_interval()
    claim = claim_of("A>CE", "A", "CE", "m", "d", "greater", 0.35)
    alone = evaluate_claims([claim], values)[0]
    family = evaluate_claims([claim] + [replace(claim, name=f"x{i}") for i in range(7)], values)[0]
    assert ci.high < 0.35 and alone.verdict == SMALLER
    assert family.corrected_ci_high > 0.35 and family.verdict != SMALLER


def test_the_magnitude_rule_can_be_turned_off():
    by_name = {r.name: r for r in evaluate_claims(CLAIMS, VALUES, check_paper_magnitude=False)}
    assert by_name["Small>CE"].verdict == INCONCLUSIVE
    assert by_name["SmallWin>CE"].verdict == REPLICATED
    assert by_name["Win>CE"].verdict == REPLICATED and by_name["Loss>CE"].verdict == CONTRADICTED


def test_equivalence_verdicts(results):
    same = results["Same~CE"]
    assert same.verdict == REPLICATED and -0.5 < same.corrected_ci_low and same.corrected_ci_high < 0.5
    assert results["Far~CE"].verdict == CONTRADICTED and results["Far~CE"].corrected_ci_low > 0.5
    wide = results["Wide~CE"]
    assert wide.verdict == UNDERPOWERED and wide.mde > 0.5


def test_equivalence_is_contradicted_only_when_the_corrected_interval_lies_outside_the_margin():
    """Significant against zero with an estimate beyond the margin is not enough (with the true gap at the margin
    that rule's false-positive rate grows towards 50% with n): the whole corrected interval must be outside."""
    base = measure(equivalent("Same"), VALUES[(at("resnet14"), "Same")], CE)
    r = replace(base, effect=0.7, corrected_ci_low=0.1, corrected_ci_high=1.3, p=0.01, p_test=0.4, p_holm=0.9,
                mde=0.4, target=0.5, target_source="margin", underpowered=False)
    assert decide(r).verdict == INCONCLUSIVE
    assert decide(replace(r, corrected_ci_low=0.55)).verdict == CONTRADICTED
    assert decide(replace(r, corrected_ci_low=-1.3, corrected_ci_high=-0.6)).verdict == CONTRADICTED
    assert decide(replace(r, mde=0.9, underpowered=True)).verdict == UNDERPOWERED
    # replicated by TOST at the corrected level: its Holm-adjusted p
    assert decide(replace(r, corrected_ci_low=-0.2, corrected_ci_high=0.3, p_holm=0.01)).verdict == REPLICATED


def test_tost_p_of_an_equivalence_claim_by_hand(results):
    same = results["Same~CE"]
    diff = np.array(DIFFS["Same"])
    se = diff.std(ddof=1) / math.sqrt(5)
    p = max(stats.t.sf((diff.mean() + 0.5) / se, 4), stats.t.cdf((diff.mean() - 0.5) / se, 4))
    assert same.test == "TOST" and same.p_test == pytest.approx(p) and same.p == pytest.approx(
        stats.ttest_rel(list(VALUES[(at("resnet14"), "Same")].values()), list(CE.values())).pvalue)


def test_not_better_claims():
    """A is not better than B: contradicted when A is significantly ahead at the corrected level, replicated when
    the one-sided test puts A − B surely below the smallest effect of interest."""
    nb = {m: claim_of(f"{m}!>CE", m, "CE", "resnet14", "cifar10", "not_better") for m in ("Win", "Small", "Noisy")}
    by_name = {r.name: r for r in evaluate_claims(list(nb.values()), VALUES, smallest_effect=0.5)}
    assert by_name["Win!>CE"].verdict == CONTRADICTED and "significantly better" in by_name["Win!>CE"].reason
    small = by_name["Small!>CE"]
    diff = np.array(DIFFS["Small"])
    p = stats.t.cdf((diff.mean() - 0.5) / (diff.std(ddof=1) / math.sqrt(5)), 4)
    assert small.p_test == pytest.approx(p) and small.p_holm == pytest.approx(min(1.0, 3 * p))
    assert small.verdict == REPLICATED and small.target == 0.5
    assert by_name["Noisy!>CE"].verdict in (INCONCLUSIVE, UNDERPOWERED) and by_name["Noisy!>CE"].seeds_needed


def test_magnitudes_are_compared_only_in_the_paper_setting():
    """A digits result set is not the paper's CIFAR-10 one: no "smaller than reported", and the reason says why."""
    note = "digits, 5 epochs (the paper: cifar10, 160 epochs)"
    claims = [replace(c, paper_setting=False, setting_note=note) for c in CLAIMS]
    by_name = {r.name: r for r in evaluate_claims(claims, VALUES)}
    assert all(r.verdict != SMALLER for r in by_name.values())
    assert by_name["SmallWin>CE"].verdict == REPLICATED and "direction only: " + note in by_name["SmallWin>CE"].reason
    assert by_name["Small>CE"].verdict == INCONCLUSIVE and "direction only" in by_name["Small>CE"].reason


def test_a_resolution_flag_withholds_a_resolved_verdict(results):
    flag = Flag("resolution", "Win and CE differ by at most one of 359 test images", "g", "resnet14", "Win", "CE")
    withheld = evaluate_claims(CLAIMS, VALUES, flags={"Win>CE": [flag], "Noisy>CE": [flag]})
    by_name = {r.name: r for r in withheld}
    assert by_name["Win>CE"].verdict == WITHHELD and "the rules gave 'replicated'" in by_name["Win>CE"].reason
    assert by_name["Noisy>CE"].verdict == UNDERPOWERED  # an open verdict stays open


def test_a_claim_whose_table_disagrees_with_its_text_says_which_our_result_agrees_with():
    loss = claim_of("Loss>CE", "Loss", "CE", "resnet14", "cifar10", "greater", -0.73)
    win = replace(loss, name="Win>CE", method_a="Win")
    noisy = replace(loss, name="Noisy>CE", method_a="Noisy")
    by_name = {r.name: r for r in evaluate_claims([loss, win, noisy], VALUES)}
    assert all(r.table_disagrees for r in by_name.values())
    assert by_name["Loss>CE"].verdict == CONTRADICTED and "ours agrees with the table" in by_name["Loss>CE"].reason
    assert by_name["Win>CE"].verdict == REPLICATED and "ours agrees with the text" in by_name["Win>CE"].reason
    assert "-0.73 pp against its text" in by_name["Noisy>CE"].reason
    # no positive paper effect to plan with: the smallest effect of interest is the target
    assert by_name["Noisy>CE"].target_source == "smallest effect of interest"


def test_degenerate_claims_are_inconclusive_with_the_reason():
    values = {(at("resnet14"), "CE"): CE, (at("resnet14"), "Const"): shifted([0.5] * 5),
              (at("resnet14"), "One"): {0: 95.0}}
    claims = [greater("Const", 0.5), greater("One", 0.5), greater("Absent", 0.5), greater("Win", 0.95)]
    by_name = {r.name: r for r in evaluate_claims(claims, {**VALUES, **values})}
    const = by_name["Const>CE"]
    assert const.verdict == INCONCLUSIVE and "identical" in const.reason and const.seeds_needed is None
    assert const.effect == pytest.approx(0.5) and all(math.isnan(v) for v in (const.p, const.p_holm, const.mde))
    assert "n < 2" in by_name["One>CE"].reason and by_name["One>CE"].n_unpaired == 4
    assert by_name["Absent>CE"].n_pairs == 0 and by_name["Absent>CE"].verdict == INCONCLUSIVE
    # the degenerate claims do not count in the Holm family: Win is alone in it
    assert by_name["Win>CE"].p_holm == pytest.approx(by_name["Win>CE"].p) and by_name["Win>CE"].family_size == 1


def test_claims_are_validated():
    with pytest.raises(ValueError, match="margin"):
        evaluate_claims([claim_of("x", "A", "B", "m", "d", "equivalent")], {})
    with pytest.raises(ValueError, match="direction"):
        evaluate_claims([claim_of("x", "A", "B", "m", "d", "less")], {})
    with pytest.raises(ValueError, match="unique"):
        evaluate_claims([greater("Win", 1.0), greater("Win", 1.0)], VALUES)


def prose_blocks(markdown: str) -> list[str]:
    """Paragraphs and list items of a Markdown text (tables and headings are not prose)."""
    blocks = []
    for block in markdown.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(("|", "#"))]
        items = [line for line in lines if line.startswith("- ")]
        blocks += items if items else (["\n".join(lines)] if lines else [])
    return blocks


def test_claims_md_opens_with_counts_and_resolved_claims_and_has_no_long_paragraph(results):
    low_n = Flag("low_n", "n = 2 seeds, fewer than the paper's 5", "ResNet14", "resnet14", "CE")
    many = [replace(r, name=f"{r.name}_with_a_long_name_{i}", reason=r.reason + " because" * 10, flags=[low_n])
            for i in range(8) for r in results.values()]
    md = claims_markdown(many)
    first, second = md.split("\n\n")[1:3]
    assert first.startswith("| Verdict | Claims | Expected in a rerun |") and "| total | 64 | – |" in first
    assert second.startswith("| Claim |") and "replicated" in second and "Noisy" not in second
    assert max(map(len, prose_blocks(md))) <= 600
    text = summary(many)
    assert text.splitlines()[1].startswith("replicated") and "Resolved:" in text
    assert max(map(len, text.splitlines())) <= 600


def test_each_claim_shows_its_sentence_and_its_flags_name_the_rule_and_the_claims(tmp_path, results):
    flag = Flag("outlier_seed", "seed 3 (80.00%) is 10.00 pp below", "ResNet14", "resnet14", "Win")
    rows = [replace(r, text=f"Sec. 5: {r.name} says <so>", flags=[flag] if r.name.startswith("Win") else [])
            for r in results.values()]
    write_claims(rows, tmp_path / "claims")
    md, page = (tmp_path / "claims.md").read_text(), (tmp_path / "claims.html").read_text()
    for r in rows:
        assert r.name.replace(">", "\\>").replace("~", "\\~") + ": Sec. 5" in md
        assert f"{r.name.replace('>', '&gt;')} says &lt;so&gt;" in page
    assert "outlier\\_seed (one seed far below its cell's other seeds)" in md and "touches 1 claim: Win\\>CE" in md
    assert "What it would take" in md and "seeds" in md


def test_writers_escape_and_keep_every_column(tmp_path, results):
    flag = Flag("low_n", "n & = <2>", "g", "m", "CE")
    hostile = replace(results["Win>CE"], name="<script>alert(1)</script>", flags=[flag], text="=HYPERLINK(x)")
    rows = list(results.values()) + [hostile]
    write_claims(rows, tmp_path / "claims" / "claims")
    csv = pd.read_csv(tmp_path / "claims" / "claims.csv")
    assert list(csv.columns) == list(claims_frame(rows).columns) and len(csv) == 9
    assert csv.set_index("name").loc["Win>CE", "verdict"] == REPLICATED
    assert csv.text.iloc[-1] == "'=HYPERLINK(x)" and csv["flags"].iloc[-1] == "CE [low_n]: n & = <2>"
    page = (tmp_path / "claims" / "claims.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "n &amp; = &lt;2&gt;" in page
    md = (tmp_path / "claims" / "claims.md").read_text()
    assert "\\<script\\>" in md and "<script>" not in md


def test_what_it_would_take_counts_each_cell_once(results):
    from introspect.claims.render import what_it_would_take

    open_claims = [r for r in results.values() if r.verdict == UNDERPOWERED]
    assert {r.name for r in open_claims} == {"Noisy>CE", "Wide~CE"} and all(r.seeds_needed for r in open_claims)
    text = what_it_would_take(open_claims)
    assert "2 of 2 open claims" in text and "GPU-hours" not in text and "others" not in text
    noisy, wide = (results[n].seeds_needed for n in ("Noisy>CE", "Wide~CE"))
    hours = {"t · resnet14 · Noisy": 1.0, "t · resnet14 · Wide": 0.5, "t · resnet14 · CE": 2.0}
    # CE serves both claims: priced once, at the larger seed count
    total = noisy * 1.0 + wide * 0.5 + max(noisy, wide) * 2.0
    assert f"the 3 cells they name would cost {total:.1f} GPU-hours" in what_it_would_take(open_claims, hours)
    paper = [replace(r, paper_seeds_needed=7) for r in open_claims]
    assert f"would cost {7 * 3.5:.1f} GPU-hours" in what_it_would_take(paper, hours, True)
    unplanned = [open_claims[0], replace(open_claims[1], seeds_needed=None)]
    assert "1 of 2 open claims" in what_it_would_take(unplanned) and "others" in what_it_would_take(unplanned)
    assert what_it_would_take([results["Win>CE"]]).startswith("Every claim is resolved")


def test_every_verdict_has_a_repeat_probability_from_seed_resamples():
    from introspect.claims.render import counts
    from introspect.claims.repeat import verdict_distributions, with_repeat_probabilities

    judged = evaluate_claims(CLAIMS, VALUES)
    again = with_repeat_probabilities(CLAIMS, VALUES, judged)
    by_name = {r.name: r for r in again}
    assert all(0.0 <= r.repeat_probability <= 1.0 for r in again)
    assert by_name["Win>CE"].repeat_probability > 0.95  # 1 pp ahead on every seed: every resample agrees
    # each claim's shares add up to one, so the expected counts add up to the number of claims
    shares = verdict_distributions(CLAIMS, VALUES, judged)
    assert len(shares) == len(CLAIMS) and all(sum(s.values()) == pytest.approx(1.0) for s in shares.values())
    rows = {label: (n, expected) for label, n, expected in counts(again)}
    assert sum(e for label, (n, e) in rows.items() if label != "total") == pytest.approx(len(CLAIMS))
    assert rows["total"][0] == len(CLAIMS) and rows["total"][1] == pytest.approx(len(CLAIMS))
    # deterministic: the same data give the same probabilities
    assert [r.repeat_probability for r in with_repeat_probabilities(CLAIMS, VALUES, judged)] == \
        [r.repeat_probability for r in again]
    # by hand for one claim: resampling "Same"'s five differences, TOST within ±0.5 at alpha (alone in a family)
    same = claim_of("Same~CE", "Same", "CE", "resnet14", "cifar10", "equivalent", 0.0, 0.5)
    alone = with_repeat_probabilities([same], VALUES, evaluate_claims([same], VALUES), draws=400)[0]
    rng, diff, hits = np.random.default_rng(20201), np.array(DIFFS["Same"]), 0
    for _ in range(400):
        d = diff[np.searchsorted(sorted(CE), rng.choice(sorted(CE), size=5, replace=True))]
        if np.ptp(d) > 1e-9:
            se = d.std(ddof=1) / math.sqrt(5)
            hits += max(stats.t.sf((d.mean() + 0.5) / se, 4), stats.t.cdf((d.mean() - 0.5) / se, 4)) < 0.05
    assert alone.verdict == REPLICATED and alone.repeat_probability == pytest.approx(hits / 400)


def test_a_majority_claim_follows_from_its_members():
    """"A outperforms most of B1..Bk": more than half of the members replicated, not all of them."""
    from introspect.claims.majority import majority_verdict, with_majorities
    from introspect.claims.render import counts
    from introspect.claims.repeat import with_repeat_probabilities

    assert majority_verdict([REPLICATED] * 3 + [INCONCLUSIVE] * 2)[0] == REPLICATED
    assert majority_verdict([REPLICATED] * 2 + [INCONCLUSIVE] * 3)[0] == INCONCLUSIVE
    assert majority_verdict([CONTRADICTED] * 3 + [REPLICATED] * 2)[0] == CONTRADICTED
    assert majority_verdict([REPLICATED, CONTRADICTED, CONTRADICTED, INCONCLUSIVE])[0] == CONTRADICTED  # needs 3 of 4
    assert majority_verdict([UNDERPOWERED] * 3 + [REPLICATED] * 2)[0] == UNDERPOWERED
    assert majority_verdict([SMALLER, SMALLER, REPLICATED])[0] == INCONCLUSIVE  # smaller is not a win
    # A (Far: CE + 1.5) is significantly ahead of CE and of Small (CE + 0.03), not of Wide (CE + 1.5 ± 0.5)
    values = {(at("g"), "A"): VALUES[(at("resnet14"), "Far")], (at("g"), "Small"): VALUES[(at("resnet14"), "Small")],
              (at("g"), "Wide"): shifted([2.0, 1.0, 1.2, 1.8, 1.6]), (at("g"), "CE"): CE}
    members = [claim_of(f"a_gt_{m}", "A", m, "g", "d", "greater", None, family="t5", part_of="a_most")
               for m in ("CE", "Small", "Wide")]
    judged = with_majorities(evaluate_claims(members, values))
    row = judged[-1]
    assert [r.name for r in judged] == ["a_gt_CE", "a_gt_Small", "a_gt_Wide", "a_most"]
    assert [r.verdict for r in judged[:2]] == [REPLICATED, REPLICATED] and judged[2].verdict != REPLICATED
    assert row.verdict == REPLICATED and row.method_b == "most of CE, Small, Wide"
    assert "better than 2 of 3" in row.reason and "a majority needs 2" in row.reason
    with_p = with_repeat_probabilities(members, values, judged)
    assert 0 < with_p[-1].repeat_probability <= 1
    assert dict((label, n) for label, n, _ in counts(with_p))["total"] == 1


def test_a_variance_claim_by_the_pitman_morgan_test():
    """"LE achieves the best with tiny variance": A's spread over seeds against B's, paired by seed. The test by
    hand: var(A) = var(B) exactly when A + B and A − B are uncorrelated."""
    steady = {s: 90.0 + d for s, d in zip(CE, [0.01, -0.02, 0.0, 0.02, -0.01])}
    wild = {s: 90.0 + d for s, d in zip(CE, [1.0, -1.5, 0.7, 1.2, -0.9])}
    values = {(at("m"), "Steady"): steady, (at("m"), "Wild"): wild}
    claims = [claim_of("steady", "Steady", "Wild", "m", "d", "less_variable"),
              claim_of("wild", "Wild", "Steady", "m", "d", "less_variable")]
    by_name = {r.name: r for r in evaluate_claims(claims, values)}
    a, b = np.array(list(steady.values())), np.array(list(wild.values()))
    r = np.corrcoef(a + b, a - b)[0, 1]
    p = 2 * stats.t.sf(abs(r) * math.sqrt(3) / math.sqrt(1 - r * r), 3)
    steady_r = by_name["steady"]
    assert steady_r.test == "Pitman-Morgan, two-sided" and steady_r.p_test == pytest.approx(p)
    assert steady_r.sd_ratio == pytest.approx(a.std(ddof=1) / b.std(ddof=1))
    assert steady_r.verdict == REPLICATED and by_name["wild"].verdict == CONTRADICTED
    assert steady_r.p_holm == pytest.approx(min(1, 2 * p)) and steady_r.seeds_needed is None


def test_a_variance_claims_reruns_use_the_variance_test():
    """Resampled seeds of a variance claim are judged by Pitman-Morgan, not by the t-test of the means: a claim
    whose means are equal but whose spreads differ hugely repeats (the t-test would call it inconclusive)."""
    from introspect.claims.repeat import with_repeat_probabilities

    steady = {s: 90.0 + d for s, d in enumerate([0.01, -0.02, 0.0, 0.02, -0.01, 0.015, -0.005, 0.0])}
    wild = {s: 90.0 + d for s, d in enumerate([1.0, -1.5, 0.7, 1.2, -0.9, -1.1, 1.4, -0.8])}
    values = {(at("m"), "Steady"): steady, (at("m"), "Wild"): wild}
    claim = claim_of("steady", "Steady", "Wild", "m", "d", "less_variable")
    result = with_repeat_probabilities([claim], values, evaluate_claims([claim], values))[0]
    assert result.verdict == REPLICATED and result.repeat_probability > 0.9
