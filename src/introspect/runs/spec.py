"""A run specification: everything that determines one training run's numbers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .typed import encode

# The closed sets of the run spec's choices, written once (the config schema gets its enums from here).
Split = Literal["fixed", "per_seed"]
Loader = Literal["device", "dataloader"]
AmpMode = Literal["none", "bf16"]
BatchedBackward = Literal["auto", "vmap", "loop"]
SPLITS: tuple[str, ...] = get_args(Split)
LOADERS: tuple[str, ...] = get_args(Loader)
AMP_MODES: tuple[str, ...] = get_args(AmpMode)
BATCHED_BACKWARDS: tuple[str, ...] = get_args(BatchedBackward)


@dataclass(frozen=True)
class Budget:
    """Optimiser and schedule, as the config's ``budgets`` section names them and a run spec holds them (one
    type for both; the defaults here are the schema's too). ``lr_milestones`` are fractions of ``epochs``
    (the paper's 80 and 120 of 160 are 0.5 and 0.75), so a shorter run keeps the schedule's shape."""

    epochs: int
    batch_size: int
    lr: float
    lr_milestones: tuple[float, ...] = ()
    lr_gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Budget:
        return cls(**{**data, "lr_milestones": tuple(data.get("lr_milestones", ()))})

    def to_dict(self) -> dict[str, Any]:
        """The budget as JSON data (the run record's and the table notes' form)."""
        return encode(self)

    def milestone_epochs(self) -> list[int]:
        return [int(round(m * self.epochs)) for m in self.lr_milestones]

    def lr_at(self, epoch: int) -> float:
        drops = sum(epoch >= m for m in self.milestone_epochs())
        return self.lr * self.lr_gamma**drops


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's settings that determine a run's numbers: a config's ``datasets`` entry (``name`` is its
    ``source``) and a run spec's ``dataset`` (one type for both; the defaults here are the schema's too). Where
    the data lives is a job option (:attr:`RunSpec.data_root`), not part of it."""

    name: str  # a registered dataset source
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    image_size: int | None = None  # None: the source's own size
    augment: str | None = None  # None: the source's default augmentation
    split_seed: int = 0
    loader: Loader = "device"  # "device": one tensor, batched augmentation; "dataloader": per-sample, DataLoader
    loader_workers: int = 0
    # "fixed" (None: not given): one split (split_seed) for every run; "per_seed": the test split is drawn with
    # the run's seed (datasets without a test set of their own), the validation split stays fixed
    split: Split | None = None

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"dataset.split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.loader not in LOADERS:
            raise ValueError(f"dataset.loader must be one of {', '.join(LOADERS)}, not {self.loader!r}")

    @property
    def resolved_split(self) -> Split:
        return self.split or SPLITS[0]

    def test_seed(self, run_seed: int) -> int | None:
        """The seed the test split is drawn with for a run of ``run_seed`` (None: the fixed split)."""
        return run_seed if self.split == "per_seed" else None

    def to_dict(self) -> dict[str, Any]:
        """The settings as a run record holds them: the optional ones only where given (so a record's identity,
        and with it its run's, does not depend on how this type spells an unset option)."""
        return {k: v for k, v in encode(self).items() if v is not None}


@dataclass(frozen=True)
class Performance:
    """How a run executes on its device (the config's ``performance`` section and the run spec's; the
    defaults here are the schema's too). ``channels_last`` and ``compile`` change only speed (up to
    floating-point summation order); ``amp="bf16"`` computes in bfloat16 under autocast, which changes
    rounding. ``channels_last`` is on by default: with it a CPU step of our CNNs and ResNets takes
    0.70-0.92x as long (oneDNN's NHWC convolutions; only CNN-10 on 9px digits is slower, 1.06-1.09x;
    bench/step_time.py --layouts), and GPU convolutions prefer the layout as well."""

    channels_last: bool = True
    amp: AmpMode = "none"
    compile: str | None = None  # a torch.compile backend, e.g. "inductor"
    # CUDA only: TF32 convolutions and matrix products (a 10-bit mantissa; cuDNN's own default on Ampere and
    # later). Off: fp32 arithmetic, as on the CPU. Changes numbers, so part of a run's identity when on.
    tf32: bool = False
    # LE's all-class backward (introspect.explain.gradients): auto (vmap on CUDA, loop elsewhere), vmap, loop
    batched_backward: BatchedBackward = "auto"
    # the CPU's own kernels instead of the pinned AVX2 set (introspect.kernels): faster on AVX-512 machines, numbers
    # no longer portable between CPUs; the workflow sets INTROSPECT_NATIVE_KERNELS=1 for its jobs
    native_kernels: bool = False

    def __post_init__(self) -> None:
        if self.amp not in AMP_MODES:
            raise ValueError(f"performance.amp must be one of {', '.join(AMP_MODES)}, not {self.amp!r}")
        if self.batched_backward not in BATCHED_BACKWARDS:
            raise ValueError(f"performance.batched_backward must be one of {', '.join(BATCHED_BACKWARDS)}, "
                             f"not {self.batched_backward!r}")

    def to_dict(self) -> dict[str, Any]:
        """The options as a run record holds them: the later ones only where they differ from their default,
        so adding an option changes no existing run's identity."""
        fields = self.__dataclass_fields__
        return {k: v for k, v in encode(self).items() if k not in LATER_OPTIONS or v != fields[k].default}


# options added after runs were recorded: at their defaults (the fields') they are left out of a record
LATER_OPTIONS = ("tf32", "batched_backward", "native_kernels")


@dataclass(frozen=True)
class RunOptions:
    """How a job runs a record without changing its numbers (so not its identity): where the data lives and
    the evaluation batch size. CLI flags, like device and threads; ``metrics.json`` records them. The defaults
    here are the config schema's and the run spec's too."""

    data_root: str = "data"
    eval_batch_size: int = 1000


@dataclass(frozen=True)
class RunSettings:
    """What a run record's ``spec`` holds: the settings the plan takes from the config's dataset, budget and
    performance sections, as the config model holds them (no copy, no dict in between)."""

    dataset: DatasetSpec
    budget: Budget
    performance: Performance

    def to_dict(self) -> dict[str, Any]:
        """The record file's form (its identity: the dataset's optional settings only where given)."""
        return {"dataset": self.dataset.to_dict(), "budget": self.budget.to_dict(),
                "performance": self.performance.to_dict()}


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    dataset: DatasetSpec
    model: str
    method: dict[str, Any]  # {"name": ..., **hyper-parameters}
    budget: Budget
    seed: int
    stop_epoch: int | None = None  # stop early (LE warm-up runs); the schedule still spans `epochs`
    init_from: str | None = None  # the saved model of a warm-up run to start from (model + optimiser)
    teacher: str | None = None  # the saved model of a trained teacher
    teacher_model: str | None = None  # the teacher's architecture as the plan names it (checked on loading)
    hyperparameters_from: str | None = None  # selection file whose "chosen" values complete `method`
    eval_batch_size: int = RunOptions.eval_batch_size
    fail_at_epoch: int | None = None  # failure injection for testing reruns
    performance: Performance = field(default_factory=Performance)
    data_root: str = RunOptions.data_root  # where the data lives (a job option; its JSON form is ``dataset.root``)

    def __post_init__(self) -> None:
        if "name" not in self.method:
            raise ValueError("run spec: method needs a 'name'")
        if self.stop_epoch is not None and not 0 < self.stop_epoch <= self.budget.epochs:
            raise ValueError(f"run spec: stop_epoch {self.stop_epoch} outside 1..{self.budget.epochs}")

    @property
    def last_epoch(self) -> int:
        return self.stop_epoch if self.stop_epoch is not None else self.budget.epochs

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        data = dict(data)
        known = set(cls.__dataclass_fields__) - {"data_root"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"run spec has unknown key(s): {', '.join(unknown)}")
        dataset = dict(data["dataset"])
        if "root" in dataset:
            data["data_root"] = dataset.pop("root")
        data["dataset"] = DatasetSpec(**dataset)
        data["budget"] = Budget.from_dict(data["budget"])
        data["performance"] = Performance(**data.get("performance", {}))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON data (a ``train --spec`` file, ``metrics.json``'s ``spec``): every dataset setting,
        the data's location as ``dataset.root``."""
        data = encode(self)
        data["dataset"].update(root=data.pop("data_root"), split=self.dataset.resolved_split)
        data["performance"] = self.performance.to_dict()
        return data

    def training_identity(self) -> dict[str, Any]:
        """What determines this run's numbers; a checkpoint must match it to resume. Without the options
        that change no numbers (where the data lives, the evaluation batch size), the failure injection and
        the paths of the checkpoints it starts from (their run ids are in ``run_id``)."""
        data = self.to_dict()
        for key in ("fail_at_epoch", "eval_batch_size", "init_from", "teacher", "teacher_model"):
            data.pop(key, None)
        data["dataset"].pop("root")
        return data

    def method_hyperparameters(self) -> dict[str, Any]:
        return {k: v for k, v in self.method.items() if k != "name"}
