"""The checks of :func:`introspect.config.validate.validate_config` that read the typed model: they run once the
document's own checks pass, in the same call, so the CLI and the Snakefile validate a config by one function.

The views that read other views (analyses name tables, methods of them and groups with teachers; ``extra_seeds``
name cells); the cluster requests: a GPU model name the SLURM plugin would refuse, a GPU asked for runs that train
on the CPU, two ways of sharing one GPU at once.
"""
from __future__ import annotations

import re

from .model import Config

# What snakemake-executor-plugin-slurm 2.8.0 accepts as a GPU model (utils.set_gres_string): checked at
# plan time so a hyphenated name fails before any job is queued, not at the first submission.
PLUGIN_GPU_MODEL = re.compile(r"^[a-zA-Z0-9_\.]+$")


def model_problems(config: Config) -> list[str]:
    """Every problem of the typed model, each naming its key."""
    return analysis_problems(config) + extra_seed_problems(config) + cluster_problems(config)


def analysis_problems(config: Config) -> list[str]:
    problems = []
    for name, analysis in config.analyses.items():
        where = f"analyses.{name}"
        problems += [f"{where}.tables[{i}]: {t!r} is not under tables" for i, t in enumerate(analysis.tables)
                     if t not in config.tables]
        tables = [config.tables[t] for t in analysis.tables if t in config.tables]
        studied = {m for table in tables for m in table.methods}
        problems += [f"{where}.methods[{i}]: {m!r} is not a method of its tables ({', '.join(analysis.tables)})"
                     for i, m in enumerate(analysis.methods or ()) if m not in studied]
        if analysis.figure_table not in analysis.tables:
            problems.append(f"{where}.figure_table: {analysis.figure_table!r} is not one of its tables")
        for table in tables:
            chosen = [m for m in table.methods if not analysis.methods or m in analysis.methods]
            problems += [f"{where}.tables: group {g.label!r} of {table.name} has no teacher to compare with"
                         for g in table.groups if not g.teacher and g.trained_labels(chosen)]
    return problems


def extra_seed_problems(config: Config) -> list[str]:
    """``extra_seeds`` may only name cells the config has: a table or accuracy figure, one of its groups and a
    method of that group (an overlay written for another config is a mistake)."""
    cells = config.claim_cells()
    return [f"extra_seeds.{view}.{group}.{method}: no such cell (table or accuracy figure, group, method)"
            for view, groups in config.extra_seeds.items() for group, methods in groups.items()
            for method in methods if (view, group, method) not in cells]


def cluster_problems(config: Config) -> list[str]:
    """What the plan refuses about the cluster requests, each naming its key."""
    cluster, problems = config.cluster, []
    model = cluster.gpu_model
    if model and not PLUGIN_GPU_MODEL.match(model):
        problems.append(f"cluster.gpu_model: {model!r} is refused by the SLURM plugin (letters, digits, '_' and "
                        "'.' only); use the name your site's gres.conf gives, e.g. a100 or h100_80gb")
    on_cpu = not config.device.startswith("cuda")
    asked = {"gpus_per_run": cluster.gpus_per_run or 0, "gpu_shards_per_run": cluster.gpu_shards_per_run,
             "runs_per_gpu": cluster.runs_per_gpu - 1}
    if on_cpu and not cluster.fake_gpus:
        for key, value in asked.items():
            if value:
                problems.append(f"cluster.{key}: asks for a GPU but device is {config.device!r}, so the runs "
                                "would train on the CPU of a GPU node; set device: cuda (config/paper.yaml does)")
    if cluster.gpu_shards_per_run and cluster.runs_per_gpu > 1:
        problems.append("cluster.runs_per_gpu: packing and gpu_shards_per_run are two ways of sharing a GPU; "
                        "use one of them")
    return problems
