# Input, output and caption functions of the rules that aggregate runs (selections, tables, claims,
# figures, the student analysis). Kept apart from the rule files, which hold rules only; every path
# comes from the run layer (LAYOUT, common.smk). Captions are config text rendered as reStructuredText
# by `snakemake --report` (with raw and include on): every caption function returns escape.rst_param
# text, which the templates in workflow/report/ turn back into escaped RST.
from introspect.analysis import escape


def selection_inputs(wildcards):
    """Each sweep run's outcome (finished, or failed for good: scored as failed) or, for a run that other
    views read too, its metrics."""
    run_ids = PLAN.selections[wildcards.selection].run_ids()
    return [str(LAYOUT.run(r).outcome if r in SWEEP_POINTS else LAYOUT.run(r).metrics) for r in run_ids]


def runs_to_aggregate(run_ids):
    """With allow_missing_seeds, runs that were tried and failed (a log but no metrics) are left out,
    so a table or the claims are built with the seeds that finished."""
    if not PLAN.config.allow_missing_seeds:
        return run_ids
    return [r for r in run_ids if LAYOUT.run(r).is_finished() or not LAYOUT.run(r).was_tried()]


def table_inputs(wildcards):
    """Every run of the table (see runs_to_aggregate), its selections and the paper's values."""
    table = PLAN.tables[wildcards.table]
    run_ids = runs_to_aggregate(sorted({*table.run_ids(), *table.teacher_run_ids(), *table.reference_run_ids()}))
    selections = [str(LAYOUT.selection(s)) for s in table.selection_ids()]
    return metrics_of(run_ids) + selections + [PLAN.config.reported_results]


def table_caption(table):
    number = f"Paper Table {table.paper_table}. " if table.paper_table else ""
    return escape.rst_param(
        f"{number}{table.title}. {table.metric_label.capitalize()} on {table.notes.dataset}.")


def claims_inputs(wildcards):
    # similar_pairs claims read their class-similarity figure's data (introspect.claims.similarity)
    figures = [str(LAYOUT.figure(c.view, "csv")) for c in PLAN.claims.claims if c.direction == "similar_pairs"]
    return metrics_of(runs_to_aggregate(PLAN.claims.run_ids())) + [PLAN.config.reported_results, *figures]


def claims_outputs():
    return paths(LAYOUT.claims_files()) if PLAN.claims else []


FIGURE_KINDS = {
    "explanations": "For a few test images (first column), the explanation of every class; the number under "
    "each map is its cosine similarity to the explanation of the true class (bold).",
    "class_similarity": "Cosine distance between the explanations of every pair of classes, averaged over "
    "the test set: small distances mark classes the model sees as similar. A diagonal entry above 0 means the "
    "class's Grad-CAM map was all zero (ReLU) on some images, where the cosine is taken as 0.",
    "accuracy": "Test accuracy (%) of each method per model: grey dots are single seeds, blue points the mean "
    "with its 95% confidence interval (t distribution over seeds), red diamonds the paper's reported mean where "
    "the paper prints one for that model and method (its tables; Figure 3 itself gives no numbers).",
}


def figure_caption(wildcards):
    figure = PLAN.figures[wildcards.figure]
    number = f"Paper Figure {figure.paper_figure}. " if figure.paper_figure else ""
    panels = "; ".join(f"{p.label}: run {p.run_id}" for p in figure.panels)
    return escape.rst_param(" ".join(filter(None, [f"{number}{figure.title}.", FIGURE_KINDS[figure.kind],
                                                   figure.note, f"Panels: {panels}." if panels else ""])))


def analysis_caption(wildcards):
    return escape.rst_param(PLAN.analyses[wildcards.analysis].title)


def figure_inputs(wildcards):
    figure = PLAN.figures[wildcards.figure]
    if figure.panels:
        return metrics_of(figure.run_ids()) + models_of(figure.run_ids())
    return metrics_of(figure.run_ids()) + [PLAN.config.reported_results]  # the paper's values are drawn too


def analysis_inputs(wildcards):
    run_ids = PLAN.analyses[wildcards.analysis].run_ids()
    return metrics_of(run_ids) + models_of(run_ids)


def analysis_outputs(analyses):
    return [str(path) for name in analyses for path in LAYOUT.analysis_files(name)]



def requested_files():
    """The files this call was asked for: the inputs of `all`, or the outputs of the targets named."""
    jobs = workflow.dag.targetjobs if workflow.dag is not None else []
    return sorted({str(f) for job in jobs for f in (job.input if job.rule.name == "all" else job.output)})
