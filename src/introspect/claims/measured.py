"""Cost claims (direction ``cheaper``): "compared to the computationally expensive teacher model in KD, the extra
cost brought by our learning procedure is much less" (Sec. 4). What a method costs is measured, not estimated:
the wall time each run recorded (``metrics.json``, ``wall_time_seconds``) of everything it took to produce one
model of one seed: its own run, its LE warm-up, and its teacher with the teacher's own teacher (TAKD's chain).
A teacher shared by every seed is counted in full for each seed: it is what one more KD model needs that an LE
model does not.

"A's extra cost over the baseline is less than B's" is "A's cost is less than B's" (the baseline's cost is
subtracted from both sides of the paired difference). The engine judges it as A > B on the costs negated and in
percent of B's mean cost, so the effect reads "A saves this percentage of B's cost", paired by seed.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ..config.claim import Claim
from ..plan.views import Cell, ClaimsSpec
from ..runs.loading import read_run
from ..runs.record import ResultsLayout


def _seconds(layout: ResultsLayout, run_id: str | None, cache: dict[str, float | None]) -> float | None:
    if not run_id:
        return 0.0
    if run_id not in cache:
        files = layout.run(run_id)
        value = read_run(layout, run_id).metrics.get("wall_time_seconds") if files.is_finished() else None
        cache[run_id] = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
    return cache[run_id]


def cell_costs(cell: Cell, spec: ClaimsSpec, layout: ResultsLayout, cache: dict[str, float | None]
               ) -> dict[int, float]:
    """Seed -> measured seconds of one model of the cell (its run, warm-up and teacher chain); seeds with any
    part unmeasured are left out."""
    out = {}
    teachers = cell.teacher_run_ids or [None] * len(cell.run_ids)
    for seed, run_id, teacher in zip(cell.seeds, cell.run_ids, teachers):
        parts = [run_id, spec.warmup_of.get(run_id)]
        while teacher:
            parts.append(teacher)
            teacher = spec.teacher_of.get(teacher)
        seconds = [_seconds(layout, r, cache) for r in parts]
        if all(s is not None for s in seconds):
            out[seed] = math.fsum(seconds)
    return out


def cost_values(spec: ClaimsSpec, claims: Sequence[Claim]) -> dict[tuple[str, str], dict[int, float]]:
    """(its values key, method) -> {seed: −cost in percent of B's mean cost} for every ``cheaper`` claim."""
    layout, cache, out = spec.view_layout, {}, {}
    for claim in (c for c in claims if c.direction == "cheaper"):
        cells = {c.method: c for c in spec.cells.get(claim.view, []) if c.group == claim.group}
        a, b = (cell_costs(cells[m], spec, layout, cache) for m in (claim.method_a, claim.method_b))
        scale = statistics.fmean(b.values()) if b else math.nan
        if not (math.isfinite(scale) and scale > 0):
            continue
        for method, costs in ((claim.method_a, a), (claim.method_b, b)):
            out[(claim.values_key, method)] = {s: -100.0 * v / scale for s, v in costs.items()}
    return out
