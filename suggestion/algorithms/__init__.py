"""Suggestion algorithms behind one small interface, registered by Katib algorithm name.

Algorithms never import gRPC: they take a `tuner.space.SearchSpace`, a `tuner.space.Direction`,
settings and `TrialView`s, and return typed assignments. See `Algorithm` for the contract.
"""

from __future__ import annotations

from suggestion.algorithms._base import (
    Algorithm,
    AlgorithmError,
    CancelledError,
    ObjectivesNotSupportedError,
    Proposal,
    SettingsError,
    SpaceNotSupportedError,
    TrialState,
    TrialView,
    UnknownAlgorithmError,
)
from suggestion.algorithms._registry import get, multi_objective_names, names
from suggestion.algorithms._settings import SettingSpec, integer, parse_settings
from suggestion.algorithms._table import TrialTable

__all__ = [
    "Algorithm",
    "AlgorithmError",
    "SettingSpec",
    "CancelledError",
    "ObjectivesNotSupportedError",
    "Proposal",
    "SettingsError",
    "SpaceNotSupportedError",
    "TrialState",
    "TrialTable",
    "TrialView",
    "UnknownAlgorithmError",
    "get",
    "integer",
    "multi_objective_names",
    "names",
    "parse_settings",
]
