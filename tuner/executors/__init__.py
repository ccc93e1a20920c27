"""Executors run trials: a local process group (``local``) or a Kubernetes Job
(``kubernetes``, whose client is imported only when that executor is created).

The controller picks one by name (:func:`get_executor_class`, then ``create`` from the
caller's :class:`ExecutorOptions`), calls ``prepare`` once per experiment, then for each
trial ``launch`` → ``poll`` … → Outcome while reading ``open_output``, ``cleanup`` once it is
recorded, ``kill`` to cancel, and ``adopt`` / ``find`` after a restart. Callers ask an
executor what it can do through the capabilities of :class:`Executor` (``shares_host``,
``run_dir``, ``check_template``, ``dry_run``...), never which one it is.
:func:`render_job_manifests` gives the Jobs of trials without a cluster.

The implementations load on first use (``LocalExecutor``, ``render_job_manifests``), so
that what only needs the contract or the names (``tuner --help``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports
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
from tuner.executors._registry import (
    DEFAULT_EXECUTOR,
    EXECUTORS,
    create_executor,
    executor_classes,
    executor_names,
    get_executor_class,
    register_executor,
)

if TYPE_CHECKING:
    from tuner.executors._kubernetes_jobs import render_job_manifests
    from tuner.executors._local import LocalExecutor, LocalTrialHandle

# Exported name -> the module that defines it, imported when the name is first asked for.
_LAZY = {
    "LocalExecutor": "tuner.executors._local",
    "LocalTrialHandle": "tuner.executors._local",
    "render_job_manifests": "tuner.executors._kubernetes_jobs",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
