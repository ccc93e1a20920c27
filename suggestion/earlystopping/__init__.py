"""Early-stopping algorithms (medianstop), registered by Katib name; no gRPC inside."""

from __future__ import annotations

from suggestion.algorithms import UnknownAlgorithmError
from suggestion.earlystopping._base import (
    Comparison,
    EarlyStoppingAlgorithm,
    StoppingRule,
)
from suggestion.earlystopping._medianstop import MedianStop

_REGISTRY: dict[str, type[EarlyStoppingAlgorithm]] = {MedianStop.name: MedianStop}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> type[EarlyStoppingAlgorithm]:
    """The early-stopping algorithm ``name``; UnknownAlgorithmError lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAlgorithmError(name, names()) from None


__all__ = [
    "Comparison",
    "EarlyStoppingAlgorithm",
    "MedianStop",
    "StoppingRule",
    "get",
    "names",
]
