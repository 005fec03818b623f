"""What one more seed of a claim's two cells costs, in GPU-hours of the plan's own estimate
(:func:`introspect.cluster.resources.run_seconds`), priced in the config named by ``claim_settings.cost_config``
(the paper's, where the claims are about a smaller stand-in) or in the plan's own config. Priced in another
config, the seeds priced are those the paper's reported spread needs (``paper_seeds_needed``), not those a
stand-in's spread needs: a digits spread says nothing of CIFAR-10's.

Kept apart from the planner because the estimate lives in :mod:`introspect.cluster.resources`, which reads a plan:
the Snakefile (and ``introspect plan``) attach the costs to the claims spec once the plan is built."""
from __future__ import annotations

from dataclasses import replace

from ..cluster.resources import run_seconds
from ..config.model import load_config
from ..plan.build import Plan, build_plan
from ..plan.views import cell_key


def seed_gpu_hours(plan: Plan, cost_plan: Plan) -> dict[str, float]:
    """Claim name -> GPU-hours of one seed of both of its cells (their runs, warm-ups and per-seed teachers)
    in ``cost_plan``; claims whose cells ``cost_plan`` does not have are priced in ``plan``."""
    cells = cell_gpu_hours(plan, cost_plan)
    out = {}
    for claim in plan.claims.claims if plan.claims else []:
        keys = [cell_key(claim.view, claim.group, m) for m in (claim.method_a, claim.method_b)]
        if all(k in cells for k in keys):
            out[claim.name] = sum(cells[k] for k in keys)
    return out


def cell_gpu_hours(plan: Plan, cost_plan: Plan) -> dict[str, float]:
    """Cell -> GPU-hours of one seed of it in ``cost_plan`` (else ``plan``), for every cell a claim names: a
    total over claims counts each cell once (claims share cells)."""
    out = {}
    for claim in plan.claims.claims if plan.claims else []:
        for method in (claim.method_a, claim.method_b):
            for source in (cost_plan, plan):
                hours = _one_seed(source, claim.view, claim.group, (method,))
                if hours is not None:
                    out[cell_key(claim.view, claim.group, method)] = hours
                    break
    return out


def _one_seed(plan: Plan, view: str, group: str, methods: tuple[str, ...]) -> float | None:
    spec = plan.tables.get(view) or plan.figures.get(view)
    cells = [c for c in (spec.cells if spec else []) if c.group == group and c.method in methods]
    if len(cells) != len(methods):
        return None
    runs: set[str] = set()
    for cell in cells:
        run = plan.runs[cell.run_ids[0]]
        runs |= {cell.run_ids[0], *(r for r in (run.init_from,) if r)}
        if cell.teacher_run_ids and len(set(cell.teacher_run_ids)) > 1:  # a teacher per seed (BAN's peers)
            runs.add(cell.teacher_run_ids[0])
    return sum(run_seconds(plan, r) for r in runs) / 3600


def attach_claim_costs(plan: Plan) -> Plan:
    """The plan with ``claims.seed_gpu_hours`` filled in (see the module's docstring)."""
    if plan.claims is None:
        return plan
    path = plan.config.cost_config
    cost_plan = build_plan(load_config(path)) if path else plan
    elsewhere = cost_plan.config.name != plan.config.name
    plan.claims = replace(plan.claims, seed_gpu_hours=seed_gpu_hours(plan, cost_plan),
                          cell_gpu_hours=cell_gpu_hours(plan, cost_plan), priced_in_paper_config=elsewhere)
    return plan
