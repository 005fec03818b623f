# Paths and parameters derived from the plan; shared by every rule file.
import re

RESULTS = Path(PLAN.config["results_dir"])
RUNS = RESULTS / "runs"
TABLES = RESULTS / "tables"
STATS = RESULTS / "stats"
TESTS_CSV = STATS / "tests.csv"
# Braces doubled twice: once for this f-string, once for the shell directive's formatting.
INTROSPECT = f"PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}} python -m introspect"


def run_pattern(kind):
    """A wildcard constraint matching exactly the plan's runs of one kind (rules stay disjoint)."""
    ids = PLAN.ids(kind)
    return "|".join(re.escape(run_id) for run_id in ids) if ids else "(?!)"


CLUSTER = PLAN.config["cluster"]


def runtime_minutes(wildcards):
    return PLAN.runtime_minutes(wildcards.run)


def run_spec(wildcards):
    return run_spec_json(PLAN, wildcards.run, PLAN.config["fail_runs"].get(wildcards.run))


def dependency_models(wildcards):
    return [str(RUNS / dep / "model.pt") for dep in PLAN.runs[wildcards.run].depends_on]


def run_outputs(kind):
    return multiext(str(RUNS / "{run}") + "/", "metrics.json", "epochs.csv", "model.pt")


def table_outputs(tables):
    return [str(TABLES / f"{name}.{ext}") for name in tables for ext in ("md", "tex", "csv")]


TRAIN_SHELL = (
    INTROSPECT + " train --spec {params.spec:q} --out " + str(RUNS) + "/{wildcards.run}"
    " --threads {threads} --device " + PLAN.config["device"] + " 2> {log}"
)
