"""Majority claims: "A outperforms most of B1 ... Bk" (Table 5: "Our proposed algorithm outperforms most of the
distillation methods"). The paper does not say A beats each of them, so the claim is not k claims that must all
hold: its members are ordinary A > Bi claims (``Claim.part_of`` names the majority), judged and Holm-corrected as
such, and the majority claim's verdict follows from theirs:

- replicated    A is significantly better than more than half of them (at least k // 2 + 1 members replicated);
- contradicted  so many Bi are significantly better than A that a majority is out of reach;
- otherwise open: inconclusive, or underpowered when the members that are not underpowered cannot make a
  majority whatever their verdicts.

The majority row is counted in the verdict counts in its members' place (they stay listed, each naming it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..analysis.stats import NAN
from .engine import CONTRADICTED, INCONCLUSIVE, REPLICATED, UNDERPOWERED, ClaimResult

MAJORITY = "majority"


def majority_verdict(verdicts: Sequence[str]) -> tuple[str, str]:
    """The verdict of a majority claim from its members' verdicts, with the reason."""
    k = len(verdicts)
    need = k // 2 + 1
    won = sum(v == REPLICATED for v in verdicts)
    lost = sum(v == CONTRADICTED for v in verdicts)
    tally = f"A significantly better than {won} of {k}, significantly worse than {lost}; a majority needs {need}"
    if won >= need:
        return REPLICATED, tally
    if k - lost < need:
        return CONTRADICTED, tally + ", out of reach"
    if k - sum(v == UNDERPOWERED for v in verdicts) - lost < need:
        return UNDERPOWERED, tally + "; too many members are underpowered to make one"
    return INCONCLUSIVE, tally


def majority_rows(results: Sequence[ClaimResult]) -> list[ClaimResult]:
    """One row per majority claim named by ``results`` (in order of first appearance), from its members."""
    rows = []
    for name in dict.fromkeys(r.part_of for r in results if r.part_of):
        members = [r for r in results if r.part_of == name]
        verdict, reason = majority_verdict([m.verdict for m in members])
        first = members[0]
        rows.append(ClaimResult(
            name=name, family=first.family, model=first.model, dataset=first.dataset, method_a=first.method_a,
            method_b="most of " + ", ".join(m.method_b for m in members), direction=MAJORITY,
            paper_effect=NAN, margin=NAN, n_pairs=min(m.n_pairs for m in members),
            n_unpaired=max(m.n_unpaired for m in members), unpaired_seeds="", effect=NAN, ci_low=NAN, ci_high=NAN,
            sd_diff=NAN, t=NAN, df=NAN, p=NAN, test=f"majority of {len(members)} A > B claims", verdict=verdict,
            reason=f"{reason} ({', '.join(f'{m.method_b}: {m.verdict}' for m in members)})",
            paper_setting=first.paper_setting, text=first.text,
            flags=list(dict.fromkeys(f for m in members for f in m.flags))))
    return rows


def with_majorities(results: Sequence[ClaimResult]) -> list[ClaimResult]:
    """The results with each majority row placed after its last member."""
    rows = {r.name: r for r in majority_rows(results)}
    out = list(results)
    for name, row in rows.items():
        last = max(i for i, r in enumerate(out) if r.part_of == name)
        out.insert(last + 1, row)
    return out


def counted(results: Sequence[ClaimResult]) -> list[ClaimResult]:
    """The claims the verdict counts count: members of a majority claim count through it."""
    return [r for r in results if not r.part_of]


def members_noted(results: Sequence[ClaimResult]) -> list[ClaimResult]:
    """Members say which majority claim their verdict counts in."""
    return [replace(r, reason=f"{r.reason}; a member of {r.part_of}, whose verdict counts") if r.part_of else r
            for r in results]
