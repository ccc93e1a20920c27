"""How metrics reach the store, as pure functions: which executor can serve which collector
(asked of their capabilities), the argv and env a trial gets, and a trial's metrics read back
from stored observations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
import support

from tuner.controller._checks import check_runnable
from tuner.controller._collection import (
    collection_problem,
    metrics_file,
    stored_summary,
    trial_command,
)
from tuner.controller._errors import ExperimentRefusedError
from tuner.executors import Executor, get_executor_class
from tuner.spec import Experiment
from tuner.store import MetricSummary, Observation

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def experiment(collector: dict[str, Any]) -> Experiment:
    return support.experiment(
        "exp",
        command=["t", "${trialParameters.x}"],
        parameters=[support.int_parameter("x", 0, 9)],
        image=None,
        namespace="team",
        metricsCollectorSpec=collector,
    )


def kind(name: str) -> dict[str, Any]:
    return {"collector": {"kind": name}}


class RemoteExecutor(Executor):
    """An executor as the checks see it: only its capabilities (its trials run elsewhere)."""

    name = "remote"
    shares_host = False


# The checks take the class and ask only its capabilities; it is never instantiated.
REMOTE = cast(type[Executor], RemoteExecutor)


@pytest.mark.parametrize("name", ["File", "Push"])
def test_file_and_push_need_an_executor_sharing_this_host(name: str) -> None:
    problem = collection_problem(experiment(kind(name)), REMOTE)

    assert problem is not None
    assert problem.startswith(f"metricsCollectorSpec.collector.kind: '{name}' ")
    assert "which only the local executor offers" in problem
    assert problem.endswith("with the remote executor use StdOut")
    assert collection_problem(experiment(kind(name)), get_executor_class("local")) is None


@pytest.mark.parametrize("name", ["StdOut", "None"])
def test_stdout_and_none_work_with_any_executor(name: str) -> None:
    assert collection_problem(experiment(kind(name)), REMOTE) is None


def test_a_kind_without_a_collector_is_refused_before_a_run() -> None:
    with pytest.raises(ExperimentRefusedError) as caught:
        check_runnable(experiment(kind("TensorFlowEvent")), get_executor_class("local"))
    assert str(caught.value).startswith(
        "spec.metricsCollectorSpec.collector.kind: 'TensorFlowEvent' is not supported by tuner"
    )


def test_a_trial_gets_its_name_and_the_dbmanager_over_the_containers_env() -> None:
    argv, env = trial_command(
        experiment(kind("StdOut")),
        ["t", "1"],
        {"KATIB_TRIAL_NAME": "wrong", "A": "b"},
        "exp-abc",
        "127.0.0.1:4000",
        None,
    )

    assert argv == ["t", "1"]
    assert env == {
        "A": "b",
        "KATIB_TRIAL_NAME": "exp-abc",
        "TUNER_DBMANAGER_ADDRESS": "127.0.0.1:4000",
    }


def test_the_default_metrics_path_is_replaced_wherever_argv_and_env_name_it(
    tmp_path: Path,
) -> None:
    spec = experiment({"collector": {"kind": "File"}})
    file = metrics_file(spec, "exp-abc", tmp_path)
    assert file is not None and file.remapped

    argv, env = trial_command(
        spec,
        ["t", "--log=/var/log/katib/metrics.log", "/var/log/katib/other.log"],
        {"LOG": "/var/log/katib/metrics.log"},
        "exp-abc",
        None,
        file.path,
    )

    own = str(tmp_path / "exp-abc" / "metrics.log")
    assert argv == ["t", f"--log={own}", "/var/log/katib/other.log"]
    assert env["LOG"] == own
    assert env["TUNER_METRICS_FILE"] == own
    assert "TUNER_DBMANAGER_ADDRESS" not in env


def test_a_metrics_path_naming_the_trial_is_not_remapped(tmp_path: Path) -> None:
    spec = experiment(
        {
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": "/m/${trialSpec.Name}.log", "kind": "File"}},
        }
    )

    file = metrics_file(spec, "exp-abc", tmp_path)

    assert file is not None
    assert (file.path, file.remapped) == (Path("/m/exp-abc.log"), False)
    assert metrics_file(experiment(kind("Push")), "exp-abc", tmp_path) is None


def test_the_stored_summary_takes_latest_by_timestamp_and_only_the_objectives_metrics() -> None:
    def obs(metric: str, value: float, seconds: int) -> Observation:
        return Observation("t", metric, value, None, T0 + timedelta(seconds=seconds))

    # In the store's order: timestamp, then arrival.
    stored = [obs("loss", 3.0, 0), obs("loss", 1.0, 1), obs("other", 7.0, 1), obs("loss", 2.0, 2)]

    assert stored_summary(stored, ["loss", "acc"]) == {"loss": MetricSummary(1.0, 3.0, 2.0)}
