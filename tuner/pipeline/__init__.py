"""Tuning as a pipeline step: Kubeflow Pipelines v2 components and the kfp-free step they run.

`tune` (lightweight) and `tune_op_container` (container) need the `pipeline` extra (kfp 2.x),
imported on first use; `run_tuning` and `python -m tuner.pipeline` need tuner only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.pipeline.step import StepError, TuningFailedError, TuningResult, run_tuning

if TYPE_CHECKING:
    from tuner.pipeline._components import (
        DEFAULT_IMAGE,
        tune,
        tune_component,
        tune_container_component,
        tune_op_container,
    )

# Served lazily so that the container step, which imports this package, runs without kfp.
_KFP_NAMES = frozenset(
    {"DEFAULT_IMAGE", "tune", "tune_component", "tune_container_component", "tune_op_container"}
)

__all__ = [
    "DEFAULT_IMAGE",
    "StepError",
    "TuningFailedError",
    "TuningResult",
    "run_tuning",
    "tune",
    "tune_component",
    "tune_container_component",
    "tune_op_container",
]


def __getattr__(name: str) -> Any:
    if name in _KFP_NAMES:
        try:
            from tuner.pipeline import _components
        except ModuleNotFoundError as e:
            if (e.name or "").partition(".")[0] != "kfp":
                raise
            raise ImportError(
                f"tuner.pipeline.{name} needs Kubeflow Pipelines: pip install 'tuner[pipeline]'"
            ) from e
        return getattr(_components, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
