"""A fingerprint of a result set: one digest over every finished run's numbers, so a newcomer sees at once
whether their run of a config reproduces the committed one bit for bit (``introspect summary``).

A run's digest covers what it trained (its id, its spec's training identity without the paths of the files it
started from, the hyper-parameters a selection chose) and what it measured:
the accuracies and counts of ``metrics.json`` and every epoch's row of ``epochs.csv`` (losses, loss
terms, accuracies, learning rate) without the wall-clock seconds. Timings, host, threads and paths are
left out. The result set's fingerprint is the digest of the sorted ``run id: run digest`` lines, so it
does not depend on the order runs finished in. The committed file (``config/expected_fingerprint.json``)
keeps every run's digest too, so a mismatch names the runs that differ.

Importing this module costs no torch.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import FileMissing, FileRefused, read_json, read_text
from .loading import read_run
from .metrics import ACCURACY_FIELDS, COUNT_FIELDS, RunFileError
from .record import ResultsLayout
from .spec import RunSpec

FINGERPRINT_VERSION = 1
DEFAULT_EXPECTED = "config/expected_fingerprint.json"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_digest(metrics: dict[str, Any], epochs_csv: str) -> str:
    """The digest of one run's identity and numbers (see the module docstring)."""
    try:
        identity = RunSpec.from_dict(metrics["spec"]).training_identity()
    except (ValueError, TypeError, KeyError):
        identity = dict(metrics.get("spec") or {})
    # where the results folder is: the selection's id is in the run id, the values it chose in hyperparameters
    identity.pop("hyperparameters_from", None)
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(io.StringIO(epochs_csv))]
    numbers = {k: metrics.get(k) for k in ("run_id", "seed", "hyperparameters", *ACCURACY_FIELDS, *COUNT_FIELDS)}
    return _digest(json.dumps({"identity": identity, "numbers": numbers, "epochs": rows}, sort_keys=True))


def combined(digests: dict[str, str]) -> str:
    """The result set's fingerprint: order-independent over its runs."""
    return _digest("\n".join(f"{run_id}: {digest}" for run_id, digest in sorted(digests.items())))


def run_digests(results_dir: str | Path) -> dict[str, str]:
    """Every finished run under ``results_dir`` (validated as analysis reads it) -> its digest."""
    layout = ResultsLayout(results_dir)
    digests = {}
    for run_id in layout.finished_run_ids():
        run = read_run(layout, run_id)
        try:
            epochs = read_text(run.files.epochs, "epochs")
        except FileMissing:  # a run written by hand (tests' synthetic runs): its metrics alone
            epochs = ""
        except FileRefused as error:
            raise RunFileError(f"{error}; retrain run {run_id}") from None
        digests[run_id] = run_digest(run.metrics, epochs)
    return digests


def fingerprint(results_dir: str | Path, name: str) -> dict[str, Any]:
    """The fingerprint file's content for the runs under ``results_dir`` (config ``name``)."""
    digests = run_digests(results_dir)
    return {"version": FINGERPRINT_VERSION, "config": name, "runs": len(digests), "fingerprint": combined(digests),
            "run_digests": digests}


def read_expected(path: str | Path) -> dict[str, Any] | None:
    """The committed fingerprint (None: there is none); a malformed file is an InputError naming it."""
    try:
        data = read_json(path, "metrics")
    except FileMissing:
        return None
    except FileRefused as error:
        raise InputError(f"not a fingerprint file: {error}") from None
    if not (isinstance(data, dict) and isinstance(data.get("fingerprint"), str)
            and isinstance(data.get("run_digests"), dict)):
        raise InputError(f"{path}: not a fingerprint file (it needs 'fingerprint' and 'run_digests'); "
                         "write it with introspect summary --write-fingerprint")
    return data


def compare(ours: dict[str, Any], expected: dict[str, Any] | None, expected_path: str | Path) -> list[str]:
    """Plain-text lines: our fingerprint, the committed one, and whether they match (naming the runs that
    differ or are missing, at most a few)."""
    lines = [f"Fingerprint of the {ours['runs']} finished runs: {ours['fingerprint']}"]
    if expected is None:
        return lines + [f"No committed fingerprint at {expected_path} to compare with."]
    lines.append(f"Committed fingerprint ({expected_path}, config {expected.get('config')}, "
                 f"{len(expected['run_digests'])} runs): {expected['fingerprint']}")
    mine, theirs = ours["run_digests"], expected["run_digests"]
    missing = sorted(set(theirs) - set(mine))
    differ = sorted(r for r in theirs if r in mine and mine[r] != theirs[r])
    extra = len(set(mine) - set(theirs))
    others = f" ({extra} other runs here are not in the committed set)" if extra else ""
    if not missing and not differ and combined({r: mine[r] for r in theirs}) == expected["fingerprint"]:
        return lines + [f"They match: all {len(theirs)} committed runs reproduced bit for bit{others}."]
    same = len(theirs) - len(missing) - len(differ)
    lines.append(f"They differ: {same} of {len(theirs)} committed runs match, {len(differ)} differ, "
                 f"{len(missing)} not finished here{others}.")
    if differ:
        lines.append(f"Runs that differ: {', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}")
    if missing:
        lines.append(f"Runs not finished here: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return lines
