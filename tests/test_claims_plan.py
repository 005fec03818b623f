"""The planning side of claims: the shared catalogue, per-cell extra seeds (claims_next.yaml) and the GPU-hours
a claim's seeds cost."""
import copy
from pathlib import Path

import pytest
import yaml

from introspect.claims.costs import attach_claim_costs
from introspect.config.model import ConfigError
from introspect.plan.build import build_plan, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke():
    config = load_config(ROOT / "config" / "smoke.yaml")
    return config


def test_extra_seeds_add_runs_to_one_cell_only(smoke):
    base = build_plan(smoke)
    config = {**copy.deepcopy(smoke), "extra_seeds": {"table2": {"ResNet8": {"LS": [7, 8]}}}}
    plan = build_plan(config)
    cells = {(c.group, c.method): c for c in plan.tables["table2"].cells}
    assert cells[("ResNet8", "LS")].seeds == [0, 1, 7, 8] and cells[("ResNet8", "CE")].seeds == [0, 1]
    added = set(plan.runs) - set(base.runs)
    assert len(added) == 2 and all("/ls-" in r and r.endswith(("seed7", "seed8")) for r in added)
    assert plan.claims.settings.seeds == (0, 1)  # the overlay's seeds are extra, not the config's
    assert [c.seeds for c in plan.claims.cells["table2"] if c.method == "LS"] == [[0, 1, 7, 8]]


def test_extra_seeds_for_a_cell_the_config_lacks_are_rejected(smoke):
    config = {**copy.deepcopy(smoke), "extra_seeds": {"table2": {"ResNet8": {"Nope": [5]}}}}
    with pytest.raises(ConfigError, match=r"extra_seeds\.table2\.ResNet8\.Nope: no such cell"):
        build_plan(config)


def test_a_bad_catalogue_is_one_line_naming_the_file_and_claim(smoke, tmp_path):
    catalogue = yaml.safe_load((ROOT / "src" / "introspect" / "claims" / "catalogues" / "paper.yaml").read_text())
    catalogue[3]["direction"] = "less"
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump(catalogue))
    config = copy.deepcopy(smoke)
    config["claim_settings"]["catalogue"] = str(tmp_path / "claims.yaml")
    with pytest.raises(ConfigError, match=r"claims\.yaml: claims\[3\]\.direction: 'less' is not one of"):
        build_plan(config)
    config["claim_settings"].update(catalogue="paper", only=["t9_nope"])
    with pytest.raises(ConfigError, match="claim_settings.only: t9_nope not in"):
        build_plan(config)


def test_a_catalogue_claim_applies_only_where_the_config_has_its_cells(smoke):
    config = copy.deepcopy(smoke)
    del config["claim_settings"]["only"]
    names = {c.name for c in build_plan(config).claims.claims}
    assert "t2_le_gradcam_gt_ce_resnet8" in names and "t2_le_gradcam_gt_ce_resnet14" not in names  # no ResNet14
    assert "t2_le_gradcam_gt_cp_resnet8" not in names  # smoke's table2 has no CP


def test_a_claims_seed_costs_its_two_cells_in_the_cost_config(smoke, monkeypatch):
    plan = attach_claim_costs(build_plan(smoke))
    hours = plan.claims.seed_gpu_hours
    # every claim between two cells is priced; a similar_pairs claim reads one trained model's figure, no seeds
    priced = {c.name for c in plan.claims.claims if c.direction != "similar_pairs"}
    assert set(hours) == priced and all(h > 0 for h in hours.values())
    config = copy.deepcopy(smoke)
    config["claim_settings"]["cost_config"] = str(ROOT / "config" / "paper.yaml")
    config["claim_settings"]["catalogue"] = str(ROOT / "src" / "introspect" / "claims" / "catalogues" / "paper.yaml")
    monkeypatch.chdir(ROOT)  # the paper config names its catalogue relative to the checkout
    paper_priced = attach_claim_costs(build_plan(config)).claims.seed_gpu_hours
    # the paper's 160-epoch budgets on a GPU: one seed of LE(Grad-CAM) and CE on ResNet8 costs more
    assert paper_priced["t2_le_gradcam_gt_ce_resnet8"] > hours["t2_le_gradcam_gt_ce_resnet8"]


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_peers_never_wrap_round_and_no_final_run_is_a_sweep_run(name):
    """BAN's peer of seed s is a CE run of seed s + 1000, never the CE cell's run of another seed; sweeps train
    at their seed + 100000, so no final cell's seed is a seed of its own sweep."""
    plan = build_plan(load_config(ROOT / "config" / name))
    cells = [c for view in [*plan.tables.values(), *plan.figures.values()] for c in view.cells]
    finals = {r for c in cells for r in c.run_ids}
    peers = 0
    for cell in (c for c in cells if len(set(c.teacher_run_ids)) > 1):
        for run_id, teacher in zip(cell.run_ids, cell.teacher_run_ids):
            assert teacher not in finals and plan.runs[teacher].seed == plan.runs[run_id].seed + 1000
            assert plan.runs[teacher].model == plan.runs[run_id].model and plan.runs[teacher].kind == "teacher"
            peers += 1
    assert peers >= len(plan.config.seeds)  # BAN on at least one model, every seed
    for cell in (c for c in cells if c.selection):
        swept = {plan.runs[r].seed for r in plan.selections[cell.selection].run_ids()}
        assert swept == {s + 100_000 for s in plan.config.sweeps.seeds} and not swept & set(cell.seeds)


def test_a_final_seed_at_a_sweep_seed_is_refused(smoke):
    config = {**copy.deepcopy(smoke), "seeds": [0, 100_000]}
    with pytest.raises(ConfigError, match=r"seed 100000 of .* is also a seed of its sweep"):
        build_plan(config)
