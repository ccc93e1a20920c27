"""Executors by name (``--executor NAME``): adding one is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuner.executors._base import Executor, UnknownExecutorError
from tuner.registry import Registry

DEFAULT_EXECUTOR = "local"
"""The executor of a run that names none: trials are processes on this machine."""

# Imported only when asked for, so that e.g. the kubernetes client loads only when used.
EXECUTORS: Registry[type[Executor]] = Registry(
    "executor",
    {
        DEFAULT_EXECUTOR: "tuner.executors._local:LocalExecutor",
        "kubernetes": "tuner.executors._kubernetes:KubernetesExecutor",
    },
    unknown=UnknownExecutorError,
)


def register_executor(name: str, executor: str | type[Executor]) -> None:
    """Register ``executor`` (a class, or ``"module:Class"`` to import lazily) as ``name``."""
    EXECUTORS.register(name, executor)


def executor_names() -> list[str]:
    """The registered executor names, sorted."""
    return EXECUTORS.names()


def get_executor_class(name: str) -> type[Executor]:
    """The executor class registered as ``name``; UnknownExecutorError lists the known ones."""
    return EXECUTORS.get(name)


def executor_classes(
    where: Callable[[type[Executor]], bool] = lambda cls: True,
) -> list[type[Executor]]:
    """The registered executor classes for which ``where`` holds (a question about their
    capabilities: ``lambda cls: cls.shares_host``), in name order, for messages that say
    which executor would do. Each is imported; those whose optional dependencies are not
    installed are left out."""
    found = []
    for name in executor_names():
        try:
            cls = get_executor_class(name)
        except ImportError:
            continue
        if where(cls):
            found.append(cls)
    return found


def create_executor(name: str, /, **options: Any) -> Executor:
    """An instance of the executor ``name``, built with its own keyword options
    (``local``: ``run_dir``, ``default_working_dir``, ``grace_period_seconds``...)."""
    return get_executor_class(name)(**options)
