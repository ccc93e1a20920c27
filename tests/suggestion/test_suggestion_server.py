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
