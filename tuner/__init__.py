"""tuner: hyperparameter tuning in the style of Kubeflow Katib, locally or on Kubernetes.

Names exported here are imported lazily, on first use, so that ``import tuner`` in a
training script stays cheap (no gRPC, no database driver until a function needs them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports

if TYPE_CHECKING:
    from tuner._report import report_metrics
    from tuner.api import (
        Categorical,
        Discrete,
        Double,
        Experiment,
        Int,
        InvalidExperimentError,
        Result,
        RunError,
        TrialResult,
        delete,
        load,
    )
    from tuner.errors import TunerError
    from tuner.store import ExperimentNotFoundError

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
            "delete",
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
    "delete",
    "load",
    "report_metrics",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
