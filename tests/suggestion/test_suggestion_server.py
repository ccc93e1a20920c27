"""The server process: health service, the printed address, graceful SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tuner.protos import api_pb2, api_pb2_grpc

SERVICES = [
    "",
    "manager.v1beta1.Suggestion",
    "api.v1.beta1.Suggestion",
    "api.v1.beta1.EarlyStopping",
]


@pytest.mark.parametrize("service", SERVICES)
def test_health_answers_serving(service: str, channel: grpc.Channel) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service)
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_does_not_know_other_services(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="api.v1.beta1.DBManager")
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_sigterm_stops_a_serving_process_gracefully(kit: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "suggestion.service", "--address", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        with grpc.insecure_channel(f"127.0.0.1:{match.group(1)}") as channel:
            experiment = kit.experiment("random", [kit.param("x", "int", min="0", max="9")])
            reply = api_pb2_grpc.SuggestionStub(channel).GetSuggestions(
                kit.request(experiment, [], 2)
            )
            assert len(reply.parameter_assignments) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_address_in_use_is_an_error_not_a_hang(server_port: int) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "suggestion.service", "--address", f"127.0.0.1:{server_port}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 1
    assert f"127.0.0.1:{server_port}" in process.stderr


def test_a_request_without_trials_or_count_is_answered_empty(suggestions: Any, kit: Any) -> None:
    experiment = kit.experiment("tpe", [kit.param("x", "int", min="0", max="9")])
    reply = suggestions.GetSuggestions(kit.request(experiment, [], 0))
    assert reply == api_pb2.GetSuggestionsReply()


def test_an_experiment_created_again_under_its_name_starts_afresh(
    suggestions: Any, kit: Any
) -> None:
    """Points issued to an earlier run of an experiment of the same name (deleted and
    created again) are not pending trials of the new run: its first answer is what a
    server that never saw the name gives."""
    params = [kit.param("x", "double", min="0", max="1")]
    experiment = kit.experiment("random", params, settings={"random_state": "5"})
    fresh = kit.assignments(suggestions.GetSuggestions(kit.request(experiment, [], 3)))
    # The first run: one of the three points becomes a trial, two stay issued.
    first_trial = kit.trial("run1-a", fresh[0], value=0.5)
    suggestions.GetSuggestions(kit.request(experiment, [first_trial], 1))

    again = kit.assignments(suggestions.GetSuggestions(kit.request(experiment, [], 3)))

    assert again == fresh


def test_asking_twice_before_any_trial_exists_issues_new_points(suggestions: Any, kit: Any) -> None:
    params = [kit.param("x", "double", min="0", max="1")]
    experiment = kit.experiment("random", params, settings={"random_state": "5"})
    first = kit.assignments(suggestions.GetSuggestions(kit.request(experiment, [], 2)))
    second = kit.assignments(suggestions.GetSuggestions(kit.request(experiment, [], 2)))
    assert len(first) == len(second) == 2
    assert not {a["x"] for a in first} & {a["x"] for a in second}
