"""Executors by name (``--executor NAME``): adding one is one module and one line here."""

from __future__ import annotations

import importlib
import threading
from typing import Any

from tuner.executors._base import Executor, UnknownExecutorError

# Imported only when asked for, so that e.g. the kubernetes client loads only when used.
_EXECUTORS: dict[str, str | type[Executor]] = {
    "local": "tuner.executors._local:LocalExecutor",
    "kubernetes": "tuner.executors._kubernetes:KubernetesExecutor",
}
_lock = threading.Lock()


def register_executor(name: str, executor: str | type[Executor]) -> None:
    """Register ``executor`` (a class, or ``"module:Class"`` to import lazily) as ``name``."""
    if not name:
        raise ValueError("name: an executor name must not be empty")
    with _lock:
        _EXECUTORS[name] = executor


def executor_names() -> list[str]:
    """The registered executor names, sorted."""
    with _lock:
        return sorted(_EXECUTORS)


def get_executor_class(name: str) -> type[Executor]:
    """The executor class registered as ``name``."""
    with _lock:
        target = _EXECUTORS.get(name)
    if target is None:
        raise UnknownExecutorError(
            f"executor: {name!r} is not a known executor; known executors:"
            f" {', '.join(executor_names())}"
        )
    if isinstance(target, str):
        module_name, _, class_name = target.partition(":")
        target = getattr(importlib.import_module(module_name), class_name)
        assert isinstance(target, type) and issubclass(target, Executor), target
    return target


def create_executor(name: str, /, **options: Any) -> Executor:
    """An instance of the executor ``name``, built with its own keyword options
    (``local``: ``run_dir``, ``default_working_dir``, ``grace_period_seconds``...)."""
    return get_executor_class(name)(**options)
