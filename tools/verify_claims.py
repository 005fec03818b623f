"""Recompute every claim's power figures in a results directory's claims.csv by Monte Carlo, independently of
introspect (numpy and scipy's t and chi-square quantiles only): the corrected level alpha / m (m: the claims of
the family whose own test has a p-value), the MDE of the claim's own test at it (80% power), and seeds_needed
and paper_seeds_needed for the open claims.

How: a paired t-test of n differences depends on the data only through the sample mean and sd, so each draw is
a standard normal z and a chi-square v with n - 1 degrees of freedom; the test's statistics at a true
difference d (in sd units) are (d + z / sqrt(n)) / sqrt(v / (n - 1) / n) and its shifts by the margin. The same
draws serve every d (common random numbers), so the simulated power is a step function of d whose 80% point
is found by bisection: that is the simulated MDE. Its Monte Carlo standard error is the power's,
sqrt(0.8 * 0.2 / draws), divided by the slope of the power curve there; with 200,000 draws it is a few tenths
of a percent of the MDE at most, and the check requires agreement within 1%. A seed count n is confirmed when the
simulated power at n is at least 0.8 and at n - 1 below it, each allowing three standard errors.

    python tools/verify_claims.py results/default/claims.csv

Prints one line per disagreement and the largest relative MDE difference; exits 1 if any check fails.
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd
from scipy import stats

DRAWS = 200_000
POWER = 0.8
TOLERANCE = 0.01  # relative, on the MDE
OPEN = ("inconclusive", "inconclusive (underpowered)")
TWO_SIDED = ("greater", "cheaper")  # claims whose own test is the two-sided paired t (of accuracies or costs)


class Simulated:
    """Draws of (z, v) for n differences, and the power of each test as a function of the true difference."""

    def __init__(self, n: int, seed: int, draws: int = DRAWS):
        rng = np.random.default_rng(seed)
        self.n = n
        self.z = rng.standard_normal(draws)
        self.se = np.sqrt(rng.chisquare(n - 1, draws) / (n - 1) / n)  # the sample's se of the mean, in sd

    def power(self, direction: str, alpha: float, d: float, margin: float = 0.0) -> float:
        mean = d + self.z / math.sqrt(self.n)
        if direction in TWO_SIDED:  # two-sided paired t
            return float(np.mean(np.abs(mean / self.se) > stats.t.isf(alpha / 2, self.n - 1)))
        critical = stats.t.isf(alpha, self.n - 1)
        if direction == "not_better":  # one-sided: power to reject at a true effect d (symmetric)
            return float(np.mean(mean / self.se > critical))
        if direction != "equivalent":
            raise ValueError(f"no power check for {direction} claims")
        return float(np.mean(((mean + margin) / self.se > critical) & ((mean - margin) / self.se < -critical)))

    def mde(self, direction: str, alpha: float, difference: float = 0.0) -> tuple[float, float]:
        """The simulated MDE (TOST: the margin, at the true ``difference``) and its Monte Carlo standard error."""
        def power(x: float) -> float:
            if direction == "equivalent":
                return self.power(direction, alpha, difference, margin=x)
            return self.power(direction, alpha, x)

        low, high = (difference, difference + 1.0) if direction == "equivalent" else (0.0, 1.0)
        while power(high) < POWER:
            low, high = high, 2 * high
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (low, middle) if power(middle) >= POWER else (middle, high)
        step = 0.02 * high
        slope = (power(high + step) - power(high - step)) / (2 * step)
        return high, math.sqrt(POWER * (1 - POWER) / len(self.z)) / max(slope, 1e-12)


def check_seeds(label: str, row, n: int, sd: float, alpha: float, seed: int) -> str | None:
    """None if n is the fewest paired seeds with 80% power by simulation (within three standard errors)."""
    tolerance = 3 * math.sqrt(POWER * (1 - POWER) / DRAWS)
    d = row.target / sd
    difference, margin = (abs(row.planned_difference) / sd, row.margin / sd) if row.direction == "equivalent" \
        else (d, 0.0)
    at = Simulated(n, seed).power(row.direction, alpha, difference, margin)
    below = Simulated(n - 1, seed + 1).power(row.direction, alpha, difference, margin) if n > 2 else 0.0
    if at < POWER - tolerance or below > POWER + tolerance:
        return f"{row.name}: {label} {n}: simulated power {at:.4f} at {n}, {below:.4f} at {n - 1}"
    return None


def main(path: str) -> int:
    claims = pd.read_csv(path)
    testable = claims[claims.p_test.notna()].groupby("family").size()
    worst, bad, checked = 0.0, [], 0
    for i, row in enumerate(claims.itertuples()):
        if math.isnan(row.p_test):
            continue
        alpha = 0.05 / testable[row.family]
        if abs(row.alpha_family - alpha) > 1e-12 * alpha:
            bad.append(f"{row.name}: alpha_family {row.alpha_family} vs {alpha}")
        if not math.isnan(row.mde):
            difference = abs(row.planned_difference) / row.sd_diff if row.direction == "equivalent" else 0.0
            mde, error = Simulated(int(row.n_pairs), 1000 + i).mde(row.direction, alpha, difference)
            relative = abs(row.mde - mde * row.sd_diff) / (mde * row.sd_diff)
            worst = max(worst, relative)
            checked += 1
            if relative > TOLERANCE:
                bad.append(f"{row.name}: MDE {row.mde:.4f} vs simulated {mde * row.sd_diff:.4f} "
                           f"(± {error * row.sd_diff:.4f})")
        if row.verdict in OPEN:
            for label, sd in (("seeds_needed", row.sd_diff), ("paper_seeds_needed", row.paper_sd)):
                n = getattr(row, label)
                if not (isinstance(n, (int, float)) and math.isfinite(n) and math.isfinite(sd)):
                    continue
                problem = check_seeds(label, row, int(n), sd, alpha, 5000 + 7 * i)
                checked += 1
                bad.append(problem) if problem else None
    print(f"{len(claims)} claims, {checked} MDEs and seed counts simulated ({DRAWS} draws each); largest relative "
          f"MDE difference {worst:.2%}")
    print("\n".join(bad) if bad else "every alpha / m, MDE and seed count agrees with the simulation")
    return 1 if bad else 0


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("claims_csv", nargs="?", default="results/default/claims.csv",
                        help="a claims.csv written by the claims job (default: %(default)s)")
    path = parser.parse_args(argv).claims_csv
    try:
        return main(path)
    except (OSError, ValueError, KeyError, AttributeError) as error:  # a missing or foreign file: one line
        print(f"verify_claims: {path}: cannot check it ({type(error).__name__}: {error})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
