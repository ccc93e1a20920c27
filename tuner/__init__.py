"""tuner: hyperparameter tuning in the style of Kubeflow Katib, locally or on Kubernetes.

Names exported here are imported lazily, on first use, so that ``import tuner`` in a
training script stays cheap (no gRPC, no database driver until a function needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner._report import report_metrics
    from tuner.api import (
        Categorical,
        Discrete,
        Double,
        Experiment,
        ExperimentNotFoundError,
        Int,
        InvalidExperimentError,
        Result,
        RunError,
        TrialResult,
        TunerError,
        load,
    )

# Exported name -> the module that defines it.
_LAZY = {
    "report_metrics": "tuner._report",
    # The Python API (docs/python-api.md).
    **dict.fromkeys(
        (
            "Categorical",
            "Discrete",
            "Double",
            "Experiment",
            "ExperimentNotFoundError",
            "Int",
            "InvalidExperimentError",
            "Result",
            "RunError",
            "TrialResult",
            "TunerError",
            "load",
        ),
        "tuner.api",
    ),
}

__all__ = [
    "Categorical",
    "Discrete",
    "Double",
    "Experiment",
    "ExperimentNotFoundError",
    "Int",
    "InvalidExperimentError",
    "Result",
    "RunError",
    "TrialResult",
    "TunerError",
    "load",
    "report_metrics",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
