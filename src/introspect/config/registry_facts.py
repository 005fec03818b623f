"""What planning needs from the registries: the method names with their hyper-parameters (type and
range of each) and whether they read a teacher, the model names, the datasets' facts
(:class:`DatasetFacts`: shape, classes, test split, what must exist under data_root and how to get
it), the explainers, the augmentations and torch's compile backends.

The registries live in modules that import torch, which costs seconds per process: much of a
`snakemake -n`, paid again by every SLURM job step that re-reads the Snakefile.
So the catalog is computed once per version of this package's source (a digest of every ``.py``
file in it) and cached as JSON under ``$INTROSPECT_CACHE_DIR`` (default
``$XDG_CACHE_HOME/introspect`` or ``~/.cache/introspect``). Any edit to the package, such as a new
method file, changes the digest, so a stale catalog is never read. An unwritable cache directory
only costs the import.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..io import FileRefused, atomic_write_json

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole package: any edit to it changes the digest
CATALOG_VERSION = 5  # bump when the catalog's fields change


@dataclass(frozen=True)
class MethodInfo:
    hyperparameters: tuple[str, ...]
    needs_teacher: bool
    # name -> {"type": "number" | "integer" | "boolean" | "string", bounds "gt"/"ge"/"lt"/"le", "choices"}
    hyperparameter_specs: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetFacts:
    """A registered dataset as planning and pre-flight see it (the class attributes of the same names
    on its :class:`introspect.data.DatasetSource`)."""

    channels: int
    num_classes: int
    image_size: int  # the side of its images; the default side where ``resizable``
    resizable: bool  # the config's image_size applies
    own_test_split: bool  # False: a test split is drawn (fixed, or per seed with split: per_seed)
    files: tuple[str, ...]  # relative to the config's data_root
    requires: str | None  # the Python package that carries the data
    obtain: str  # how to get the files or the package; DATA_ROOT stands for data_root
    downloadable: bool  # `python -m introspect download NAME` fetches it

    def check(self, data_root: str | Path) -> list[str]:
        """What is missing for this dataset to load from ``data_root``, one line each (no torch, no reading)."""
        root = Path(data_root)
        how = self.obtain.replace("DATA_ROOT", str(data_root))
        problems = []
        missing = [name for name in self.files if not (root / name).is_file()]
        if missing:
            problems.append(f"{len(missing)} of its {len(self.files)} files are missing under {root} "
                            f"(first: {missing[0]}); {how}")
        if self.requires and importlib.util.find_spec(self.requires) is None:
            problems.append(f"the Python package {self.requires} is not installed; {how}")
        return problems


@dataclass(frozen=True)
class Catalog:
    methods: dict[str, MethodInfo]
    models: tuple[str, ...]
    datasets: dict[str, DatasetFacts]
    explainers: tuple[str, ...]
    augmentations: tuple[str, ...]  # a dataset's `augment:` values
    compile_backends: tuple[str, ...] = ()
    grad_cam_models: tuple[str, ...] = ()  # models with a convolutional explanation layer (Grad-CAM applies)

    def method(self, name: str) -> MethodInfo:
        if name not in self.methods:
            raise KeyError(f"unknown method {name!r}; known methods: {', '.join(sorted(self.methods))}")
        return self.methods[name]

    def names(self, registry: str) -> tuple[str, ...]:
        """The names of ``registry`` (``datasets``, ``explainers``, ``augmentations``), as a config spells them."""
        return {"datasets": tuple(sorted(self.datasets)), "explainers": self.explainers,
                "augmentations": self.augmentations}[registry]

    def dataset(self, name: str) -> DatasetFacts:
        if name not in self.datasets:
            raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(self.datasets))}")
        return self.datasets[name]


@lru_cache(maxsize=1)
def registry_catalog() -> Catalog:
    """The catalog of the registries as this source defines them, from the cache when it has it."""
    path = cache_dir() / f"catalog-{source_digest()}.json"
    try:
        return _from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    data = _from_registries()
    try:
        atomic_write_json(path, data)
    except (OSError, FileRefused):  # the cache is an optimisation: an unwritable one is not an error
        pass
    return _from_json(data)


def cache_dir() -> Path:
    if os.environ.get("INTROSPECT_CACHE_DIR"):
        return Path(os.environ["INTROSPECT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "introspect"


def source_digest() -> str:
    digest = hashlib.sha256(f"catalog v{CATALOG_VERSION}".encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _from_registries() -> dict:
    from ..data import AUGMENTATIONS, available_datasets, dataset_source
    from ..explain import available_explainers
    from ..methods import available_methods, hyperparameter_names, method_class
    from ..methods.base import hyperparameter_specs
    from ..models import available_models

    methods = {}
    for name in available_methods():
        cls = method_class(name)
        methods[name] = {"hyperparameters": hyperparameter_names(cls), "needs_teacher": bool(cls.needs_teacher),
                         "hyperparameter_specs": hyperparameter_specs(cls)}
    datasets = {name: {f.name: getattr(dataset_source(name), f.name) for f in dataclasses.fields(DatasetFacts)}
                for name in available_datasets()}
    return {"version": CATALOG_VERSION, "methods": methods, "models": available_models(), "datasets": datasets,
            "explainers": list(available_explainers()), "augmentations": list(AUGMENTATIONS),
            "compile_backends": _compile_backends(), "grad_cam_models": _grad_cam_models()}


def _grad_cam_models() -> list[str]:
    """The models whose forward pass yields a convolutional explanation layer (asked of each model on a
    small batch: the models say it, not a list kept here)."""
    import torch

    from ..models import available_models, build_model

    found = []
    for name in available_models():
        model = build_model(name, 10, (3, 32, 32)).eval()
        with torch.no_grad():
            if model.forward_features(torch.zeros(2, 3, 32, 32)).explain_features is not None:
                found.append(name)
    return found


def _compile_backends() -> list[str]:
    """torch.compile's backends, the debugging ones (eager, aot_eager) included."""
    try:
        from torch._dynamo import list_backends

        return sorted(list_backends(exclude_tags=()))
    except Exception:  # a torch without dynamo: no backend to offer  # noqa: BLE001
        return []


def _from_json(data: dict) -> Catalog:
    if data["version"] != CATALOG_VERSION:
        raise ValueError("catalog version")
    methods = {name: MethodInfo(tuple(info["hyperparameters"]), bool(info["needs_teacher"]),
                                dict(info["hyperparameter_specs"]))
               for name, info in data["methods"].items()}
    datasets = {name: DatasetFacts(**{**facts, "files": tuple(facts["files"])})
                for name, facts in data["datasets"].items()}
    return Catalog(methods, tuple(data["models"]), datasets, tuple(data["explainers"]), tuple(data["augmentations"]),
                   tuple(data["compile_backends"]), tuple(data["grad_cam_models"]))
