"""Suggestion algorithms behind one small interface, registered by Katib algorithm name.

Algorithms never import gRPC: they take a `tuner.space.SearchSpace`, a `Goal`, parsed
settings and `TrialView`s, and return typed assignments. See `Algorithm` for the contract.
"""

from __future__ import annotations

from suggestion.algorithms._base import (
    Algorithm,
    AlgorithmError,
    Cancelled,
    Goal,
    SettingsError,
    SpaceNotSupportedError,
    TrialState,
    TrialView,
    UnknownAlgorithmError,
)
from suggestion.algorithms._registry import get, names

__all__ = [
    "Algorithm",
    "AlgorithmError",
    "Cancelled",
    "Goal",
    "SettingsError",
    "SpaceNotSupportedError",
    "TrialState",
    "TrialView",
    "UnknownAlgorithmError",
    "get",
    "names",
]
