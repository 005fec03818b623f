"""A registry of named entries (datasets, explainers): classes register themselves by their ``name``
attribute with a decorator and are looked up by name. One instance of each class is kept."""
from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # "dataset", "explainer": named in the error messages
        self._entries: dict[str, T] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: registers one instance of ``cls`` under ``cls.name``."""
        name = getattr(cls, "name", None)
        if not name:
            raise ValueError(f"{cls.__name__} must set a class attribute `name`")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = cls()
        return cls

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def get(self, name: str) -> T:
        """The entry called ``name``; a KeyError listing the known names otherwise."""
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}")
        return self._entries[name]
