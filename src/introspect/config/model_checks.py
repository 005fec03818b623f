"""The one pass of :func:`introspect.config.validate.validate_config` over the typed model: once the document's
schema passes, the model is built and every check that relates the config's parts reads it, in one call, so the
CLI and the Snakefile validate a config by one function.

Names that must exist, method hyper-parameters, warm-ups, Grad-CAM, the compile backend and the plan's size
(:mod:`introspect.config.references`); labels that render alike (:mod:`introspect.config.labels`); claims
(:mod:`introspect.config.view_checks`); and here: teachers (no cycle, one for every student), the views that read
other views (analyses name tables, methods of them and groups with teachers; ``extra_seeds`` name cells), the
cluster requests (a GPU model name the SLURM plugin would refuse, a GPU asked for runs that train on the CPU, two
ways of sharing one GPU at once); the views' output files (inside results_dir, no two views writing one). What
only a plan knows (its run directories and selections, seeds counted twice) the planner checks once it exists.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from ..errors import InputError
from ..runs.paths import MAX_PART_BYTES, ensure_inside
from ..runs.record import ResultsLayout
from .labels import lookalike_problems
from .model import Config, Teacher
from .references import (
    compile_problems,
    grad_cam_problems,
    name_checks,
    size_problems,
    variant_problems,
    warmup_problems,
)
from .registry_facts import Catalog
from .view_checks import claim_problems

# What snakemake-executor-plugin-slurm 2.8.0 accepts as a GPU model (utils.set_gres_string): checked at
# plan time so a hyphenated name fails before any job is queued, not at the first submission.
PLUGIN_GPU_MODEL = re.compile(r"^[a-zA-Z0-9_\.]+$")


def model_checks(config: Config, catalog: Catalog) -> list[Callable[[], list[str]]]:
    """Every check of the typed model, each run on its own (:func:`introspect.config.validate.config_problems`
    tolerates a failing one only where the document has problems already); each problem names its key."""
    return [lambda: label_problems(config), lambda: compile_problems(config, catalog),
            *name_checks(config, catalog), lambda: variant_problems(config, catalog),
            lambda: warmup_problems(config), lambda: grad_cam_problems(config, catalog),
            lambda: claim_problems(config), lambda: size_problems(config), lambda: teacher_problems(config, catalog),
            lambda: analysis_problems(config), lambda: extra_seed_problems(config), lambda: cluster_problems(config),
            lambda: view_output_problems(config)]


def view_output_problems(config: Config) -> list[str]:
    """The files the views write: inside results_dir, no path part longer than a file system accepts, no two
    views writing one file (a table and an analysis of one name). Run directories and selections are the plan's
    (:func:`introspect.plan.outputs.output_problems`)."""
    try:
        layout = ResultsLayout(config.results_dir, config.name)
    except InputError:
        return []  # results_dir or name: the document's checks, or the planner's own, name it
    outputs = [(f"{section}.{name}", path) for section, names, files in (
        ("tables", config.tables, layout.table_files), ("figures", config.figures, layout.figure_files),
        ("analyses", config.analyses, layout.analysis_files)) for name in names for path in files(name)]
    problems, writers = [], {}
    for owner, path in outputs + [("claims", path) for path in layout.claims_files() if config.claims]:
        try:
            ensure_inside(config.results_dir, path)
        except ValueError as error:
            problems.append(f"{owner}: {error}")
        if any(len(part.encode()) > MAX_PART_BYTES for part in path.parts):
            problems.append(f"{owner}: a part of {path} is longer than 255 bytes (no file system accepts it)")
        other = writers.setdefault(os.path.normpath(path), owner)
        if other != owner and owner != "claims":
            problems.append(f"{owner}: writes {path}, as {other} does; rename one of them")
    return list(dict.fromkeys(problems))


def label_problems(config: Config) -> list[str]:
    """The method labels of a config, and the group labels of each table and figure, that render alike."""
    problems = lookalike_problems(config.methods, "methods")
    for section, views in (("tables", config.tables), ("figures", config.figures)):
        for name, view in views.items():
            problems += lookalike_problems([g.label for g in view.groups], f"{section}.{name}.groups")
    return problems


def teacher_problems(config: Config, catalog: Catalog) -> list[str]:
    """Teachers that teach themselves, students without a teacher, and teachers of another seed where each seed
    draws its own test split."""
    teachers = config.teachers

    def needs_teacher(label: str) -> bool:
        variant = config.methods.get(label)
        facts = catalog.methods.get(variant.method) if variant else None
        return facts is not None and facts.needs_teacher

    problems = []
    for name, teacher in teachers.items():
        chain = [name]
        while chain[-1] in teachers and teachers[chain[-1]].teacher in teachers:
            chain.append(teachers[chain[-1]].teacher)
            if chain[-1] in chain[:-1]:
                problems.append(f"teachers.{name}: teaches itself through {' -> '.join(chain)}")
                break
        if needs_teacher(teacher.method) and not teacher.teacher:
            problems.append(f"teachers.{name}.teacher: its method {teacher.method} learns from a teacher; "
                            "name one (a name under teachers)")
    per_seed = {key for key, d in config.datasets.items() if d.split == "per_seed"}
    for where, view, group in config.located_groups():
        for label in (label for label in group.trained_labels(view.methods) if needs_teacher(label)):
            teacher = group.teacher_of(label)
            if not teacher:
                problems.append(f"{where}: {label} needs a teacher; give group {group.label!r} a `teacher:` "
                                "(one of the config's teachers)")
            elif group.dataset in per_seed:
                problems += _per_seed_problems(teachers, teacher, group.dataset, len(config.seeds) > 1)
    return problems


def _per_seed_problems(teachers: Mapping[str, Teacher], name: str | None, dataset: str,
                       several_seeds: bool) -> list[str]:
    """With a test split per seed, a teacher of another seed trained on its student's test images."""
    problems, seen = [], set()
    while name in teachers and name not in seen:
        seen.add(name)
        teacher = teachers[name]
        if (teacher.shared and several_seeds) or (not teacher.shared and teacher.seed_shift):
            problems.append(f"teachers.{name}: dataset {dataset!r} draws a test split per seed (split: per_seed), "
                            "so a teacher of another seed was trained on test images of its students; give it "
                            "`shared: false` and `seed_shift: 0`")
        name = teacher.teacher
    return problems


def analysis_problems(config: Config) -> list[str]:
    problems = []
    for name, analysis in config.analyses.items():
        where = f"analyses.{name}"
        problems += [f"{where}.tables[{i}]: {t!r} is not under tables" for i, t in enumerate(analysis.tables)
                     if not config.has("tables", t)]
        tables = [config.tables[t] for t in analysis.tables if t in config.tables]
        studied = {m for table in tables for m in table.methods}
        if len(tables) == len(analysis.tables):  # a table the model could not hold: its methods are unknown
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
            for method in methods if (view, group, method) not in cells and not _unbuilt_view(config, view)]


def _unbuilt_view(config: Config, name: str) -> bool:
    """A table or figure the schema refused and the model could not hold (its cells are unknown)."""
    return name not in config.tables and name not in config.figures and (
        config.has("tables", name) or config.has("figures", name))


def cluster_problems(config: Config) -> list[str]:
    """What the plan refuses about the cluster requests, each naming its key."""
    if "cluster" in config.unbuilt:
        return []
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
