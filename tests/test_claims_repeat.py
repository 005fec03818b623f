"""The repeat probabilities' resampling, all draws at once (claims.repeat, claims.resampled), against the
straightforward path it replaced: one resample at a time, each claim rebuilt as a ClaimResult and judged by the
engine's own judge_family and decide. The two must give the same shares, float for float."""
import math
from dataclasses import replace

import numpy as np
import pytest

from introspect.analysis.sanity import Flag
from introspect.analysis.stats import (
    NAN,
    degenerate_reason,
    holm,
    paired_differences,
    pitman_morgan_arrays,
)
from introspect.claims.engine import decide, evaluate_claims, judge_family, own_test_p
from introspect.claims.majority import MAJORITY, majority_verdict, with_majorities
from introspect.claims.repeat import outcome, verdict_distributions
from introspect.claims.resampled import holm_rows
from introspect.config.claim import Claim


def resampled(template, pairs, smallest_effect):
    """One claim on one resample of (A, B) rows, as the engine measures it (no family level or verdict)."""
    diff = pairs[:, 0] - pairs[:, 1]
    n = len(diff)
    if template.direction == "less_variable":
        ratio, p_test, reason = pitman_morgan_arrays(pairs[:, 0], pairs[:, 1])
        return replace(template, n_pairs=n, sd_ratio=ratio, p_test=p_test, reason=reason, verdict="")
    reason = degenerate_reason(diff)
    mean = float(diff.mean()) if n else NAN
    if reason:
        return replace(template, n_pairs=n, effect=mean, p=NAN, p_test=NAN, reason=reason, verdict="")
    sd = float(diff.std(ddof=1))
    t = mean / (sd / math.sqrt(n))
    from scipy import stats

    p = float(2 * stats.t.sf(abs(t), n - 1))
    margin = None if math.isnan(template.margin) else template.margin
    return replace(template, n_pairs=n, effect=mean, sd_diff=sd, t=t, p=p, reason="", verdict="",
                   p_test=own_test_p(template.direction, diff, margin, smallest_effect, p))


def reference_distributions(claims, values, results, *, alpha=0.05, smallest_effect=0.5,
                            check_paper_magnitude=True, draws=400, seed=20201):
    """The shares by the slow path: a loop over resamples, the engine's functions on each."""
    results = [r for r in results if r.direction != MAJORITY]
    sides = [(values.get((c.values_key, c.method_a), {}), values.get((c.values_key, c.method_b), {}))
             for c in claims]
    by_seed = [{s: (a[s], b[s]) for s in paired_differences(a, b)[0]} for a, b in sides]
    pool = sorted({s for d in by_seed for s in d})
    groups = {name: [i for i, r in enumerate(results) if r.part_of == name]
              for name in dict.fromkeys(r.part_of for r in results if r.part_of)}
    shares = {name: {} for name in [*(r.name for r in results), *groups]}
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        sample = rng.choice(pool, size=len(pool), replace=True)
        pairs = [np.array([d[s] for s in sample if s in d], dtype=float).reshape(-1, 2) for d in by_seed]
        drawn = [resampled(r, p, smallest_effect) for r, p in zip(results, pairs)]
        judged = judge_family(drawn, [p[:, 0] - p[:, 1] for p in pairs], alpha=alpha,
                              smallest_effect=smallest_effect, plan=False)
        verdicts = [decide(replace(r, underpowered=None), alpha=alpha,
                           check_paper_magnitude=check_paper_magnitude).verdict for r in judged]
        outcomes = {r.name: outcome(v) for r, v in zip(judged, verdicts)}
        outcomes.update({name: outcome(majority_verdict([verdicts[i] for i in members])[0])
                         for name, members in groups.items()})
        for name, key in outcomes.items():
            shares[name][key] = shares[name].get(key, 0.0) + 1.0 / draws
    return shares


def mixed_claims(seeds: int):
    """Claims of every direction on random data over ``seeds`` seeds: effects from none to clear, some seeds
    missing on one side, a constant difference, a cell with one seed, majority members, a resolution flag, a
    paper magnitude to compare, three Holm families."""
    rng = np.random.default_rng(7)
    base = {s: 90 + rng.normal(0, 0.5) for s in range(seeds)}
    values, claims = {}, []
    directions = ["greater", "equivalent", "not_better", "less_variable", "cheaper"]
    for i in range(40):
        direction = directions[i % len(directions)]
        shift, noise = rng.choice([0.0, 0.2, 0.5, 1.0, -0.7]), rng.choice([0.05, 0.3, 0.8])
        a = {s: v + shift + rng.normal(0, noise) for s, v in base.items()}
        if i % 7 == 3:
            a = {s: v for s, v in a.items() if s % 3}  # seeds missing on A's side
        paper = float(rng.choice([1.5, 0.3, -0.2])) if direction == "greater" else None
        claims.append(Claim(f"c{i}", "t", "g", f"A{i}", "B", direction, 0.6 if direction == "equivalent" else None,
                            f"f{i % 3}", "", part_of="most" if i in (0, 5, 10, 15, 20) else None, model="m",
                            paper_effect=paper, paper_setting=i % 4 != 1))
        values[(claims[-1].values_key, f"A{i}")] = a
    claims += [Claim("const", "t", "g", "Const", "B", "greater", None, "f0", "", model="m", paper_effect=0.2),
               Claim("one", "t", "g", "One", "B", "equivalent", 1.0, "f1", "", model="m")]
    values[("t · g", "Const")] = {s: v + 0.25 for s, v in base.items()}
    values[("t · g", "One")] = {0: 91.0}
    values.update({(c.values_key, "B"): base for c in claims})
    flags = {"c2": [Flag("resolution", "one image", "g", "t · g", "A2", "B")],
             "c5": [Flag("resolution", "one image", "g", "t · g", "A5", "B")]}
    return claims, values, flags


def same_shares(seeds: int, draws: int, **options) -> dict:
    claims, values, flags = mixed_claims(seeds)
    results = with_majorities(evaluate_claims(claims, values, flags=flags))
    fast = verdict_distributions(claims, values, results, draws=draws, **options)
    slow = reference_distributions(claims, values, results, draws=draws, **options)
    assert fast == slow  # every share, float for float
    assert list(fast) == list(slow) and all(list(fast[k]) == list(slow[k]) for k in fast)
    return fast


def test_all_draws_at_once_give_the_same_shares_as_one_draw_at_a_time():
    shares = same_shares(5, 100)
    # the inputs reach every outcome and claims whose outcome varies from draw to draw: the test can fail
    assert {key for claim in shares.values() for key in claim} == \
        {"replicated", "contradicted", "smaller than reported", "open", "withheld (test-set resolution)"}
    assert sum(len(claim) > 1 for claim in shares.values()) >= 10


@pytest.mark.slow
def test_the_same_shares_with_more_seeds_and_without_the_paper_magnitudes():
    same_shares(11, 200)  # 11: numpy sums eight or more numbers pairwise, fewer in a row
    unchecked = same_shares(5, 200, check_paper_magnitude=False)
    assert not any("smaller than reported" in claim for claim in unchecked.values())


def test_holm_over_rows_is_holm_of_each_row():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.1, size=(200, 9))
    p[rng.uniform(size=p.shape) < 0.2] = math.nan
    p[:, 4] = p[:, 5]  # ties: sorted by position
    adjusted, m = holm_rows(p)
    for row, got, size in zip(p, adjusted, m):
        np.testing.assert_array_equal(got, holm(list(row)))
        assert size == sum(not math.isnan(x) for x in row)
