"""The paper's figures from trained runs (matplotlib, Agg backend; every plotted number also in a CSV).

- ``explanations`` (Figure 1): for a few test images, the explanation of every class and its cosine
  similarity to the ground-truth class's explanation.
- ``class_similarity`` (Figure 2): cosine distance between the explanations of every pair of classes,
  averaged over the test set.
- ``accuracy`` (Figure 3): test accuracy of runs (e.g. LE with each explainer): every seed, the mean
  with its 95% t confidence interval, and the paper's reported value where the paper prints one.

Colours: explanation maps use a diverging map centred at 0 when they have negative values, viridis
otherwise; one colour scale per quantity, each with an opaque colour bar and axis titles. Each figure is
written as PNG (the report) and PDF (vector).
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from ..io import atomic_write_bytes, atomic_write_text
from ..plan.views import Cell, FigureSpec
from ..runs.loading import read_run
from ..runs.record import ResultsLayout
from . import escape
from .numbers import summarise
from .reported import Reported, paper_row, read_reported


def draw_figure(spec: FigureSpec, *, metric: str = "test_acc_final", reported: Path | None = None,
                device: str = "cpu") -> None:
    """Write the figure's PNG, PDF and CSV where :class:`~introspect.runs.record.ResultsLayout` puts them.

    ``reported``: the CSV of the paper's numbers; the accuracy figure marks the paper's value of each
    (model, method) it has on the cells' ``paper_dataset``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on cluster nodes
    layout = spec.view_layout
    if spec.kind == "accuracy":
        figure, table = _accuracy_figure(spec, layout, metric, read_reported(reported) if reported else None)
    else:
        figure, table = {"explanations": _explanations_figure, "class_similarity": _similarity_figure}[spec.kind](
            spec, layout, device)
    save_figure(figure, layout.figure(spec.name, "png"), layout.figure(spec.name, "pdf"))
    atomic_write_text(layout.figure(spec.name, "csv"),
                      escape.csv_frame(table).to_csv(index=False, float_format="%.4f"))


def save_figure(figure, *paths: Path) -> None:
    """Write the figure to each path, in the format its suffix names (.png for the report, .pdf as
    vector graphics for papers), each atomically; the PDF carries no date, so reruns give equal files."""
    import matplotlib.pyplot as plt

    options = {".png": {"dpi": 150}, ".pdf": {"metadata": {"CreationDate": None}}}
    for path in paths:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=path.suffix[1:], **options[path.suffix])
        atomic_write_bytes(path, buffer.getvalue())
    plt.close(figure)


def class_similarity(explanations: Tensor) -> Tensor:
    """Cosine similarity between the explanations of every pair of classes: ``(batch, K, K)``."""
    flat = F.normalize(explanations.flatten(2).float(), dim=2, eps=1e-12)
    return flat @ flat.transpose(1, 2)


def mean_class_distance(model: torch.nn.Module, x: Tensor, explainer: str, batch_size: int = 250) -> Tensor:
    """Figure 2's matrix: 1 − cosine similarity of class explanations, averaged over the samples ``x``."""
    from ..explain import explain

    total = None
    for start in range(0, len(x), batch_size):
        sims = class_similarity(explain(model, x[start:start + batch_size], explainer)).sum(dim=0)
        total = sims if total is None else total + sims
    return 1.0 - total / len(x)


# ---------------------------------------------------------------- the three kinds

def _explanations_figure(spec: FigureSpec, layout: ResultsLayout, device: str):
    """One block per panel (its own title, class headers and colour bar, so no header of one panel reads as
    part of another): a row per test image, its input and every class's explanation, the cosine to the
    true class's explanation under each map."""
    import matplotlib.pyplot as plt

    from ..explain import explain

    n_images = spec.images
    loaded = [(panel, *load_run(layout, panel.run_id, device)) for panel in spec.panels]
    classes = max(data.num_classes for _, _, data in loaded)
    block = 1.3 * n_images + 0.75  # inches per panel: its rows, headers and title
    figure = plt.figure(figsize=(1.1 * (classes + 1) + 1.6, block * len(loaded) + 0.7), layout="constrained")
    blocks = figure.subfigures(len(loaded), 1, squeeze=False)[:, 0]
    records = []
    for sub, (panel, model, data) in zip(blocks, loaded):
        axes = sub.subplots(n_images, classes + 1, squeeze=False)
        index = one_image_per_class(data.test.y, n_images)
        x, y = data.test.x[index], data.test.y[index]
        maps = explain(model, x, panel.explainer)
        # (images, K): each class's explanation against the true class's
        sims = class_similarity(maps)[torch.arange(len(y), device=y.device), y].cpu()
        predicted = model(x).argmax(dim=1)
        style = map_style(maps)
        axes[0, 0].set_title("input", fontsize=7)
        for i in range(len(index)):
            row = axes[i]
            row[0].imshow(image_for_display(x[i]), cmap="gray")
            row[0].set_xlabel(escape.mathtext(f"true: {data.class_names[y[i]]}"), fontsize=7)
            for k in range(data.num_classes):
                image = row[k + 1].imshow(scaled_map(maps[i, k], x.shape[-1]), **style["imshow"])
                row[k + 1].set_xlabel(f"{sims[i, k]:.2f}", fontsize=7,
                                      fontweight="bold" if k == int(y[i]) else "normal")
                if i == 0:
                    row[k + 1].set_title(escape.mathtext(data.class_names[k]), fontsize=7)
                records.append({"panel": panel.label, "run_id": panel.run_id, "explainer": panel.explainer,
                                "test_index": int(index[i]), "label": data.class_names[y[i]],
                                "predicted": data.class_names[predicted[i]], "class": data.class_names[k],
                                "cosine_to_true_class": float(sims[i, k])})
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        sub.suptitle(escape.mathtext(panel.label), fontsize=8, fontweight="bold", x=0.01, ha="left")
        bar = sub.colorbar(image, ax=axes[:, 1:].ravel().tolist(), shrink=0.9, pad=0.01)
        bar.set_label(style["label"], fontsize=7)
        bar.ax.tick_params(labelsize=6)
    figure.suptitle(_title(spec) + "\n(under each map: its cosine similarity to the true class's explanation; "
                    "the true class's in bold)", fontsize=8)
    return figure, pd.DataFrame(records)


def _similarity_figure(spec: FigureSpec, layout: ResultsLayout, device: str):
    """One heat map per panel, all on one colour scale (0 to the largest distance of any panel) with one
    colour bar, so equal colours mean equal distances across panels."""
    import matplotlib.pyplot as plt

    panels = spec.panels
    figure, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels) + 1.0, 4.6), squeeze=False,
                                layout="constrained")
    computed = []
    for panel in panels:
        model, data = load_run(layout, panel.run_id, device)
        # a distance is unsigned: a sequential, perceptually uniform map from 0 up
        computed.append((panel, data, mean_class_distance(model, data.test.x, panel.explainer).cpu()))
    top = max(float(distance.max()) for _, _, distance in computed) or 1.0
    records = []
    for ax, (panel, data, distance) in zip(axes[0], computed):
        image = ax.imshow(distance.numpy(), cmap="viridis", vmin=0.0, vmax=top)
        names = [escape.mathtext(name) for name in data.class_names]
        ax.set_xticks(range(len(names)), names, rotation=60 if max(map(len, names)) > 2 else 0, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("class", fontsize=8)
        ax.set_ylabel("class", fontsize=8)
        ax.set_title(escape.mathtext(f"{panel.label}\nmean over {len(data.test)} test images"), fontsize=8)
        for a in range(len(names)):
            for b in range(len(names)):
                records.append({"panel": panel.label, "run_id": panel.run_id, "explainer": panel.explainer,
                                "class_a": data.class_names[a], "class_b": data.class_names[b],
                                "cosine_distance": float(distance[a, b])})
    bar = figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85, pad=0.02)
    bar.set_label("cosine distance (1 − cos) between the two classes' explanations", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    figure.suptitle(_title(spec), fontsize=9)
    return figure, pd.DataFrame(records)


def _accuracy_figure(spec: FigureSpec, layout: ResultsLayout, metric: str, reported: list[Reported] | None):
    import matplotlib.pyplot as plt

    runs = _accuracy_runs(spec, layout, metric)
    summary = _accuracy_summary(spec, runs, metric, reported)
    groups = list(dict.fromkeys(summary["group"]))
    methods = max(summary.groupby("group", sort=False).size())
    figure, axes = plt.subplots(1, len(groups), figsize=(1.0 * methods * len(groups) + 1.6 * len(groups) + 0.8, 4.0),
                                squeeze=False, layout="constrained")
    for ax, group in zip(axes[0], groups):
        _accuracy_panel(ax, summary[summary["group"] == group], runs[runs["group"] == group], metric)
    legend = {}  # label -> handle, over every panel (a panel may have no paper value)
    for ax in axes[0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    figure.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=len(legend), fontsize=7,
                  frameon=False)
    note = spec.note
    width = 38 * len(groups) + 20  # characters that fit above the panels at this font size
    figure.suptitle(_title(spec) + (f"\n{escape.mathtext(textwrap.fill(note, width))}" if note else ""), fontsize=8)
    return figure, summary


def _accuracy_runs(spec: FigureSpec, layout: ResultsLayout, metric: str) -> pd.DataFrame:
    records = []
    for cell in spec.cells:
        for run_id in cell.run_ids:
            run = read_run(layout, run_id)
            records.append({"group": cell.group, "method": cell.method, "run_id": run_id,
                            "seed": run.seed, metric: run.value(metric)})
    return pd.DataFrame(records)


def _accuracy_summary(spec: FigureSpec, runs: pd.DataFrame, metric: str,
                      reported: list[Reported] | None) -> pd.DataFrame:
    """Per (group, method): n, mean, std, the 95% t interval, the paper's value and where it is printed."""
    rows = []
    for cell in spec.cells:
        seeds = runs[(runs["group"] == cell.group) & (runs["method"] == cell.method)]
        summary = summarise(seeds[metric])
        paper_mean, paper_source = _paper_value(reported, cell)
        rows.append({"group": cell.group, "method": cell.method, "n": summary.n, "mean": summary.mean,
                     "std": summary.std, "ci95_low": summary.low, "ci95_high": summary.high,
                     "paper_mean": paper_mean, "paper_source": paper_source, "run_id": " ".join(seeds["run_id"])})
    return pd.DataFrame(rows)


def _paper_value(reported: list[Reported] | None, cell: Cell) -> tuple[float, str]:
    """The LE paper's test accuracy of the cell's model and method on its ``paper_dataset``, if printed
    (in any of its tables: Figure 3 itself gives no numbers)."""
    row = paper_row(reported or [], metric_kind="accuracy", model=cell.model, method=cell.method,
                    dataset=cell.paper_dataset)
    return (row.mean, row.source) if row else (float("nan"), "")


def _accuracy_panel(ax, summary: pd.DataFrame, runs: pd.DataFrame, metric: str) -> None:
    """Seeds as small dots, mean ± 95% CI as a point with error bars, the paper's value as a diamond."""
    positions = {method: i for i, method in enumerate(summary["method"])}
    ax.scatter([positions[m] - 0.18 for m in runs["method"]], runs[metric], s=12, color="0.6", zorder=2,
               label="one seed")
    lower = (summary["mean"] - summary["ci95_low"]).fillna(0)
    upper = (summary["ci95_high"] - summary["mean"]).fillna(0)
    ax.errorbar(range(len(summary)), summary["mean"], yerr=[lower, upper], fmt="o", color="#1f4e9c", ms=6,
                capsize=4, elinewidth=1.5, zorder=3, label="ours: mean, 95% CI (t, over seeds)")
    paper = summary.dropna(subset=["paper_mean"])
    if len(paper):
        ax.scatter([positions[m] + 0.18 for m in paper["method"]], paper["paper_mean"], marker="D", s=36,
                   color="#d1495b", edgecolor="black", linewidth=0.5, zorder=4, label="paper (reported mean)")
    shown = pd.concat([runs[metric], summary["ci95_low"], summary["ci95_high"], summary["paper_mean"]]).dropna()
    span = max(float(shown.max() - shown.min()), 1.0)
    bottom, top = max(0.0, float(shown.min()) - 0.15 * span), min(100.0, float(shown.max()) + 0.15 * span)
    ax.set_ylim(bottom, top)
    ax.set_xlim(-0.6, len(summary) - 0.4)
    ax.set_xticks(range(len(summary)), [escape.mathtext(m) for m in summary["method"]], rotation=20, ha="right",
                  fontsize=8)
    ax.set_ylabel("test accuracy (%)", fontsize=8)
    ax.set_xlabel("method", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", color="0.9", zorder=0)
    ax.set_title(escape.mathtext(f"{summary['group'].iloc[0]} (n={int(summary['n'].min())} seeds)"), fontsize=9)
    if bottom > 0:  # points need no zero baseline, but say so
        ax.text(0.01, 0.01, f"axis starts at {bottom:.1f}, not 0", transform=ax.transAxes, fontsize=6,
                color="0.35", style="italic", va="bottom")


# ---------------------------------------------------------------- helpers

def load_run(layout: ResultsLayout, run_id: str, device: str = "cpu"):
    """The trained model of a run (eval mode) and the dataset it was trained on, on ``device``."""
    run = read_run(layout, run_id)
    return run.load_model(device), run.load_data().to(device)


def one_image_per_class(labels: Tensor, count: int) -> Tensor:
    """The first test image of each of the first ``count`` classes (a fixed, label-balanced choice)."""
    picked = [int((labels == k).nonzero()[0]) for k in labels.unique()[:count]]
    return torch.tensor(picked)


def image_for_display(image: Tensor):
    """An input image for imshow: one channel as 2-D, three as RGB, scaled to [0, 1]."""
    image = image.detach().float()
    if image.dim() == 3:
        image = image.sum(dim=0) if image.shape[0] != 3 else image.permute(1, 2, 0)
    low, high = image.min(), image.max()
    return ((image - low) / (high - low + 1e-12)).cpu().numpy()


def map_style(maps: Tensor) -> dict[str, Any]:
    """Colours for a set of explanation maps: diverging and centred at 0 when any value is negative
    (Grad, Grad×Input), sequential otherwise (Grad-CAM after its ReLU)."""
    if bool((maps < 0).any()):
        return {"imshow": {"cmap": "RdBu_r", "vmin": -1.0, "vmax": 1.0},
                "label": "explanation / max |explanation| of its map"}
    return {"imshow": {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}, "label": "explanation / max of its map"}


def scaled_map(explanation: Tensor, size: int) -> Any:
    """A 2-D map for imshow: channels summed, upsampled to ``size``, divided by its largest |value|
    (so 0 stays 0 and the sign is kept)."""
    image = explanation.detach().float()
    if image.dim() == 3:
        image = image.sum(dim=0)
    if image.shape[-1] != size:
        image = F.interpolate(image[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    return (image / image.abs().max().clamp_min(1e-12)).cpu().numpy()


def _title(spec: FigureSpec) -> str:
    """The figure's title as matplotlib text (config text: no mathtext)."""
    number = spec.paper_figure
    return escape.mathtext((f"Figure {number}: " if number else "") + spec.title)
