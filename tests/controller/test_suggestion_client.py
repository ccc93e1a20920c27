"""The suggestion client against the real gRPC server on a loopback port: validation errors,
exhaustion, retries with backoff, and the requests it builds from the spec and the store."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import support

from suggestion.service import create_server
from tuner.controller import InvalidSettingsError, RetryPolicy, SuggestionClient, SuggestionError
from tuner.controller._rules import StoppingRule
from tuner.controller._wire import Messages, parse_rules, parse_stops, trial_proto
from tuner.protos import api_pb2
from tuner.spec import Experiment
from tuner.store import MetricSummary, TrialRecord, TrialStatus


def make_experiment(
    algorithm: str = "random",
    settings: dict[str, str] | None = None,
    parameters: list[dict] | None = None,
) -> Experiment:
    parameters = parameters or [
        {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
        {"name": "b", "parameterType": "categorical", "feasibleSpace": {"list": ["x", "y"]}},
    ]
    return support.experiment(
        "client-test",
        command=["run", *(f"${{trialParameters.{p['name']}}}" for p in parameters)],
        parameters=parameters,
        algorithm=algorithm,
        settings=settings,
        max_trials=10,
        image="x",
        objective={
            "type": "minimize",
            "objectiveMetricName": "loss",
            "additionalMetricNames": ["acc"],
            "metricStrategies": [{"name": "acc", "value": "latest"}],
        },
    )


def record(
    name: str,
    parameters: dict[str, str],
    status: TrialStatus,
    summary: dict[str, MetricSummary] | None = None,
) -> TrialRecord:
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    return support.trial_record(
        name,
        status,
        experiment_name="client-test",
        parameters=parameters,
        metrics_summary=summary or {},
        created_at=now,
        started_at=now,
        completed_at=now if not status.is_active() else None,
    )


@pytest.fixture
def address() -> Iterator[str]:
    server, port = create_server("127.0.0.1:0")
    yield f"127.0.0.1:{port}"
    server.stop(None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_valid_settings_pass(address: str) -> None:
    with SuggestionClient(address) as client:
        client.validate(make_experiment(settings={"random_state": "4"}))


def test_invalid_setting_is_refused_with_the_servers_message_naming_it(address: str) -> None:
    with SuggestionClient(address) as client, pytest.raises(InvalidSettingsError) as err:
        client.validate(make_experiment(settings={"random_state": "x"}))
    assert "random_state" in str(err.value)


def test_unknown_algorithm_is_invalid_input(address: str) -> None:
    with SuggestionClient(address) as client, pytest.raises(InvalidSettingsError) as err:
        client.validate(make_experiment(algorithm="simulated-annealing"))
    assert "simulated-annealing" in str(err.value)


def test_grid_hands_out_every_point_once_then_reports_exhaustion(address: str) -> None:
    experiment = make_experiment(algorithm="grid")
    trials: list[TrialRecord] = []
    with SuggestionClient(address) as client:
        first = client.suggest(experiment, [], 4, 4)
        assert len(first.assignments) == 4 and not first.exhausted
        trials = [
            record(f"t{i}", a, TrialStatus.SUCCEEDED, {"loss": MetricSummary(1, 2, 1)})
            for i, a in enumerate(first.assignments)
        ]
        rest = client.suggest(experiment, trials, 4, 8)
    assert rest.exhausted and len(rest.assignments) == 2
    points = {tuple(sorted(a.items())) for a in first.assignments + rest.assignments}
    assert len(points) == 6  # 3 x 2 grid, no repeats


def test_trial_message_carries_condition_and_strategy_values() -> None:
    experiment = make_experiment()
    summary = {"loss": MetricSummary(0.5, 2.0, 0.7), "acc": MetricSummary(0.1, 0.9, 0.8)}
    message = trial_proto(
        experiment, record("t", {"a": "2", "b": "x"}, TrialStatus.SUCCEEDED, summary)
    )
    assert message.status.condition == message.status.SUCCEEDED
    metrics = {m.name: m.value for m in message.status.observation.metrics}
    assert metrics == {"loss": "0.5", "acc": "0.8"}  # loss: min (minimize), acc: latest
    assert message.status.start_time == "2024-01-02T03:04:05Z"
    assert {a.name: a.value for a in message.spec.parameter_assignments.assignments} == {
        "a": "2",
        "b": "x",
    }


def test_a_request_converts_only_the_trials_whose_record_changed() -> None:
    experiment = make_experiment()
    running = record("t1", {"a": "1", "b": "x"}, TrialStatus.RUNNING)
    other = record("t2", {"a": "2", "b": "y"}, TrialStatus.RUNNING)
    messages = Messages()
    first = messages.trials(experiment, [running, other])

    ended = dataclasses.replace(
        running, status=TrialStatus.SUCCEEDED, metrics_summary={"loss": MetricSummary(1, 2, 1)}
    )
    second = messages.trials(experiment, [ended, other])

    assert second[1] is first[1]  # unchanged record: the same message
    assert second[0].status.condition == api_pb2.TrialStatus.SUCCEEDED
    assert [(m.name, m.value) for m in second[0].status.observation.metrics] == [("loss", "1.0")]
    assert second[0] == trial_proto(experiment, ended)
    # another experiment (even an equal one) starts afresh
    assert messages.trials(make_experiment(), [other])[0] is not first[1]


def test_rules_tuner_cannot_apply_are_left_out() -> None:
    rules = parse_rules(
        [
            api_pb2.EarlyStoppingRule(
                name="loss", value="0.5", comparison=api_pb2.GREATER, start_step=3
            ),
            api_pb2.EarlyStoppingRule(name="loss", value="x", comparison=api_pb2.LESS),
            api_pb2.EarlyStoppingRule(name="loss", value="0.5"),  # comparison unknown
            api_pb2.EarlyStoppingRule(value="0.5", comparison=api_pb2.LESS),  # no metric
        ]
    )
    assert rules == [StoppingRule("loss", 0.5, "above", 3)]


@pytest.mark.parametrize(
    ("text", "stops"),
    [
        ('{"t-1": "at step 3"}', {"t-1": "at step 3"}),
        (None, {}),
        ("not json", {}),  # a reply tuner cannot read stops nothing
        ('["t-1"]', {}),
        ('{"t-1": 3}', {}),
    ],
)
def test_per_trial_stops_are_read_from_the_metadata_or_ignored(
    text: str | None, stops: dict[str, str]
) -> None:
    assert parse_stops(text) == stops


def test_unavailable_is_retried_with_backoff_until_the_budget_is_spent() -> None:
    slept: list[float] = []
    policy = RetryPolicy(initial=0.01, maximum=0.04, budget=0.12)
    client = SuggestionClient(
        f"127.0.0.1:{free_port()}", timeout=2, retry=policy, sleep=slept.append
    )
    with client, pytest.raises(SuggestionError) as err:
        client.validate(make_experiment())
    assert err.value.code == "UNAVAILABLE" and err.value.retryable
    assert len(slept) == len(policy.delays()) == 4  # 0.01, 0.02, 0.04, 0.04 (capped)
    assert all(0 < s <= ceiling for s, ceiling in zip(slept, policy.delays(), strict=True))


def test_a_server_that_comes_up_during_the_retries_answers() -> None:
    port = free_port()
    servers: list[Any] = []

    def start_server_then_sleep(seconds: float) -> None:
        if not servers:
            servers.append(create_server(f"127.0.0.1:{port}")[0])
        time.sleep(seconds)

    client = SuggestionClient(
        f"127.0.0.1:{port}", retry=RetryPolicy(initial=0.01), sleep=start_server_then_sleep
    )
    try:
        with client:
            reply = client.suggest(make_experiment(), [], 2, 2)
        assert len(reply.assignments) == 2 and servers
    finally:
        for server in servers:
            server.stop(None)
