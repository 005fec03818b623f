"""The explainer registry: one :class:`Explainer` per saliency method, found by name.

An explainer says how it explains a batch with a forward pass of its own (:meth:`Explainer.explain`)
and, where it can, from a training step's own forward pass (:meth:`Explainer.for_step`). What the
rest of the package must know about an explainer is a class attribute here (``needs_input_grad``,
``supports_compile``, ``takes_layer``), so no caller compares explainer names. To add one, write a
module in this package with a registered subclass and import it in ``explain/__init__.py``.
"""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from ..models.base import Forward
from ..registry import Registry


class Explainer:
    """Base class; subclasses set ``name`` and implement :meth:`explain`."""

    name: ClassVar[str] = ""
    # The step's input must require grad before its forward pass, so for_step can reuse that pass.
    needs_input_grad: ClassVar[bool] = False
    # False where a torch.compile'd forward would change the explanation (guided backprop swaps the
    # ReLU's backward, which a compiled graph would not see).
    supports_compile: ClassVar[bool] = True
    takes_layer: ClassVar[bool] = False  # explain(..., layer=) picks the explained activation

    def explain(self, model: nn.Module, x: Tensor, *, layer: nn.Module | str | None,
                create_graph: bool) -> Tensor:  # pragma: no cover - abstract
        """``(batch, classes, *spatial)`` from a forward pass of its own (grad enabled by the caller)."""
        raise NotImplementedError

    def for_step(self, model: nn.Module, x: Tensor, out: Forward, *, create_graph: bool) -> Tensor | None:
        """The explanations from the step's own forward pass ``out``, or ``None`` where that pass
        does not give each sample's own derivative (the caller then runs :meth:`explain`)."""
        return None


_EXPLAINERS: Registry[Explainer] = Registry("explainer")
register_explainer = _EXPLAINERS.register


def available_explainers() -> tuple[str, ...]:
    """The registered explainers, in registration order (the order of the docs and figures)."""
    return _EXPLAINERS.names()


def explainer_entry(name: str) -> Explainer:
    try:
        return _EXPLAINERS.get(name)
    except KeyError as error:  # callers (and their tests) expect a ValueError for a bad explainer argument
        raise ValueError(error.args[0]) from None
