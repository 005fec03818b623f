"""The numbers behind Figures 1-3, against independent computations, and the files the CLI writes."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from introspect.analysis.figures import class_similarity, map_style, mean_class_distance, scaled_map
from introspect.analysis.numbers import summarise
from introspect.cli import main
from introspect.explain import explain
from introspect.models import build_model
from introspect.runs.record import ResultsLayout, label_slug

REPORTED = Path(__file__).resolve().parents[1] / "config" / "reported_results.csv"


def test_class_similarity_is_the_cosine_of_every_pair_of_class_maps(seeded):
    maps = torch.rand(3, 4, 5, 5, generator=seeded)
    sims = class_similarity(maps)
    assert sims.shape == (3, 4, 4)
    for b in range(3):
        for i in range(4):
            for j in range(4):
                expected = F.cosine_similarity(maps[b, i].flatten(), maps[b, j].flatten(), dim=0)
                torch.testing.assert_close(sims[b, i, j], expected)


def test_mean_class_distance_averages_over_samples_and_batches(seeded):
    torch.manual_seed(0)
    model = build_model("mlp1024", 10, (1, 8, 8)).eval()
    x = torch.randn(7, 1, 8, 8, generator=seeded)
    distance = mean_class_distance(model, x, "grad_input", batch_size=3)  # batches of 3, 3 and 1
    expected = (1 - class_similarity(explain(model, x, "grad_input"))).mean(dim=0)
    torch.testing.assert_close(distance, expected)
    torch.testing.assert_close(distance, distance.T)
    torch.testing.assert_close(distance.diagonal(), torch.zeros(10), atol=1e-5, rtol=0)


def test_the_seed_summary_matches_scipys_one_sample_t_interval():
    values = [88.1, 88.9, 87.6, 88.4]
    summary = summarise(values)
    expected = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert summary.mean == pytest.approx(sum(values) / 4)
    assert (summary.low, summary.high) == pytest.approx((expected.low, expected.high))
    assert math.isnan(summarise([88.0]).low) and math.isnan(summarise([88.0]).high)


def accuracy_runs(results_dir: Path) -> dict:
    values = {"LE(Grad)": [97.0, 97.4, 96.9], "LE(Grad-CAM)": [97.8, 98.0, 98.3]}
    layout = ResultsLayout(results_dir)
    cells = []
    for method, accs in values.items():
        ids = []
        for seed, acc in enumerate(accs):
            run_id = f"resnet8/{label_slug(method)}/seed{seed}"
            files = layout.run(run_id)
            files.directory.mkdir(parents=True)
            files.metrics.write_text(json.dumps({"seed": seed, "test_acc_final": acc, "run_id": run_id,
                                                 "spec": {"run_id": run_id}}))
            ids.append(run_id)
        cells.append({"group": "ResNet8", "method": method, "model": "resnet8", "paper_dataset": "cifar10",
                      "run_ids": ids, "seeds": [0, 1, 2]})
    return {"name": "figure3", "kind": "accuracy", "paper_figure": 3, "title": "LE explainers", "images": 3,
            "results_dir": str(results_dir), "panels": [], "cells": cells}, values


def test_accuracy_figure_writes_every_file_the_cli_help_promises(tmp_path, capsys):
    spec, values = accuracy_runs(tmp_path)
    with pytest.raises(SystemExit):
        main(["figure", "--help"])
    promised = re.findall(r"NAME(\.\w+)", capsys.readouterr().out.replace("NAME.png, NAME.pdf and NAME.csv",
                                                                             "NAME.png NAME.pdf NAME.csv"))
    assert set(promised) == {".png", ".pdf", ".csv"}
    (tmp_path / "figure3.json").write_text(json.dumps(spec))
    assert main(["figure", "--spec", str(tmp_path / "figure3.json"), "--reported", str(REPORTED)]) == 0
    layout = ResultsLayout(tmp_path)
    for suffix in promised:
        assert layout.figure("figure3", suffix[1:]).stat().st_size > 0
    assert layout.figure("figure3", "png").read_bytes()[:4] == b"\x89PNG"
    assert layout.figure("figure3", "pdf").read_bytes()[:5] == b"%PDF-"

    table = pd.read_csv(layout.figure("figure3", "csv")).set_index("method")
    reported = pd.read_csv(REPORTED)
    for method, accs in values.items():
        interval = stats.t.interval(0.95, df=len(accs) - 1, loc=np.mean(accs), scale=stats.sem(accs))
        assert table.loc[method, ["ci95_low", "ci95_high"]].tolist() == pytest.approx(interval, abs=1e-4)
        assert table.loc[method, "n"] == 3
        paper = reported[(reported.model == "resnet8") & (reported.method == method) & (reported.dataset == "cifar10")]
        assert table.loc[method, "paper_mean"] == paper["mean"].iloc[0]  # LE(Grad): Table 6, LE(Grad-CAM): Table 2
        assert table.loc[method, "paper_source"].startswith("LE paper Table")


def test_explanation_maps_keep_zero_and_sign_and_pick_a_diverging_map_when_signed():
    signed = torch.tensor([[[-2.0, 0.0], [1.0, 0.5]]])
    scaled = scaled_map(signed, 2)
    expected = [[-1.0, 0.0], [0.5, 0.25]]  # divided by max |value| = 2, channels summed (one here)
    assert scaled.tolist() == expected
    style = map_style(signed)["imshow"]
    assert style["cmap"] == "RdBu_r" and style["vmin"] == -style["vmax"]
    unsigned = map_style(signed.clamp_min(0))["imshow"]
    assert unsigned["cmap"] == "viridis" and unsigned["vmin"] == 0
    assert scaled_map(torch.zeros(1, 3, 3), 6).shape == (6, 6) and not scaled_map(torch.zeros(3, 3), 3).any()
