"""A finished run's files survive a fault that deletes them: a failed neighbour in a pack (Snakemake
deletes every output of a failed group job, the finished members' too), a killed Snakemake whose
next call removes the outputs it marked incomplete, a retry of a whole pack.

When a run finishes, its ``metrics.json``, ``model.pt`` and ``epochs.csv`` are hard-linked (no copy, no
extra space) under ``.finished/`` in its directory, which no rule names as an output, so nothing
deletes it. A job asked to train a run whose finished files are there, complete, valid and of the same
training identity (``RunSpec.training_identity``) puts them back and trains nothing. Training is
deterministic, so this is what training again would write; a changed definition (another identity) is
trained afresh. To retrain a run anyway, delete its directory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..io import (
    TEMPORARY_SUFFIX,
    FileRefused,
    atomic_write_bytes,
    is_file,
    make_directory,
    open_directory,
    read_bytes,
    read_json,
    rename_in_directory,
)
from ..runs.metrics import metrics_problems
from ..runs.record import FINISHED_DIR as FINISHED
from ..runs.record import RunFiles
from ..runs.spec import RunSpec


def _kept(files: RunFiles) -> dict[Path, tuple[Path, str]]:
    """Each finished output -> its kept link and its file kind."""
    kinds = {files.metrics: "metrics", files.model: "model", files.epochs: "epochs"}
    return {path: (files.directory / FINISHED / path.name, kind) for path, kind in kinds.items()}


def link_file(source: Path, target: Path, kind: str) -> None:
    """Make ``target`` another name of the regular file ``source`` (a hard link: no copy; a copy where the file
    system has none), replacing ``target`` atomically; both directories are opened through the file door, so no
    link on either path is followed."""
    if not is_file(source):  # a regular file, reached without a link
        raise FileRefused(f"{source}: not a regular file; a {kind} file is one")
    temporary = f".{target.name}.{os.getpid()}{TEMPORARY_SUFFIX}"
    with open_directory(source.parent) as source_fd, open_directory(target.parent) as target_fd:
        try:
            os.link(source.name, temporary, src_dir_fd=source_fd, dst_dir_fd=target_fd, follow_symlinks=False)
        except OSError:
            atomic_write_bytes(target, read_bytes(source, kind))
            return
    rename_in_directory(target.parent / temporary, target.name)


def keep_finished(files: RunFiles) -> None:
    """Link the run's finished outputs under ``.finished/`` (after metrics.json was written)."""
    make_directory(files.directory / FINISHED)
    for path, (kept, kind) in _kept(files).items():
        link_file(path, kept, kind)


def finished_metrics(spec: RunSpec, metrics: Path) -> dict[str, Any] | None:
    """The metrics in ``metrics`` if they are a valid, finished run of ``spec`` (same training identity)."""
    try:
        data = read_json(metrics, "metrics")
    except FileRefused:
        return None
    if metrics_problems(data, spec.run_id):
        return None
    try:
        same = RunSpec.from_dict(data["spec"]).training_identity() == spec.training_identity()
    except (KeyError, TypeError, ValueError):
        return None
    return data if same else None


def restore_finished(spec: RunSpec, files: RunFiles) -> dict[str, Any] | None:
    """The run's metrics if it already finished under this identity, its outputs in place (put back from
    ``.finished/`` if a fault deleted them); None if it has to be trained."""
    kept = _kept(files)
    if all(is_file(path) for path in kept) and (data := finished_metrics(spec, files.metrics)) is not None:
        return data
    if not all(is_file(link) for link, _ in kept.values()):
        return None
    data = finished_metrics(spec, kept[files.metrics][0])
    if data is None:
        return None
    for path, (link, kind) in sorted(kept.items(), key=lambda item: item[0] == files.metrics):  # metrics last
        link_file(link, path, kind)
    return data
