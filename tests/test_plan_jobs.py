"""The plan's runs as the workflow's jobs: sweep points and packs (introspect.plan.jobs)."""
from pathlib import Path

from introspect.config.model import load_config
from introspect.plan.build import build_plan
from introspect.plan.jobs import packs, sweep_points

ROOT = Path(__file__).resolve().parents[1]


def smoke_plan(tmp_path):
    return build_plan({**load_config(ROOT / "config" / "smoke.yaml"), "results_dir": str(tmp_path / "results")})


def test_sweep_points_are_the_runs_only_a_selection_reads(tmp_path):
    plan = smoke_plan(tmp_path)
    points = sweep_points(plan)
    # the smoke config sweeps Dropout's rate (ResNet8, MLP1024), BAN's temperature and e2KD's gamma: two points
    # each, on the one sweep seed (seeds of sweeps are offset by 100000: independent of the final runs)
    assert len(points) == len(plan.selections) * 2 == 8
    assert {r.split("/")[3].split("-")[0] for r in points} == {"dropout", "kd", "e2kd"}
    viewed = {r for t in plan.tables.values() for r in t.run_ids()}
    assert not points & viewed and all(r.endswith("/seed100000") for r in points)  # sweep seed 0, offset


def test_packs_group_k_runs_of_one_kind_and_keep_selected_runs_apart(tmp_path):
    plan = smoke_plan(tmp_path)
    assert packs(plan, 1) == {}
    grouped = packs(plan, 4)
    assert set(grouped) == set(plan.runs)
    members: dict[str, list[str]] = {}
    for run_id, pack in grouped.items():
        members.setdefault(pack, []).append(run_id)
    assert max(map(len, members.values())) == 4
    for pack, ids in members.items():
        kinds = {(plan.runs[r].kind, bool(plan.runs[r].selection)) for r in ids}
        assert len(kinds) == 1, pack  # one kind, and runs reading a selection apart from the sweep's runs
    assert packs(plan, 4) == grouped  # a cluster job's own Snakemake finds the same packs
