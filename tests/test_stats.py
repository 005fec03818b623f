import math

import numpy as np
import pytest
from scipy import stats

from introspect.analysis.stats import holm, paired_t, welch_t

A = {0: 91.2, 1: 91.0, 2: 91.3, 3: 91.25, 4: 91.1}
B = {0: 90.2, 1: 90.6, 2: 89.9, 3: 90.4, 4: 90.3}


def test_paired_t_matches_scipy_and_hand_ci():
    result = paired_t(A, B)
    ref = stats.ttest_rel(list(A.values()), list(B.values()))
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p == pytest.approx(ref.pvalue)
    diff = np.array([A[s] - B[s] for s in A])
    half = stats.t.ppf(0.975, 4) * diff.std(ddof=1) / math.sqrt(5)
    assert (result.ci_low, result.ci_high) == pytest.approx((diff.mean() - half, diff.mean() + half))
    assert result.effect_size == pytest.approx(diff.mean() / diff.std(ddof=1))


def test_paired_t_uses_only_shared_seeds():
    result = paired_t({**A, 9: 0.0}, B)
    assert result.n_a == 5


def test_welch_matches_scipy():
    result = welch_t(list(A.values()), list(B.values()))
    ref = stats.ttest_ind(list(A.values()), list(B.values()), equal_var=False)
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p == pytest.approx(ref.pvalue)
    assert result.ci_low < result.mean_diff < result.ci_high


def test_degenerate_inputs_give_nan_not_crashes():
    assert math.isnan(paired_t({0: 1.0}, {0: 2.0}).p)
    assert math.isnan(welch_t([1.0], [1.0, 2.0]).p)
    same = paired_t({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert same.p == 1.0


def test_holm_hand_example():
    # sorted p: 0.01 (x3), 0.02 (x2), 0.04 (x1) -> 0.03, 0.04, 0.04 ; NaN stays out of the family
    assert holm([0.04, 0.01, float("nan"), 0.02]) == pytest.approx([0.04, 0.03, float("nan"), 0.04], nan_ok=True)
    assert holm([0.5, 0.9]) == [1.0, 1.0]
