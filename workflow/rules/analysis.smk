# Beyond the paper: what the distilled students learned (UniCAM-style), against their group's teacher:
# top-1 agreement, Grad-CAM similarity for the teacher's class, and the relevance of the student's own
# explanation (accuracy drop when its most relevant pixels are removed vs random pixels).


def analysis_inputs(wildcards):
    analysis = PLAN.analyses[wildcards.analysis]
    return [str(RUNS / run_id / name) for run_id in analysis.run_ids() for name in ("metrics.json", "model.pt")]


def analysis_outputs(analyses):
    return ([str(TABLES / f"{name}.{ext}") for name in analyses for ext in ("md", "csv", "html")]
            + [str(FIGURES / f"{name}_pairs.png") for name in analyses])


rule analyse_students:
    input:
        analysis_inputs,
    output:
        multiext(str(TABLES / "{analysis}"), ".md", ".csv", "_runs.csv"),
        html=report(str(TABLES / "{analysis}.html"), caption="../report/analysis.rst", category="Tables",
                    labels=lambda wildcards: {"table": wildcards.analysis}),
        png=report(str(FIGURES / "{analysis}_pairs.png"), caption="../report/analysis_pairs.rst",
                   category="Figures", labels=lambda wildcards: {"figure": f"{wildcards.analysis}_pairs"}),
        csv=str(FIGURES / "{analysis}_pairs.csv"),
    params:
        spec=lambda wildcards: json.dumps(PLAN.analyses[wildcards.analysis].to_dict()),
        title=lambda wildcards: PLAN.analyses[wildcards.analysis].config["title"],
    threads: 2  # the last job of the DAG, nothing left to run beside it (capped at --cores)
    wildcard_constraints:
        analysis="|".join(PLAN.analyses) or "(?!)",
    # A cluster job, not a localrule: it loads models and runs them over test images. No GPU
    # request: the command has no device option yet and runs on the CPU.
    resources:
        runtime=60,
        mem_mb=CLUSTER["mem_mb_per_run"],
    conda:
        "../../envs/introspect.yaml"
    shell:
        INTROSPECT + " analyse --spec {params.spec:q} --runs-dir " + str(RUNS) + " --threads {threads}"
        " --out-prefix " + str(TABLES) + "/{wildcards.analysis} --figure-prefix " + str(FIGURES) +
        "/{wildcards.analysis}_pairs"
