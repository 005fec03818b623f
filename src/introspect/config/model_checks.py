"""The checks of :func:`introspect.config.validate.validate_config` that read the typed model: they run once the
document's own checks pass, in the same call, so the CLI and the Snakefile validate a config by one function.

The cluster requests: a GPU model name the SLURM plugin would refuse, a GPU asked for runs that train on the CPU,
two ways of sharing one GPU at once.
"""
from __future__ import annotations

import re

from .model import Config

# What snakemake-executor-plugin-slurm 2.8.0 accepts as a GPU model (utils.set_gres_string): checked at
# plan time so a hyphenated name fails before any job is queued, not at the first submission.
PLUGIN_GPU_MODEL = re.compile(r"^[a-zA-Z0-9_\.]+$")


def model_problems(config: Config) -> list[str]:
    """Every problem of the typed model, each naming its key."""
    return cluster_problems(config)


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
