"""Executors run trials: a local process group (``local``) now, Kubernetes Jobs later.

The controller picks one by name (:func:`create_executor`), then for each trial calls
``launch`` → ``poll`` … → Outcome, ``kill`` to cancel, and ``adopt`` after a restart.
"""

from __future__ import annotations

from tuner.executors._base import (
    Executor,
    ExecutorError,
    ExitReason,
    InvalidReferenceError,
    LaunchError,
    Outcome,
    TrialHandle,
    UnknownExecutorError,
)
from tuner.executors._local import LocalExecutor, LocalTrialHandle
from tuner.executors._registry import (
    create_executor,
    executor_names,
    get_executor_class,
    register_executor,
)

__all__ = [
    "Executor",
    "ExecutorError",
    "ExitReason",
    "InvalidReferenceError",
    "LaunchError",
    "LocalExecutor",
    "LocalTrialHandle",
    "Outcome",
    "TrialHandle",
    "UnknownExecutorError",
    "create_executor",
    "executor_names",
    "get_executor_class",
    "register_executor",
]
