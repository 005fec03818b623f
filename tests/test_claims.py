import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from introspect.analysis.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    REPLICATED,
    UNDERPOWERED,
    Claim,
    claims_frame,
    decide,
    evaluate_claims,
    measure,
    summary,
    write_claims,
)

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
VALUES = {("resnet14", "CE"): CE, **{("resnet14", m): shifted(d) for m, d in DIFFS.items()}}


def greater(method, paper_effect, **kw):
    return Claim(f"{method}>CE", method, "CE", "resnet14", "cifar10", "greater", paper_effect, **kw)


def equivalent(method, margin=0.5, **kw):
    return Claim(f"{method}~CE", method, "CE", "resnet14", "cifar10", "equivalent", 0.0, margin, **kw)


CLAIMS = [greater("Win", 0.95), greater("Loss", 0.5), greater("Noisy", 0.2), greater("Small", 0.95),
          greater("SmallWin", 0.95), equivalent("Same"), equivalent("Far"), equivalent("Wide")]


@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in evaluate_claims(CLAIMS, VALUES)}


def test_statistics_match_scipy_and_statsmodels(results):
    for method, diffs in DIFFS.items():
        r = next(r for r in results.values() if r.method_a == method)
        a, b = [VALUES[("resnet14", method)][s] for s in CE], list(CE.values())
        ref = stats.ttest_rel(a, b)
        ci = ref.confidence_interval()
        assert r.effect == pytest.approx(np.mean(diffs)) and r.n_pairs == 5
        assert (r.t, r.p, r.df) == pytest.approx((ref.statistic, ref.pvalue, 4))
        assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high))
        sd = np.std(diffs, ddof=1)
        assert r.sd_diff == pytest.approx(sd)
        d = TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8, alternative="two-sided")
        assert r.mde == pytest.approx(d * sd, rel=1e-6)


def test_statistics_by_hand_on_three_seeds():
    # differences 2, 3, 2 (see test_stats): t = 7, p = 1 - 7/sqrt(51) with 2 df
    r = measure(greater("X", None), {0: 3.0, 1: 5.0, 2: 4.0, 7: 1.0}, {0: 1.0, 1: 2.0, 2: 2.0, 8: 1.0})
    assert (r.n_pairs, r.n_unpaired, r.unpaired_seeds) == (3, 2, "7 8")
    assert r.effect == pytest.approx(7 / 3) and r.t == pytest.approx(7.0)
    assert r.p == pytest.approx(1 - 7 / math.sqrt(51))


def test_holm_over_the_family_matches_statsmodels(results):
    ordered = [results[c.name] for c in CLAIMS]
    expected = multipletests([r.p for r in ordered], method="holm")[1]
    assert [r.p_holm for r in ordered] == pytest.approx(list(expected))


def test_holm_per_family():
    claims = [replace(c, family="beats" if c.direction == "greater" else "same") for c in CLAIMS]
    by_name = {r.name: r for r in evaluate_claims(claims, VALUES)}
    for family in ("beats", "same"):
        members = [by_name[c.name] for c in claims if c.family == family]
        assert [r.p_holm for r in members] == pytest.approx(list(multipletests([r.p for r in members],
                                                                               method="holm")[1]))


def test_greater_verdicts(results):
    assert results["Win>CE"].verdict == REPLICATED
    assert results["Loss>CE"].verdict == CONTRADICTED and "CE significantly better" in results["Loss>CE"].reason
    noisy = results["Noisy>CE"]
    assert noisy.verdict == UNDERPOWERED and noisy.underpowered and noisy.mde > 0.2
    small = results["Small>CE"]  # not significant, but the CI excludes the paper's +0.95
    assert small.p_holm > 0.05 and small.ci_high < 0.95
    assert small.verdict == CONTRADICTED and "below the paper's" in small.reason and small.underpowered is False
    smaller_win = results["SmallWin>CE"]
    assert smaller_win.verdict == REPLICATED and "smaller than the paper's" in smaller_win.reason


def test_the_magnitude_rule_can_be_turned_off():
    by_name = {r.name: r for r in evaluate_claims(CLAIMS, VALUES, check_paper_magnitude=False)}
    assert by_name["Small>CE"].verdict == INCONCLUSIVE
    assert by_name["Win>CE"].verdict == REPLICATED and by_name["Loss>CE"].verdict == CONTRADICTED


def test_equivalence_verdicts(results):
    assert results["Same~CE"].verdict == REPLICATED
    assert -0.5 < results["Same~CE"].ci_low and results["Same~CE"].ci_high < 0.5
    assert results["Far~CE"].verdict == CONTRADICTED and results["Far~CE"].ci_low > 0.5
    wide = results["Wide~CE"]
    assert wide.verdict == UNDERPOWERED and wide.mde > 0.5


def test_equivalence_significant_and_beyond_the_margin_is_a_contradiction():
    # CI [0.1, 1.3] overlaps the margin, but the difference is significant and its estimate beyond it
    base = measure(equivalent("Same"), VALUES[("resnet14", "Same")], CE)
    r = replace(base, effect=0.7, ci_low=0.1, ci_high=1.3, p=0.01, p_holm=0.03, mde=0.4)
    assert decide(r).verdict == CONTRADICTED
    assert decide(replace(r, p_holm=0.2)).verdict == INCONCLUSIVE
    assert decide(replace(r, p_holm=0.2, mde=0.9)).verdict == UNDERPOWERED


def test_no_paper_effect_means_power_cannot_be_judged():
    r = evaluate_claims([greater("Noisy", None)], VALUES)[0]
    assert r.verdict == INCONCLUSIVE and r.underpowered is None and math.isnan(r.paper_effect)


def test_degenerate_claims_are_inconclusive_with_the_reason():
    values = {("resnet14", "CE"): CE, ("resnet14", "Const"): shifted([0.5] * 5), ("resnet14", "One"): {0: 95.0}}
    claims = [greater("Const", 0.5), greater("One", 0.5), greater("Absent", 0.5), greater("Win", 0.95)]
    by_name = {r.name: r for r in evaluate_claims(claims, {**VALUES, **values})}
    const = by_name["Const>CE"]
    assert const.verdict == INCONCLUSIVE and "identical" in const.reason
    assert const.effect == pytest.approx(0.5) and all(math.isnan(v) for v in (const.p, const.p_holm, const.mde))
    assert "n < 2" in by_name["One>CE"].reason and by_name["One>CE"].n_unpaired == 4
    assert by_name["Absent>CE"].n_pairs == 0 and by_name["Absent>CE"].verdict == INCONCLUSIVE
    # the degenerate claims do not count in the Holm family: Win is alone in it
    assert by_name["Win>CE"].p_holm == pytest.approx(by_name["Win>CE"].p)


def test_claims_are_validated():
    with pytest.raises(ValueError, match="margin"):
        Claim("x", "A", "B", "m", "d", "equivalent")
    with pytest.raises(ValueError, match="direction"):
        Claim("x", "A", "B", "m", "d", "less")
    with pytest.raises(ValueError, match="unique"):
        evaluate_claims([greater("Win", 1.0), greater("Win", 1.0)], VALUES)


def test_summary_counts_and_names_what_stays_open(results):
    text = summary(list(results.values()))
    assert text.startswith("Of 8 claims from the paper, 3 replicated, 3 were contradicted and 2 are inconclusive "
                           "(2 of them underpowered")
    assert "cannot resolve: Noisy>CE (" in text and "Wide~CE (" in text and "Win>CE" not in text


def test_writers(tmp_path, results):
    hostile = replace(results["Win>CE"], name="<script>alert(1)</script>", flags="low n & missing seeds")
    rows = list(results.values()) + [hostile]
    write_claims(rows, tmp_path / "claims" / "claims")
    csv = pd.read_csv(tmp_path / "claims" / "claims.csv")
    assert list(csv.columns) == list(claims_frame(rows).columns) and len(csv) == 9
    assert csv.set_index("name").loc["Win>CE", "verdict"] == REPLICATED
    page = (tmp_path / "claims" / "claims.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "low n &amp; missing seeds" in page
    md = (tmp_path / "claims" / "claims.md").read_text()
    assert "| Win>CE" in md and "Of 9 claims" in md and "Holm" in md
