"""Early-stopping algorithms (medianstop, asha), registered by Katib name; no gRPC inside."""

from __future__ import annotations

from suggestion.algorithms import UnknownAlgorithmError
from suggestion.earlystopping._asha import Asha
from suggestion.earlystopping._base import (
    Comparison,
    EarlyStoppingAlgorithm,
    Report,
    StoppingRule,
)
from suggestion.earlystopping._medianstop import MedianStop
from tuner.registry import Registry

ALGORITHMS: Registry[type[EarlyStoppingAlgorithm]] = Registry(
    "early-stopping algorithm",
    {MedianStop.name: MedianStop, Asha.name: Asha},
    unknown=UnknownAlgorithmError,
)


def names() -> list[str]:
    return ALGORITHMS.names()


def get(name: str) -> type[EarlyStoppingAlgorithm]:
    """The early-stopping algorithm ``name``; UnknownAlgorithmError lists the known ones."""
    return ALGORITHMS.get(name)


__all__ = [
    "ALGORITHMS",
    "Asha",
    "Comparison",
    "EarlyStoppingAlgorithm",
    "MedianStop",
    "Report",
    "StoppingRule",
    "get",
    "names",
]
