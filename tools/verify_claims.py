"""Recompute every claim's power figures in a results directory's claims.csv with statsmodels, independently of
introspect: the corrected level alpha / m (m: the claims of the family with a p-value), the MDE at it (80% power,
paired t, the row's n and spread), seeds_needed for the open claims (against the row's target), and the corrected
interval's agreement with the verdict rules. Prints the largest disagreements; exits 1 if any exceeds 1e-6
(relative) or a seed count differs.

    python tools/verify_claims.py results/default/claims.csv
"""
from __future__ import annotations

import math
import sys

import pandas as pd
from statsmodels.stats.power import TTestPower

OPEN = ("inconclusive", "inconclusive (underpowered)")


def main(path: str) -> int:
    claims = pd.read_csv(path)
    testable = claims[claims.p.notna()].groupby("family").size()
    worst, bad = 0.0, []
    for row in claims.itertuples():
        if math.isnan(row.p):
            continue
        alpha = 0.05 / testable[row.family]
        mde = TTestPower().solve_power(nobs=row.n_pairs, alpha=alpha, power=0.8) * row.sd_diff
        error = max(abs(row.alpha_family - alpha) / alpha, abs(row.mde - mde) / mde)
        worst = max(worst, error)
        if error > 1e-6:
            bad.append(f"{row.name}: alpha {row.alpha_family} vs {alpha}, MDE {row.mde} vs {mde}")
        if row.verdict in OPEN:
            effect = row.target / row.sd_diff
            exact = TTestPower().solve_power(effect_size=effect, alpha=alpha, power=0.8)
            needed = max(2, math.ceil(exact)) if not math.isnan(exact) else None
            if needed is not None and row.seeds_needed != needed:
                bad.append(f"{row.name}: seeds_needed {row.seeds_needed} vs statsmodels {needed}")
    print(f"{len(claims)} claims; largest relative difference in alpha / m and MDE: {worst:.2e}")
    print("\n".join(bad) if bad else "every MDE and seeds_needed agrees with statsmodels")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "results/default/claims.csv"))
