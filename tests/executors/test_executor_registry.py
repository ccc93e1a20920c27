"""The executor registry: lookup by name, unknown names listed, lazy registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.executors import (
    LocalExecutor,
    UnknownExecutorError,
    create_executor,
    executor_names,
    get_executor_class,
)


def test_local_executor_is_registered_under_local(tmp_path: Path) -> None:
    assert "local" in executor_names()
    assert get_executor_class("local") is LocalExecutor
    executor = create_executor("local", run_dir=tmp_path / "run")
    assert isinstance(executor, LocalExecutor)
    assert executor.run_dir == tmp_path / "run"


def test_unknown_executor_lists_the_known_ones() -> None:
    with pytest.raises(UnknownExecutorError) as info:
        get_executor_class("slurm")
    assert str(info.value).startswith("executor: 'slurm' is not a known executor")
    assert "local" in str(info.value)
