"""The one interface every training method implements, and the registry that finds methods by name.

A method sees one training step (:class:`StepContext`) and returns named loss terms, already
weighted; the training loop sums them, steps the optimiser and logs each term. To add a method,
write one small module with a dataclass subclass of :class:`Method` decorated with
:func:`register_method`, and name it in the config. Its fields are its hyper-parameters: their type
annotations and :func:`~introspect.methods.hyperparameters.hp` metadata (ranges, choices) are checked when the
method is built and, through the registries' catalog, when a config is planned.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..models.base import Forward
from .hyperparameters import HP_KEY, field_spec, value_problem


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
    teacher: Forward | None = None
    step: int = 0  # index of the mini-batch within the epoch


@dataclass
class Method:
    """Base class. Subclasses are dataclasses whose fields are the method's hyper-parameters."""

    name: ClassVar[str] = ""
    needs_teacher: ClassVar[bool] = False  # the loop then runs a frozen teacher on every batch

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
