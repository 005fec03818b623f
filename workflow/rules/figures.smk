# Figures 1-3: explanations with their cosine similarity to the true class's (Fig. 1), class-similarity
# heat maps averaged over the test set (Fig. 2), LE's accuracy with each explainer (Fig. 3).


FIGURE_KINDS = {
    "explanations": "For a few test images (first column), the explanation of every class; the number under "
    "each map is its cosine similarity to the explanation of the true class (bold).",
    "class_similarity": "Cosine distance between the explanations of every pair of classes, averaged over "
    "the test set: small distances mark classes the model sees as similar. A diagonal entry above 0 means the "
    "class's Grad-CAM map was all zero (ReLU) on some images, where the cosine is taken as 0.",
    "accuracy": "Test accuracy (%), mean ± std over seeds (error bars), of each method per model.",
}


def figure_caption(wildcards):
    figure = PLAN.figures[wildcards.figure]
    config = figure.config
    number = f"Paper Figure {config['paper_figure']}. " if config.get("paper_figure") else ""
    panels = "; ".join(f"{p['label']}: run {p['run_id']}" for p in figure.panels)
    return " ".join(filter(None, [f"{number}{config['title']}.", FIGURE_KINDS[config["kind"]],
                                  config.get("note"), f"Panels: {panels}." if panels else ""]))


def figure_inputs(wildcards):
    figure = PLAN.figures[wildcards.figure]
    files = ["metrics.json", "model.pt"] if figure.panels else ["metrics.json"]
    return [str(RUNS / run_id / name) for run_id in figure.run_ids() for name in files]


rule figure:
    input:
        figure_inputs,
    output:
        png=report(str(FIGURES / "{figure}.png"), caption="../report/figure.rst", category="Figures",
                   labels=lambda wildcards: {"figure": wildcards.figure}),
        csv=str(FIGURES / "{figure}.csv"),
    params:
        spec=lambda wildcards: json.dumps(PLAN.figures[wildcards.figure].to_dict()),
        metric=PLAN.config["table_metric"],
        caption=figure_caption,
    threads: 1
    wildcard_constraints:
        figure="|".join(PLAN.figures) or "(?!)",
    # A cluster job, not a localrule: it loads models and runs them over test images. No GPU
    # request: the command has no device option yet and runs on the CPU.
    resources:
        runtime=60,
        mem_mb=CLUSTER["mem_mb_per_run"],
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " figure --spec {params.spec:q} --runs-dir " + str(RUNS) +
        " --metric {params.metric} --threads {threads} --out-prefix " + str(FIGURES) + "/{wildcards.figure}"
