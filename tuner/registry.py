"""One shape for every extension point's registry (algorithms, early-stopping algorithms,
executors, metrics collectors): implementations by name, imported on first use.

Public and free of other tuner imports, so that any layer (``suggestion`` included) can keep
its registry with it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class UnknownNameError(LookupError):
    """The default error of :meth:`Registry.get`: nothing is registered under ``name``."""

    def __init__(self, name: str, known: Sequence[str], what: str = "name") -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"{name!r} is not a known {what}; known: {', '.join(self.known)}")


class Registry(Generic[T]):
    """Implementations of one extension point by name.

    An entry is the implementation itself or ``"module:attribute"``, imported on the first
    :meth:`get` (so that a heavy library loads only when its implementation is used; an
    ImportError then propagates). :meth:`get` of an unknown name raises
    ``unknown(name, known_names)``. Thread-safe.
    """

    def __init__(
        self,
        what: str,
        entries: dict[str, T | str] | None = None,
        *,
        unknown: Callable[[str, Sequence[str]], Exception] | None = None,
    ) -> None:
        self.what = what
        self._entries: dict[str, T | str] = {}
        self._unknown = unknown or (lambda name, known: UnknownNameError(name, known, what))
        self._lock = threading.Lock()
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, entry: T | str) -> None:
        """Register ``entry`` (an implementation, or ``"module:attribute"``) as ``name``;
        a later registration of the same name replaces it."""
        if not name:
            raise ValueError(f"name: a {self.what} name must not be empty")
        if isinstance(entry, str) and not _is_target(entry):
            raise ValueError(f"{self.what} {name!r}: {entry!r} is not 'module:attribute'")
        with self._lock:
            self._entries[name] = entry

    def names(self) -> list[str]:
        """The registered names, sorted."""
        with self._lock:
            return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._entries

    def get(self, name: str) -> T:
        """The implementation registered as ``name``."""
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            raise self._unknown(name, self.names())
        if not isinstance(entry, str):
            return entry
        module, _, attribute = entry.partition(":")
        loaded = cast(T, getattr(importlib.import_module(module), attribute))
        with self._lock:
            if self._entries.get(name) == entry:  # not replaced meanwhile
                self._entries[name] = loaded
        return loaded


def _is_target(text: str) -> bool:
    module, colon, attribute = text.partition(":")
    return bool(module and colon and attribute)
