"""The one interface every training method implements, and the registry that finds methods by name.

A method sees one training step (:class:`StepContext`) and returns named loss terms, already
weighted; the training loop sums them, steps the optimiser and logs each term. To add a method,
write one small module with a dataclass subclass of :class:`Method` decorated with
:func:`register_method`, and name it in the config.

The interface, all of it:

- ``loss(ctx)``: the weighted loss terms of one batch (required).
- ``needs``: what the loop must provide, declared, never special-cased by the loop:
  :data:`TEACHER_OUTPUTS` (a trained teacher's forward pass of every batch in ``ctx.teacher``),
  :data:`TEACHER_MODULE` (the frozen teacher network itself in ``ctx.teacher_module``, e.g. for its
  gradients) and :data:`EAGER_ONLY` (the step must not run under ``torch.compile``). A method whose
  needs depend on its hyper-parameters overrides ``requirements()``.
- ``setup(student, teacher, input_shape)``: build trainable modules of its own (optional).
- ``needs_input_grad(epoch)``, ``stage(epoch)``, ``model_options()``: optional, see each.
- Diagnostics: ``ctx.count_dead_explanations(maps)`` records the share of all-zero explanation maps
  among those the method learns from (``epochs.csv`` column ``dead_explanations``; LE also records
  ``dead_maps_all_classes``); a diagnostic is never added to the loss.

A method's fields are its hyper-parameters: their type annotations and
:func:`~introspect.methods.hyperparameters.hp` metadata (ranges, choices) are checked when the method is
built and, through the registries' catalog, when a config is planned.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..models.base import Forward
from .hyperparameters import HP_KEY, field_spec, value_problem

TEACHER_OUTPUTS = "teacher_outputs"
TEACHER_MODULE = "teacher_module"
EAGER_ONLY = "eager_only"
NEEDS = frozenset({TEACHER_OUTPUTS, TEACHER_MODULE, EAGER_ONLY})
# The diagnostics' names, also their epochs.csv columns (train.progress.EPOCH_COLUMNS):
DEAD_EXPLANATIONS = "dead_explanations"  # share of the maps a method learns from that are all zero
DEAD_MAPS_ALL_CLASSES = "dead_maps_all_classes"  # LE: share of every class's map (the rejected classes' too)
DIAGNOSTICS = (DEAD_EXPLANATIONS, DEAD_MAPS_ALL_CLASSES)


@dataclass
class StepContext:
    """Everything a method may use to compute its loss for one mini-batch."""

    x: Tensor
    y: Tensor
    out: Forward
    model: nn.Module
    epoch: int
    num_classes: int
    generator: torch.Generator | None = None
    teacher: Forward | None = None  # with TEACHER_OUTPUTS
    step: int = 0  # index of the mini-batch within the epoch
    teacher_module: nn.Module | None = None  # with TEACHER_MODULE
    # name -> (count on the device, number of samples it is out of); read by the loop once per epoch
    diagnostics: dict[str, tuple[Tensor, int]] = dataclasses.field(default_factory=dict)

    def count_dead_explanations(self, maps: Tensor, name: str = DEAD_EXPLANATIONS) -> None:
        """Record under ``name`` (one of :data:`DIAGNOSTICS`) how many of these explanation maps
        ``(count, ...)`` are all zero (e.g. a Grad-CAM whose ReLU cut everything). The count stays on the
        device: reading it here would make the host wait at every step."""
        if name not in DIAGNOSTICS:
            raise ValueError(f"unknown diagnostic {name!r}; known: {', '.join(DIAGNOSTICS)}")
        dead = maps.detach().flatten(1).ne(0).any(dim=1).logical_not().sum()
        self.diagnostics[name] = (dead, len(maps))

    def teacher_network(self) -> nn.Module:
        if self.teacher_module is None:
            raise ValueError("this method needs the teacher network: declare TEACHER_MODULE in its `needs`")
        return self.teacher_module


@dataclass
class Method:
    """Base class. Subclasses are dataclasses whose fields are the method's hyper-parameters."""

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()  # what the loop provides: see the module's docstring
    needs_teacher: ClassVar[bool] = False  # derived from `needs`: the run needs a trained teacher

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = sorted(set(cls.needs) - NEEDS)
        if unknown:
            raise TypeError(f"{cls.__name__}.needs has unknown entries {unknown}; known: {sorted(NEEDS)}")
        cls.needs_teacher = bool({TEACHER_OUTPUTS, TEACHER_MODULE} & cls.needs)

    def requirements(self) -> frozenset[str]:
        """What this instance needs from the loop (``needs``, unless hyper-parameters change it)."""
        return type(self).needs

    def __post_init__(self) -> None:
        for name, spec in hyperparameter_specs(type(self)).items():
            if problem := value_problem(getattr(self, name), spec):
                raise ValueError(f"{self.name}.{name}: {problem}")

    def loss(self, ctx: StepContext) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def setup(self, student: nn.Module, teacher: nn.Module | None, input_shape: tuple[int, ...]) -> nn.Module | None:
        """Build trainable modules of the method's own (e.g. a FitNets regressor). The loop trains
        and checkpoints them with the student. Called once, before the optimiser is built."""
        return None

    def teacher_output(self, ctx: StepContext) -> Forward:
        if ctx.teacher is None:
            raise ValueError(f"method {self.name!r} needs a teacher: give the run a teacher checkpoint")
        return ctx.teacher

    def model_options(self) -> dict[str, Any]:
        """Keyword arguments the model must be built with (e.g. a dropout rate)."""
        return {}

    def needs_input_grad(self, epoch: int) -> bool:
        """Whether the loop must make ``x`` require grad before the forward pass of ``epoch``."""
        return False

    def stage(self, epoch: int) -> int:
        """Training stage of ``epoch`` for the logs (LE: 1 = warm-up, 2 = explanation targets)."""
        return 1

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's fields (not modules a method builds for itself)."""
        return {name: getattr(self, name) for name in hyperparameter_names(type(self))}


def checked_loss_terms(method: Method, terms: Any) -> dict[str, Tensor]:
    """``method.loss(ctx)``'s result, checked: a mapping of term names to scalar floating-point tensors. A new
    method's mistake (a per-sample loss left unreduced, a float) is an error naming the method and the term,
    not a torch traceback from the backward pass. Shapes and dtypes only: no value is read (a NaN is found
    when the epoch's terms are read, :func:`introspect.train.records.epoch_sums`)."""
    if not isinstance(terms, dict) or not terms:
        raise TypeError(f"method {method.name!r}: loss() must return a dict of named loss terms, "
                        f"not {type(terms).__name__}")
    for key, term in terms.items():
        if not isinstance(term, Tensor) or not term.is_floating_point():
            what = type(term).__name__ if not isinstance(term, Tensor) else f"a {term.dtype} tensor"
            raise TypeError(f"method {method.name!r}: loss term {key!r} is {what}; it must be a scalar "
                            "floating-point tensor computed from the step's outputs")
        if term.dim() != 0:
            raise ValueError(f"method {method.name!r}: loss term {key!r} has shape {tuple(term.shape)}; it must "
                             "be a scalar: reduce it (e.g. .mean() over the batch)")
    return terms


_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a class attribute `name`")
    if cls.name in _METHODS:
        raise ValueError(f"method {cls.name!r} is registered twice")
    _METHODS[cls.name] = cls
    return cls


def available_methods() -> list[str]:
    return sorted(_METHODS)


def method_class(name: str) -> type[Method]:
    if name not in _METHODS:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(available_methods())}")
    return _METHODS[name]


def hyperparameter_names(cls: type[Method]) -> list[str]:
    """A method's hyper-parameters: its constructor's fields (not modules it builds for itself)."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def hyperparameter_specs(cls: type[Method]) -> dict[str, dict[str, Any]]:
    """Type and range of each hyper-parameter: ``{"temperature": {"type": "number", "gt": 0}}``, from the
    field's annotation and its ``hp`` metadata. A subclass field that only changes the default keeps the
    range of the parent's field of the same name."""
    specs = {}
    for f in dataclasses.fields(cls):
        if f.init:
            declared = [g.metadata for klass in cls.__mro__ if dataclasses.is_dataclass(klass)
                        for g in dataclasses.fields(klass) if g.name == f.name and HP_KEY in g.metadata]
            specs[f.name] = field_spec(f.type, declared[0] if declared else {})
    return specs


def build_method(name: str, **hyperparameters: Any) -> Method:
    """Instantiate a registered method; unknown hyper-parameters are an error that names them."""
    cls = method_class(name)
    known = set(hyperparameter_names(cls))
    unknown = sorted(set(hyperparameters) - known)
    if unknown:
        raise ValueError(
            f"method {name!r} has no hyper-parameter(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(sorted(known)) or 'none'}"
        )
    return cls(**hyperparameters)
