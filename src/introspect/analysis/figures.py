"""The paper's figures from trained runs (matplotlib, Agg backend; every plotted number also in a CSV).

- ``explanations`` (Figure 1): for a few test images, the explanation of every class and its cosine
  similarity to the ground-truth class's explanation.
- ``class_similarity`` (Figure 2): cosine distance between the explanations of every pair of classes,
  averaged over the test set.
- ``accuracy`` (Figure 3): test accuracy of runs (e.g. LE with each explainer), mean ± std over seeds.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from ..io import atomic_write_text
from ..runs import ResultsLayout, read_run
from ..specs import FigureSpec


def draw_figure(spec: FigureSpec, *, metric: str = "test_acc_final") -> None:
    """Write the figure's PNG and CSV where :class:`~introspect.runs.ResultsLayout` puts them."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on cluster nodes
    draw = {"explanations": _explanations_figure, "class_similarity": _similarity_figure,
            "accuracy": _accuracy_figure}[spec.kind]
    layout = ResultsLayout(spec.results_dir)
    figure, table = draw(spec, layout, metric)
    _save_png(figure, layout.figure(spec.name, "png"))
    atomic_write_text(layout.figure(spec.name, "csv"), table.to_csv(index=False, float_format="%.4f"))


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

def _explanations_figure(spec: FigureSpec, layout: ResultsLayout, metric: str):
    import matplotlib.pyplot as plt

    from ..explain import explain

    n_images = spec.config.get("images", 3)
    loaded = [(panel, *_load_run(layout, panel.run_id)) for panel in spec.panels]
    classes = max(data.num_classes for _, _, data in loaded)
    rows = n_images * len(loaded)
    figure, axes = plt.subplots(rows, classes + 1, figsize=(1.1 * (classes + 1), 1.25 * rows + 0.6), squeeze=False)
    records = []
    for p, (panel, model, data) in enumerate(loaded):
        index = _one_image_per_class(data.test.y, n_images)
        x, y = data.test.x[index], data.test.y[index]
        maps = explain(model, x, panel.explainer)
        sims = class_similarity(maps)[torch.arange(len(y)), y]  # (images, K): each class vs the true one
        predicted = model(x).argmax(dim=1)
        for i in range(len(index)):
            row = axes[p * n_images + i]
            row[0].imshow(_display(x[i]), cmap="gray")
            row[0].set_ylabel(f"{panel.label}\n{data.class_names[y[i]]}", fontsize=6)
            for k in range(data.num_classes):
                row[k + 1].imshow(_display(maps[i, k], size=x.shape[-1]), cmap="jet")
                row[k + 1].set_xlabel(f"{sims[i, k]:.2f}", fontsize=7,
                                      fontweight="bold" if k == int(y[i]) else "normal")
                if i == 0:
                    row[k + 1].set_title(data.class_names[k], fontsize=7)
                records.append({"panel": panel.label, "run_id": panel.run_id, "explainer": panel.explainer,
                                "test_index": int(index[i]), "label": data.class_names[y[i]],
                                "predicted": data.class_names[predicted[i]], "class": data.class_names[k],
                                "cosine_to_true_class": float(sims[i, k])})
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(_title(spec) + "\n(number under each map: cosine similarity to the true class's explanation)",
                    fontsize=8)
    figure.tight_layout()
    return figure, pd.DataFrame(records)


def _similarity_figure(spec: FigureSpec, layout: ResultsLayout, metric: str):
    import matplotlib.pyplot as plt

    panels = spec.panels
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    records = []
    for ax, panel in zip(axes[0], panels):
        model, data = _load_run(layout, panel.run_id)
        distance = mean_class_distance(model, data.test.x, panel.explainer)
        image = ax.imshow(distance.numpy(), cmap="viridis")
        names = data.class_names
        ax.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{panel.label}\nmean cosine distance, {len(data.test)} test images", fontsize=8)
        figure.colorbar(image, ax=ax, fraction=0.046)
        for a in range(len(names)):
            for b in range(len(names)):
                records.append({"panel": panel.label, "run_id": panel.run_id, "explainer": panel.explainer,
                                "class_a": names[a], "class_b": names[b], "cosine_distance": float(distance[a, b])})
    figure.suptitle(_title(spec), fontsize=9)
    figure.tight_layout()
    return figure, pd.DataFrame(records)


def _accuracy_figure(spec: FigureSpec, layout: ResultsLayout, metric: str):
    import matplotlib.pyplot as plt

    records = []
    for cell in spec.cells:
        for run_id in cell.run_ids:
            run = read_run(layout, run_id)
            records.append({"group": cell.group, "method": cell.method, "run_id": run_id,
                            "seed": run.seed, metric: run.value(metric)})
    runs = pd.DataFrame(records)
    groups = list(dict.fromkeys(runs["group"]))
    figure, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.4), squeeze=False)
    summary = []
    for ax, group in zip(axes[0], groups):
        stats = runs[runs["group"] == group].groupby("method", sort=False)[metric].agg(["mean", "std", "count"])
        ax.bar(range(len(stats)), stats["mean"], yerr=stats["std"].fillna(0), capsize=4, color="tab:blue")
        ax.set_xticks(range(len(stats)), stats.index, rotation=30, ha="right", fontsize=7)
        low = (stats["mean"] - stats["std"].fillna(0)).min()
        ax.set_ylim(max(0.0, low - 2.0), min(100.0, (stats["mean"] + stats["std"].fillna(0)).max() + 1.0))
        ax.set_ylabel("test accuracy (%)", fontsize=8)
        ax.set_title(f"{group} (mean ± std, n={int(stats['count'].min())})", fontsize=8)
        summary += [{"group": group, "method": m, "mean": r["mean"], "std": r["std"], "n": int(r["count"])}
                    for m, r in stats.iterrows()]
    note = spec.config.get("note")
    width = 45 * len(groups) + 20  # characters that fit above the panels at this font size
    figure.suptitle(_title(spec) + (f"\n{textwrap.fill(note, width)}" if note else ""), fontsize=8)
    figure.tight_layout()
    return figure, pd.DataFrame(summary).merge(runs.groupby(["group", "method"], sort=False)["run_id"]
                                               .agg(" ".join).reset_index(), on=["group", "method"])


# ---------------------------------------------------------------- helpers

def _load_run(layout: ResultsLayout, run_id: str):
    """The trained model of a run (eval mode) and the dataset it was trained on."""
    run = read_run(layout, run_id)
    return run.load_model(), run.load_data()


def _one_image_per_class(labels: Tensor, count: int) -> Tensor:
    """The first test image of each of the first ``count`` classes (a fixed, label-balanced choice)."""
    picked = [int((labels == k).nonzero()[0]) for k in labels.unique()[:count]]
    return torch.tensor(picked)


def _display(image: Tensor, size: int | None = None):
    """A 2-D array for imshow: channels summed, upsampled to ``size``, scaled to [0, 1]."""
    image = image.detach().float()
    if image.dim() == 3:
        image = image.sum(dim=0) if image.shape[0] != 3 else image.permute(1, 2, 0)
    if size is not None and image.dim() == 2 and image.shape[-1] != size:
        image = F.interpolate(image[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    low, high = image.min(), image.max()
    return ((image - low) / (high - low + 1e-12)).numpy()


def _title(spec: FigureSpec) -> str:
    number = spec.config.get("paper_figure")
    return (f"Figure {number}: " if number else "") + spec.config["title"]


def _save_png(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
    tmp.replace(path)
