"""The claims of the shipped configs (the shared catalogue introspect/claims/catalogues/paper.yaml and each
config's own):
every claim names a table (or accuracy figure), a group and two methods that exist in its config, and agrees with
the paper's own numbers in reported_results.csv.

Reads the YAML and the CSV directly (no plan): the cross-references are checked here by plain lookups.
"""
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from introspect.claims.catalogue import catalogue_path, config_claims
from introspect.config.model import load_config
from introspect.config.validate import validate_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
CONFIGS = ["config.yaml", "paper.yaml", "smoke.yaml", "mnist5k.yaml"]
KEYS = {"name", "table", "group", "a", "b", "direction", "margin", "family", "text", "part_of", "pairs"}
NO_PAPER_NUMBER = "no paper number"
PAPER_DISAGREES = "paper's own Table"  # a claim whose words the paper's own table contradicts says so


def load(name: str) -> dict:
    config = load_config(CONFIG_DIR / name)  # its base (extends) resolved
    applying = {c.name for c in validate_config(config).claims}  # the catalogue's that apply, and its own
    config["claims"] = [{k: v for k, v in c.items() if k != "from_catalogue"} for c in config_claims(config)
                        if c["name"] in applying]
    return config


def view(config: dict, claim: dict) -> dict:
    """The table, or the figure of kind `accuracy`, the claim refers to."""
    tables, figures = config.get("tables", {}), config.get("figures", {})
    if claim["table"] in tables:
        return tables[claim["table"]]
    figure = figures.get(claim["table"])
    assert figure is not None and figure.get("kind") == "accuracy", \
        f"{claim['name']}: {claim['table']!r} is neither a table nor an accuracy figure"
    return figure


def group_of(table: dict, label: str) -> dict:
    groups = {g["label"]: g for g in table["groups"]}
    assert label in groups, f"group {label!r} not in {sorted(groups)}"
    return groups[label]


def paper_accuracy(reported: pd.DataFrame, table: dict, group: dict, method: str) -> float | None:
    """The paper's number for one cell in accuracy %, from the LE paper's own rows (not the quoted other
    implementations of Table 3); None when the paper has none."""
    if "paper_table" not in table:
        return None
    dataset = group.get("paper_dataset", table.get("paper_dataset"))
    rows = reported[(reported.table == table["paper_table"]) & (reported.dataset == dataset)
                    & (reported.model == group["model"]) & (reported.method == method)
                    & reported.source.str.startswith("LE paper")]
    if rows.empty:
        return None
    assert len(rows) == 1, f"several paper rows for {method} on {group['model']}: {rows.source.tolist()}"
    row = rows.iloc[0]
    return float(row["mean"]) if row.metric == "test_acc" else 100.0 - float(row["mean"])


@pytest.fixture(scope="module")
def reported() -> pd.DataFrame:
    return pd.read_csv(CONFIG_DIR / "reported_results.csv")


@pytest.mark.parametrize("name", CONFIGS)
def test_claims_refer_to_what_the_config_has(name):
    config = load(name)
    claims = config.get("claims")
    assert isinstance(claims, list) and claims, f"{name}: no claims"
    names = [c["name"] for c in claims]
    assert len(names) == len(set(names)), f"duplicate names: {sorted({n for n in names if names.count(n) > 1})}"
    for claim in claims:
        where = f"{name}: {claim.get('name')}"
        assert set(claim) <= KEYS, f"{where}: unknown keys {set(claim) - KEYS}"
        assert re.fullmatch(r"[A-Za-z0-9_.+-]+", claim["name"]), where
        if claim["direction"] == "similar_pairs":  # a class-similarity figure's panel of its model and method
            figure = config["figures"][claim["table"]]
            assert figure["kind"] == "class_similarity" and claim["pairs"], where
            assert any(p["model"] == claim["group"].lower() and p["method"] == claim["a"] for p in figure["panels"])
            continue
        table = view(config, claim)
        group = group_of(table, claim["group"])
        for side in ("a", "b"):
            method = claim[side]
            assert method in table["methods"], f"{where}: {side} = {method!r} is not in the methods of {claim['table']}"
            assert method not in group.get("exclude", []), f"{where}: {method!r} is excluded from {claim['group']}"
        assert claim["a"] != claim["b"], where
        assert claim["direction"] in ("greater", "equivalent", "not_better", "less_variable", "cheaper"), where
        assert "part_of" not in claim or claim["direction"] == "greater", f"{where}: a majority's member is A > B"
        if claim["direction"] == "equivalent":
            assert isinstance(claim.get("margin"), (int, float)) and claim["margin"] > 0, f"{where}: needs a margin > 0"
        else:
            assert "margin" not in claim, f"{where}: a margin only belongs to an equivalent claim"
        assert isinstance(claim["family"], str) and claim["family"], where
        assert isinstance(claim["text"], str) and claim["text"], where


@pytest.mark.parametrize("name", CONFIGS)
def test_claims_agree_with_the_papers_numbers(name, reported):
    """Where the paper prints both cells, its own difference has the claimed sign (greater) or lies inside the
    margin (equivalent), unless the claim's text names the disagreement; where it prints none, the text says so."""
    config = load(name)
    for claim in config["claims"]:
        where = f"{name}: {claim['name']}"
        if claim["direction"] == "similar_pairs":  # about a figure's class pairs: no accuracies to compare
            continue
        table = view(config, claim)
        group = group_of(table, claim["group"])
        a, b = (paper_accuracy(reported, table, group, claim[side]) for side in ("a", "b"))
        if a is None or b is None:
            assert NO_PAPER_NUMBER in claim["text"], f"{where}: the paper has no number for it; say so in its text"
            continue
        assert NO_PAPER_NUMBER not in claim["text"], f"{where}: the paper has numbers ({a} vs {b})"
        effect = a - b
        if claim["direction"] in ("not_better", "less_variable", "cheaper"):  # no sign or margin a table effect breaks
            continue
        if claim["direction"] == "greater":
            assert (effect > 0) != (PAPER_DISAGREES in claim["text"]), (
                f"{where}: the paper's effect is {effect:+.2f} pp")
        else:
            assert abs(effect) < claim["margin"], f"{where}: the paper's effect {effect:+.2f} pp is outside the margin"


def test_the_paper_config_makes_the_default_configs_claims():
    """config.yaml's tables and figures are a subset of paper.yaml's (on other data; some groups cut for CPU
    time), so its claims are the paper config's claims about the groups it keeps."""
    default, paper = load("config.yaml")["claims"], load("paper.yaml")["claims"]
    assert default and all(claim in paper for claim in default)


def test_every_table_and_figure3_has_claims_in_the_full_configs():
    for name in ("config.yaml", "paper.yaml"):
        config = load(name)
        claimed = {c["table"] for c in config["claims"]}
        assert claimed == set(config["tables"]) | {"figure2", "figure3"}, name


def test_the_paper_number_lookup_converts_table3_error_to_accuracy(reported):
    """LE(Grad) vs CP on the MLP: the paper's "Ours" row is 1.10 vs 1.18 % error, so +0.08 pp of accuracy; the
    quoted Pereyra et al. row (1.17) must not be taken."""
    table = load("config.yaml")["tables"]["table3"]
    group = group_of(table, "MLP1024")
    effect = paper_accuracy(reported, table, group, "LE(Grad)") - paper_accuracy(reported, table, group, "CP")
    assert math.isclose(effect, 1.18 - 1.10, abs_tol=1e-9)


def catalogue() -> dict:
    return {c["name"]: c for c in yaml.safe_load((catalogue_path("paper")).read_text())}


def test_no_quotation_is_written_twice():
    texts = list(yaml.safe_load((catalogue_path("paper")).read_text()))
    for name in [*CONFIGS, "base.yaml"]:
        texts += yaml.safe_load((CONFIG_DIR / name).read_text()).get("claims", [])
    # a sentence may serve several claims (one per group or pair), but each claim is written once, in one file
    names = [c["name"] for c in texts]
    assert len(names) == len(set(names))
    for name in ("base.yaml", "config.yaml", "paper.yaml", "mnist5k.yaml"):
        own = yaml.safe_load((CONFIG_DIR / name).read_text())
        assert "claims" not in own, f"{name}: its claims come from the catalogue"


def test_the_claims_the_paper_makes_as_it_makes_them(reported):
    claims = catalogue()
    # Table 5, ResNet14: "comparable to the best method" is LE ≈ FSP+KD (the best there); LE vs KD is the +0.07 pp
    # superiority of the paper's table; the other equivalences would be inferred and are not claimed
    kd = claims["t5_le_gradcam_gt_kd_resnet14"]
    assert kd["direction"] == "greater" and "+0.07 pp" in kd["text"] and "outperforms most" in kd["text"]
    best = claims["t5_le_gradcam_equiv_fsp_kd_resnet14"]
    assert best["direction"] == "equivalent" and "comparable to the best method" in best["text"]
    assert not [n for n in claims if n.startswith("t5_le_gradcam_equiv_") and "fsp_kd_resnet14" not in n]
    # Table 5, ResNet8: "outperforms most of the distillation methods" is one majority claim of five members
    members = [c for c in claims.values() if c.get("part_of") == "t5_le_gradcam_outperforms_most_resnet8"]
    assert sorted(c["b"] for c in members) == ["AT+KD", "FSP+KD", "Hint", "KD", "TAKD"]
    assert all(c["group"] == "ResNet8" and "outperforms most of the distillation methods" in c["text"] for c in members)
    # Table 3's caption: "our LE achieves the best with tiny variance"
    variance = claims["t3_le_grad_less_variable_ce_mlp1024"]
    assert variance["direction"] == "less_variable" and "tiny variance" in variance["text"]
    # Figure 2(b)'s class pairs, and Sec. 4's cost against KD's teacher
    pairs = claims["f2_similar_pairs_mlp1024"]
    assert pairs["pairs"] == [["0", "6"], ["1", "7"], ["3", "5"], ["4", "9"]]
    assert "{(0,6),(1,7),(3,5),(4,9)}" in pairs["text"]
    cost = claims["t5_le_gradcam_cheaper_than_kd_resnet8"]
    assert cost["direction"] == "cheaper"
    assert "the extra cost brought by our learning procedure is much less" in cost["text"]
    for group in ("resnet14", "resnet8"):
        ls = claims[f"t6_le_permut_gt_ls_{group}"]
        assert (ls["a"], ls["b"], ls["direction"]) == ("LE-Permut", "LS", "greater") and "Label Smoothing" in ls["text"]
    assert PAPER_DISAGREES in claims["t4_ban_gt_ce_resnet8"]["text"]
    assert "ResNet8 networks" not in claims["t4_ban_gt_ce_resnet14"]["text"]
    for group in ("cnn8", "cnn6"):
        for other in ("permut", "random"):
            confidence = claims[f"t1_cwtm_not_better_cwtm_{other}_{group}"]
            assert confidence["direction"] == "not_better" and "margin" not in confidence
            assert "not one of the effective components" in confidence["text"]
    paper = load("paper.yaml")
    assert {c["name"] for c in paper["claims"]} == set(claims)  # the paper config tests every catalogue claim
