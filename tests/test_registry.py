"""tuner.registry: the one registry shape of every extension point (algorithms, early
stopping, executors, collectors): lookup by name, unknown names listed, lazy import."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pytest

from tuner.registry import Registry, UnknownNameError


class NotFound(LookupError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"{name}: not one of {list(known)}")


def test_get_returns_what_was_registered_and_names_are_sorted() -> None:
    registry: Registry[type] = Registry("thing", {"b": int})
    registry.register("a", str)

    assert registry.get("a") is str and registry.get("b") is int
    assert registry.names() == ["a", "b"]
    assert "a" in registry and "c" not in registry


def test_an_unknown_name_raises_the_registrys_error_listing_the_known_names() -> None:
    registry: Registry[type] = Registry("thing", {"b": int, "a": str}, unknown=NotFound)
    with pytest.raises(NotFound, match=r"^c: not one of \['a', 'b'\]$"):
        registry.get("c")

    plain: Registry[type] = Registry("thing", {"a": str})
    with pytest.raises(UnknownNameError, match="^'c' is not a known thing; known: a$"):
        plain.get("c")


def test_a_module_attribute_entry_is_imported_on_first_get_only() -> None:
    registry: Registry[object] = Registry("thing", {"z": "tests_registry_lazy_target:VALUE"})
    assert "tests_registry_lazy_target" not in sys.modules
    with pytest.raises(ImportError):
        registry.get("z")  # the import happens here, and its error is not hidden

    registry.register("json", "json:dumps")
    import json

    assert registry.get("json") is json.dumps


def test_bad_registrations_are_refused() -> None:
    registry: Registry[type] = Registry("thing")
    with pytest.raises(ValueError, match="must not be empty"):
        registry.register("", int)
    with pytest.raises(ValueError, match="is not 'module:attribute'"):
        registry.register("x", "no-colon")


def test_every_extension_point_uses_it() -> None:
    import suggestion.algorithms as algorithms
    import suggestion.earlystopping as early_stopping
    from tuner.executors import EXECUTORS
    from tuner.metrics import COLLECTORS

    for registry in (early_stopping.ALGORITHMS, EXECUTORS, COLLECTORS):
        assert isinstance(registry, Registry)
        assert registry.names()
    with pytest.raises(algorithms.UnknownAlgorithmError) as caught:
        algorithms.get("nope")
    assert caught.value.known == tuple(algorithms.names())
