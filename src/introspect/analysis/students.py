"""What distilled students learned (a UniCAM-style analysis): for each student against a teacher, on
the test set,

- **agreement**: % of test images where the student's top-1 class equals the teacher's (e2KD's metric);
- **explanation similarity** (FSS-like): mean cosine similarity of the student's and the teacher's
  Grad-CAM maps for the teacher's top-1 class (the student's map resized to the teacher's);
- **relevance** (RS-like): accuracy drop when the fraction ``f`` of pixels the student's own Grad-CAM
  (for its predicted class, upsampled to the input) ranks most relevant is replaced by the dataset
  mean (0 after normalisation), minus the drop when the same number of pixels is replaced at random.
  Positive: the student's explanation points at pixels its decision needs. Averaged over ``fractions``.

Definitions are in config/README.md. Everything is batched; no per-sample Python in the metrics.
"""
from __future__ import annotations

import json
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch import Tensor

from ..data import Split
from ..explain import grad_cam_of_class
from ..io import atomic_write_text
from ..models.evaluate import accuracy
from ..plan.views import AnalysisSpec
from ..runs.loading import read_run
from ..runs.record import ResultsLayout
from . import escape
from .html_page import html_page, html_table
from .numbers import format_number, is_missing, summarise

DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)


def predictions_and_cam(model, x: Tensor, classes: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-1 classes of ``model`` on ``x`` and its Grad-CAM for ``classes`` (default: its own top-1)."""
    with torch.enable_grad():
        out = model.forward_features(x)
        predicted = out.logits.argmax(dim=1)
        maps = grad_cam_of_class(model, out, predicted if classes is None else classes)
    return predicted.detach(), maps.detach()


def explanation_similarity(student_maps: Tensor, teacher_maps: Tensor) -> Tensor:
    """Per-sample cosine similarity of two sets of maps ``(batch, H, W)`` (student resized to teacher)."""
    if student_maps.shape[-2:] != teacher_maps.shape[-2:]:
        student_maps = F.interpolate(student_maps[:, None], size=teacher_maps.shape[-2:], mode="bilinear",
                                     align_corners=False)[:, 0]
    return F.cosine_similarity(student_maps.flatten(1), teacher_maps.flatten(1), dim=1, eps=1e-12)


def remove_pixels(x: Tensor, saliency: Tensor, fraction: float, *, generator: torch.Generator | None = None,
                  fill: float = 0.0) -> Tensor:
    """``x`` with the ``fraction`` most salient pixels per image replaced by ``fill`` (all channels).

    ``saliency`` is ``(batch, h, w)`` at any resolution (upsampled to the input's). With a
    ``generator`` instead of a ranking, the same number of pixels is chosen uniformly at random.
    """
    batch, _, height, width = x.shape
    pixels = height * width
    count = int(round(fraction * pixels))
    if count == 0:
        return x.clone()
    if generator is not None:
        scores = torch.rand(batch, pixels, generator=generator).to(x.device)
    else:
        if saliency.shape[-2:] != (height, width):
            saliency = F.interpolate(saliency[:, None].float(), size=(height, width), mode="bilinear",
                                     align_corners=False)[:, 0]
        scores = saliency.flatten(1)
    top = scores.topk(count, dim=1).indices
    mask = torch.zeros(batch, pixels, dtype=torch.bool, device=x.device).scatter_(1, top, True)
    return x.masked_fill(mask.view(batch, 1, height, width), fill)


def _accuracy(model, x: Tensor, y: Tensor) -> float:
    return accuracy(model, Split(x, y))


def relevance(model, x: Tensor, y: Tensor, saliency: Tensor, fractions=DEFAULT_FRACTIONS,
              seed: int = 0) -> dict[str, Any]:
    """Accuracy drops when the most salient vs random pixels are removed, per fraction."""
    base = _accuracy(model, x, y)
    generator = torch.Generator().manual_seed(seed)
    curve = []
    for fraction in fractions:
        salient = base - _accuracy(model, remove_pixels(x, saliency, fraction), y)
        random = base - _accuracy(model, remove_pixels(x, saliency, fraction, generator=generator), y)
        curve.append({"fraction": fraction, "drop_salient": salient, "drop_random": random})
    score = sum(c["drop_salient"] - c["drop_random"] for c in curve) / len(curve)
    return {"accuracy": base, "curve": curve, "relevance": score}


def teacher_predictions(teacher, x: Tensor, batch_size: int = 500) -> list[tuple[Tensor, Tensor]]:
    """The teacher's top-1 classes and Grad-CAM maps for them, per batch of ``x``: what every student of
    this teacher on this test set is compared with (computed once for all of them)."""
    return [predictions_and_cam(teacher, x[i:i + batch_size]) for i in range(0, len(x), batch_size)]


def analyse_student(student, teacher, x: Tensor, y: Tensor, fractions=DEFAULT_FRACTIONS,
                    batch_size: int = 500, teacher_results: list[tuple[Tensor, Tensor]] | None = None
                    ) -> dict[str, Any]:
    """The three measures of one student against one teacher on ``(x, y)`` (``teacher_results``:
    :func:`teacher_predictions` of this teacher on ``x`` with this ``batch_size``, if already computed)."""
    teacher_results = teacher_results or teacher_predictions(teacher, x, batch_size)
    agree, similarity, own_maps = [], [], []
    for i, (teacher_classes, teacher_maps) in zip(range(0, len(y), batch_size), teacher_results):
        xb = x[i:i + batch_size]
        with torch.enable_grad():  # one student pass: its map for its own class and for the teacher's
            out = student.forward_features(xb)
            student_classes = out.logits.argmax(dim=1).detach()
            own = grad_cam_of_class(student, out, student_classes)
            student_maps = grad_cam_of_class(student, out, teacher_classes)
        agree.append(student_classes == teacher_classes)
        similarity.append(explanation_similarity(student_maps, teacher_maps))
        own_maps.append(own)
    result = relevance(student, x, y, torch.cat(own_maps), fractions)
    result.update(agreement=100.0 * float(torch.cat(agree).float().mean()),
                  explanation_similarity=float(torch.cat(similarity).mean()))
    return result


# ---------------------------------------------------------------- the analysis table and figure

MEASURES = [("agreement", "Top-1 agreement (%)"), ("explanation_similarity", "Explanation similarity (cos)"),
            ("relevance", "Relevance (Δ acc. drop, pts)"), ("accuracy", "Test accuracy (%)")]


def write_student_analysis(spec: AnalysisSpec, device: str = "cpu") -> pd.DataFrame:
    """Analyse every (student, teacher) pair of ``spec``; write the table (md, csv, html), a per-run
    CSV with the removal curves, and the explanation-pairs figure (png, pdf, csv)."""
    from .figures import load_run

    layout = spec.view_layout
    fractions = spec.fractions
    records, cache, compared = [], {}, {}
    for pair in spec.pairs:
        student, data = load_run(layout, pair.run_id, device)
        if pair.teacher_run_id not in cache:
            cache[pair.teacher_run_id] = read_run(layout, pair.teacher_run_id).load_model(device)
        teacher, x = cache[pair.teacher_run_id], data.test.x
        # Students of a teacher share its test set unless their split is drawn per seed.
        seen = compared.get(pair.teacher_run_id)
        if seen is None or not torch.equal(seen[0], x):
            compared[pair.teacher_run_id] = seen = (x, teacher_predictions(_fast(teacher), x))
        result = analyse_student(_fast(student), teacher, x, data.test.y, fractions, teacher_results=seen[1])
        records.append({"table": pair.table, "group": pair.group, "method": pair.method, "run_id": pair.run_id,
                        "teacher_run_id": pair.teacher_run_id, **{k: result[k] for k, _ in MEASURES},
                        "curve": json.dumps(result["curve"])})
    runs = pd.DataFrame(records)
    atomic_write_text(layout.analysis_runs(spec.name), escape.csv_frame(runs).to_csv(index=False, float_format="%.4f"))
    summary = _summary(runs)
    atomic_write_text(layout.table(spec.name, "csv"),
                      escape.csv_frame(summary).to_csv(index=False, float_format="%.4f"))
    atomic_write_text(layout.table(spec.name, "md"), _markdown(spec, summary, fractions))
    atomic_write_text(layout.table(spec.name, "html"), _html(spec, summary, fractions))
    _pairs_figure(spec, layout, cache, device)
    return summary


def _fast(model):
    """Channels-last weights (``Module.to`` converts only the 4-D ones): the same maps and predictions up to
    summation order, faster convolutions on a CPU; what training uses by default
    (``performance.channels_last``)."""
    return model.to(memory_format=torch.channels_last)


def _summary(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (table, group, method), cell in runs.groupby(["table", "group", "method"], sort=False):
        row = {"table": table, "group": group, "method": method, "n": len(cell)}
        for key, _ in MEASURES:
            seeds = summarise(cell[key])
            row[f"{key}_mean"], row[f"{key}_std"] = seeds.mean, seeds.std
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(row, key: str) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    digits = f".{3 if key == 'explanation_similarity' else 2}f"
    return format_number(mean, digits) + ("" if is_missing(std) else f" ± {format_number(std, digits)}")


def _rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = ["Table", "Student", "Method", "n"] + [label for _, label in MEASURES]
    rows = [[r["table"], r["group"], r["method"], str(r["n"])] + [_cell(r, k) for k, _ in MEASURES]
            for _, r in summary.iterrows()]
    return header, rows


def _notes(spec, fractions) -> list[str]:
    return [
        "Against the teacher of the student's table group (TAKD students: the group's teacher, not their assistant).",
        "Agreement: % of test images where student and teacher predict the same class.",
        "Explanation similarity: mean cosine similarity of the student's and teacher's Grad-CAM for the "
        "teacher's class.",
        f"Relevance: accuracy drop when the student's most relevant pixels (its own Grad-CAM, predicted class) are "
        f"set to the dataset mean, minus the drop for as many random pixels; mean over fractions {list(fractions)}.",
        f"Mean ± std over seeds {spec.seeds}.",
    ]


def _markdown(spec, summary: pd.DataFrame, fractions) -> str:
    header, rows = _rows(summary)
    labelled = [[escape.markdown(label) for label in row[:3]] + row[3:] for row in rows]  # table, student, method
    lines = ["# " + escape.markdown(f"{spec.name}: {spec.title}"), "",
             tabulate(labelled, header, tablefmt="github", disable_numparse=True), ""]
    return "\n".join(lines + [f"- {escape.markdown(n)}" for n in _notes(spec, fractions)]) + "\n"


def _html(spec, summary: pd.DataFrame, fractions) -> str:
    header, rows = _rows(summary)
    table = html_table(header, rows, caption="Mean ± std over seeds, against the teacher of each student's group",
                       label_columns=3)
    return html_page(f"{spec.name}: {spec.title}", tables=[table], notes=_notes(spec, fractions))


def outline(ax, image) -> None:
    """The input's shape as a thin white contour at its mid brightness, drawn over an opaque map."""
    gray = image.float().mean(dim=0).cpu().numpy()
    low, high = float(gray.min()), float(gray.max())
    if high > low:
        ax.contour(gray, levels=[(low + high) / 2], colors="white", linewidths=0.6)


def _pairs_figure(spec: AnalysisSpec, layout: ResultsLayout, teachers: dict, device: str) -> None:
    """Teacher and student Grad-CAM (for the teacher's class) on a few test images: one row per
    method of the figure's group (first seed), the teacher in the first row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import load_run, one_image_per_class, save_figure, scaled_map

    shown = spec.figure_pairs
    n_images = spec.images
    figure, axes = plt.subplots(len(shown) + 1, n_images, figsize=(1.6 * n_images + 1.0, 1.5 * (len(shown) + 1) + 0.6),
                                squeeze=False, layout="constrained")
    # Grad-CAM is >= 0 (ReLU): drawn opaque, so its colours are the colour bar's; the input shows as its outline
    overlay = {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
    records = []
    teacher = teachers[shown[0].teacher_run_id]
    _, data = load_run(layout, shown[0].run_id, device)
    index = one_image_per_class(data.test.y, n_images)
    x = data.test.x[index]
    classes, teacher_maps = predictions_and_cam(teacher, x)
    size = x.shape[-1]
    for j in range(len(index)):
        image = axes[0, j].imshow(scaled_map(teacher_maps[j], size), **overlay)
        outline(axes[0, j], x[j])
        axes[0, j].set_title(f"teacher: {data.class_names[classes[j]]}", fontsize=7)
    axes[0, 0].set_ylabel("teacher", fontsize=7)
    for i, pair in enumerate(shown, start=1):
        student, _ = load_run(layout, pair.run_id, device)
        _, maps = predictions_and_cam(student, x, classes)
        sims = explanation_similarity(maps, teacher_maps)
        for j in range(len(index)):
            axes[i, j].imshow(scaled_map(maps[j], size), **overlay)
            outline(axes[i, j], x[j])
            axes[i, j].set_xlabel(f"cos {sims[j]:.2f}", fontsize=7)
            records.append({"group": pair.group, "method": pair.method, "run_id": pair.run_id,
                            "test_index": int(index[j]), "teacher_class": data.class_names[classes[j]],
                            "cosine_to_teacher": float(sims[j])})
        axes[i, 0].set_ylabel(escape.mathtext(f"{pair.method}\n({pair.group})"), fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(escape.mathtext(f"{spec.title}: teacher and student Grad-CAM for the teacher's class"),
                    fontsize=8)
    bar = figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02)
    bar.set_label("Grad-CAM / max of its map (white: the input's outline)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    save_figure(figure, layout.analysis_figure(spec.name, "png"), layout.analysis_figure(spec.name, "pdf"))
    atomic_write_text(layout.analysis_figure(spec.name, "csv"),
                      escape.csv_frame(pd.DataFrame(records)).to_csv(index=False, float_format="%.4f"))
