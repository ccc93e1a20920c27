"""Executors run trials: a local process group (``local``) or a Kubernetes Job
(``kubernetes``, whose client is imported only when that executor is created).

The controller picks one by name (:func:`get_executor_class`, then ``create`` from the
caller's :class:`ExecutorOptions`), calls ``prepare`` once per experiment, then for each
trial ``launch`` → ``poll`` … → Outcome while reading ``open_output``, ``cleanup`` once it is
recorded, ``kill`` to cancel, and ``adopt`` / ``find`` after a restart. Callers ask an
executor what it can do through the capabilities of :class:`Executor` (``shares_host``,
``run_dir``, ``check_template``, ``dry_run``...), never which one it is.
:func:`render_job_manifests` gives the Jobs of trials without a cluster.
"""

from __future__ import annotations

from tuner.executors._base import (
    DEFAULT_RUN_DIR,
    Executor,
    ExecutorError,
    ExecutorOptions,
    ExitReason,
    InvalidReferenceError,
    LaunchError,
    LaunchPlanner,
    LaunchRequest,
    Outcome,
    ResourcesBusyError,
    TrialHandle,
    TrialOutput,
    UnknownExecutorError,
)
from tuner.executors._kubernetes_jobs import render_job_manifests
from tuner.executors._local import LocalExecutor, LocalTrialHandle
from tuner.executors._registry import (
    DEFAULT_EXECUTOR,
    EXECUTORS,
    create_executor,
    executor_classes,
    executor_names,
    get_executor_class,
    register_executor,
)

__all__ = [
    "DEFAULT_EXECUTOR",
    "DEFAULT_RUN_DIR",
    "EXECUTORS",
    "Executor",
    "ExecutorError",
    "ExecutorOptions",
    "ExitReason",
    "InvalidReferenceError",
    "LaunchError",
    "LaunchPlanner",
    "LaunchRequest",
    "LocalExecutor",
    "LocalTrialHandle",
    "Outcome",
    "ResourcesBusyError",
    "TrialHandle",
    "TrialOutput",
    "UnknownExecutorError",
    "create_executor",
    "executor_classes",
    "executor_names",
    "get_executor_class",
    "register_executor",
    "render_job_manifests",
]
