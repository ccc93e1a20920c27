"""medianstop over real gRPC, reading observation logs from a DBManager service.

The DBManager here is a stand-in for the controller's (a real gRPC server serving logs from
a dict): it is the other side of the wire contract, not code under test."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from tuner.protos import api_pb2, api_pb2_grpc

SUCCEEDED = api_pb2.TrialStatus.SUCCEEDED
RUNNING = api_pb2.TrialStatus.RUNNING
FAILED = api_pb2.TrialStatus.FAILED


class Logs(api_pb2_grpc.DBManagerServicer):
    def __init__(self) -> None:
        self.logs: dict[str, list[tuple[str, float]]] = {}
        self.reads: list[str] = []

    def GetObservationLog(self, request: Any, context: Any) -> Any:
        self.reads.append(request.trial_name)
        reply = api_pb2.GetObservationLogReply()
        for i, (name, value) in enumerate(self.logs.get(request.trial_name, [])):
            if request.metric_name and name != request.metric_name:
                continue
            reply.observation_log.metric_logs.add(
                time_stamp=f"2024-01-01T00:00:{i:02d}Z",
                metric=api_pb2.Metric(name=name, value=repr(value)),
            )
        return reply


@pytest.fixture(scope="module")
def db() -> Iterator[tuple[Logs, str]]:
    logs = Logs()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_DBManagerServicer_to_server(logs, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield logs, f"127.0.0.1:{port}"
    server.stop(None)


# Per-trial accuracy curves; the first four values average to 0.2, 0.5, 0.6, 0.65, 0.9.
# Their median is 0.6, their mean 0.57 (what Katib would report).
CURVES = {
    "t1": [0.1, 0.2, 0.2, 0.3, 0.9],
    "t2": [0.4, 0.5, 0.5, 0.6],
    "t3": [0.5, 0.6, 0.6, 0.7, 0.7, 0.7],
    "t4": [0.6, 0.6, 0.7, 0.7],
    "t5": [0.9, 0.9, 0.9, 0.9],
}


def trials(kit: Any, names: list[str], condition: int = SUCCEEDED) -> list[api_pb2.Trial]:
    return [
        kit.trial(n, {"lr": "0.1"}, condition=condition, value=0.5, metric="accuracy")
        for n in names
    ]


def rules_request(
    kit: Any,
    trial_list: list[api_pb2.Trial],
    address: str,
    goal: str = "maximize",
    settings: dict[str, str] | None = None,
) -> api_pb2.GetEarlyStoppingRulesRequest:
    experiment = kit.experiment(
        "random",
        [kit.param("lr", "double", min="0.01", max="0.2")],
        goal=goal,
        metric="accuracy",
        early_stopping="medianstop",
        early_stopping_settings=settings or {},
    )
    return api_pb2.GetEarlyStoppingRulesRequest(
        experiment=experiment, trials=trial_list, db_manager_address=address
    )


def load(logs: Logs, curves: dict[str, list[float]]) -> None:
    for name, values in curves.items():
        logs.logs[name] = [("loss", 1.0 - v) for v in values] + [("accuracy", v) for v in values]


def test_rule_is_the_true_median_of_early_averages(
    kit: Any, early_stopping: Any, db: tuple[Logs, str]
) -> None:
    logs, address = db
    load(logs, CURVES)
    reply = early_stopping.GetEarlyStoppingRules(
        rules_request(kit, trials(kit, list(CURVES)), address)
    )
    [rule] = reply.early_stopping_rules
    assert rule.name == "accuracy"
    assert float(rule.value) == pytest.approx(0.6)
    assert float(rule.value) != pytest.approx(statistics.fmean([0.2, 0.5, 0.6, 0.65, 0.9]))
    assert rule.comparison == api_pb2.LESS  # maximize: stop trials below the median
    assert rule.start_step == 4


def test_minimize_stops_trials_above_the_median_with_custom_settings(
    kit: Any, early_stopping: Any, db: tuple[Logs, str]
) -> None:
    logs, address = db
    load(logs, {"m1": [3.0, 1.0], "m2": [5.0, 5.0, 0.0]})
    request = rules_request(
        kit,
        trials(kit, ["m1", "m2"]),
        address,
        goal="minimize",
        settings={"min_trials_required": "2", "start_step": "2"},
    )
    [rule] = early_stopping.GetEarlyStoppingRules(request).early_stopping_rules
    assert float(rule.value) == pytest.approx(statistics.median([2.0, 5.0]))
    assert rule.comparison == api_pb2.GREATER and rule.start_step == 2


def test_no_rule_before_enough_trials_succeeded(
    kit: Any, early_stopping: Any, db: tuple[Logs, str]
) -> None:
    logs, address = db
    load(logs, CURVES)
    trial_list = (
        trials(kit, ["t1", "t2"]) + trials(kit, ["t3"], RUNNING) + trials(kit, ["t4"], FAILED)
    )
    reply = early_stopping.GetEarlyStoppingRules(rules_request(kit, trial_list, address))
    assert list(reply.early_stopping_rules) == []


def test_logs_of_succeeded_trials_are_read_once_per_experiment(
    kit: Any, early_stopping: Any, db: tuple[Logs, str]
) -> None:
    logs, address = db
    load(logs, CURVES)
    request = rules_request(kit, trials(kit, ["t1", "t2", "t3"]), address)
    logs.reads.clear()
    early_stopping.GetEarlyStoppingRules(request)
    request.trials.extend(trials(kit, ["t4"]))
    early_stopping.GetEarlyStoppingRules(request)
    assert sorted(logs.reads) == ["t1", "t2", "t3", "t4"]


def test_without_a_db_manager_the_trials_observations_are_used(
    kit: Any, early_stopping: Any
) -> None:
    trial_list = [
        kit.trial(n, {"lr": "0.1"}, value=v, metric="accuracy")
        for n, v in (("a", 0.1), ("b", 0.7), ("c", 0.8), ("d", 0.95))
    ]
    [rule] = early_stopping.GetEarlyStoppingRules(
        rules_request(kit, trial_list, "")
    ).early_stopping_rules
    assert float(rule.value) == pytest.approx(0.75)


def test_an_unreachable_db_manager_is_unavailable(kit: Any, early_stopping: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        early_stopping.GetEarlyStoppingRules(rules_request(kit, trials(kit, ["t1"]), "127.0.0.1:1"))
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "127.0.0.1:1" in caught.value.details() and "t1" in caught.value.details()


@pytest.mark.parametrize(
    ("name", "settings", "needle"),
    [
        ("medianstop", {"start_step": "0"}, "'start_step'"),
        ("medianstop", {"min_trials_required": "few"}, "'min_trials_required'"),
        ("medianstop", {"patience": "3"}, "'patience'"),
        ("hyperband-stop", {}, "medianstop"),
    ],
)
def test_bad_early_stopping_settings_are_invalid_arguments(
    name: str, settings: dict[str, str], needle: str, early_stopping: Any
) -> None:
    spec = api_pb2.EarlyStoppingSpec(
        algorithm_name=name,
        algorithm_settings=[
            api_pb2.EarlyStoppingSetting(name=k, value=v) for k, v in settings.items()
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        early_stopping.ValidateEarlyStoppingSettings(
            api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=spec)
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert needle in caught.value.details()


def test_valid_settings_and_trial_status_are_accepted(early_stopping: Any) -> None:
    spec = api_pb2.EarlyStoppingSpec(
        algorithm_name="medianstop",
        algorithm_settings=[api_pb2.EarlyStoppingSetting(name="start_step", value="2")],
    )
    early_stopping.ValidateEarlyStoppingSettings(
        api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=spec)
    )
    early_stopping.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="t1"))
