"""Executors run trials: a local process group (``local``) or a Kubernetes Job
(``kubernetes``, whose client is imported only when that executor is created).

The controller picks one by name (:func:`create_executor`), calls ``prepare`` once per
experiment, then for each trial ``launch`` → ``poll`` … → Outcome while reading
``open_output``, ``cleanup`` once it is recorded, ``kill`` to cancel, and ``adopt`` / ``find``
after a restart. :func:`render_job_manifests` gives the Jobs of trials without a cluster.
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
    TrialOutput,
    UnknownExecutorError,
)
from tuner.executors._kubernetes_jobs import render_job_manifests
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
    "TrialOutput",
    "UnknownExecutorError",
    "create_executor",
    "executor_names",
    "get_executor_class",
    "register_executor",
    "render_job_manifests",
]
