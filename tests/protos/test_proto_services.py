"""The gRPC services of ``tuner.protos`` answer on Katib's ``api.v1.beta1`` method paths.

Paths are checked in the service descriptors and by calling each one literally over real gRPC.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from tuner.protos import api_pb2, api_pb2_grpc

PACKAGE = "api.v1.beta1"

# service -> method -> (request message, reply message), as in Katib.
RPCS: dict[str, dict[str, tuple[str, str]]] = {
    "Suggestion": {
        "GetSuggestions": ("GetSuggestionsRequest", "GetSuggestionsReply"),
        "ValidateAlgorithmSettings": (
            "ValidateAlgorithmSettingsRequest",
            "ValidateAlgorithmSettingsReply",
        ),
    },
    "EarlyStopping": {
        "GetEarlyStoppingRules": ("GetEarlyStoppingRulesRequest", "GetEarlyStoppingRulesReply"),
        "SetTrialStatus": ("SetTrialStatusRequest", "SetTrialStatusReply"),
        "ValidateEarlyStoppingSettings": (
            "ValidateEarlyStoppingSettingsRequest",
            "ValidateEarlyStoppingSettingsReply",
        ),
    },
    "DBManager": {
        "ReportObservationLog": ("ReportObservationLogRequest", "ReportObservationLogReply"),
        "GetObservationLog": ("GetObservationLogRequest", "GetObservationLogReply"),
        "DeleteObservationLog": ("DeleteObservationLogRequest", "DeleteObservationLogReply"),
    },
}

ALL_RPCS = [(svc, method) for svc, methods in RPCS.items() for method in methods]


def rpc_path(service: str, method: str) -> str:
    return f"/{PACKAGE}.{service}/{method}"


# --- service descriptors ----------------------------------------------------------------


def test_services_are_exactly_katibs() -> None:
    assert set(api_pb2.DESCRIPTOR.services_by_name) == set(RPCS)


@pytest.mark.parametrize(("service", "method"), ALL_RPCS)
def test_method_descriptor_matches_katib(service: str, method: str) -> None:
    svc = api_pb2.DESCRIPTOR.services_by_name[service]
    assert svc.full_name == f"{PACKAGE}.{service}"
    assert set(svc.methods_by_name) == set(RPCS[service])
    m = svc.methods_by_name[method]
    request, reply = RPCS[service][method]
    # The gRPC path is "/" + service full name + "/" + method name.
    assert f"/{svc.full_name}/{m.name}" == rpc_path(service, method)
    assert m.input_type.full_name == f"{PACKAGE}.{request}"
    assert m.output_type.full_name == f"{PACKAGE}.{reply}"
    assert not m.client_streaming and not m.server_streaming


# --- real gRPC calls on the literal paths ------------------------------------------------


def _recording_servicer(service: str, calls: list[tuple[str, str]]) -> Any:
    """An instance of the generated ``<service>Servicer`` whose methods record each call."""

    def make(method: str, reply: str) -> Any:
        def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            calls.append((f"{service}/{method}", request.DESCRIPTOR.full_name))
            return getattr(api_pb2, reply)()

        return handler

    base = getattr(api_pb2_grpc, f"{service}Servicer")
    body = {method: make(method, reply) for method, (_, reply) in RPCS[service].items()}
    return type(f"Recording{service}", (base,), body)()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[grpc.Channel, list[tuple[str, str]]]]:
    calls: list[tuple[str, str]] = []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    for service in RPCS:
        add = getattr(api_pb2_grpc, f"add_{service}Servicer_to_server")
        add(_recording_servicer(service, calls), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, calls
    finally:
        channel.close()
        server.stop(None)


@pytest.mark.parametrize(("service", "method"), ALL_RPCS)
def test_literal_rpc_path_reaches_its_handler(
    served: tuple[grpc.Channel, list[tuple[str, str]]], service: str, method: str
) -> None:
    channel, calls = served
    request_name, reply_name = RPCS[service][method]
    request_type = getattr(api_pb2, request_name)
    reply_type = getattr(api_pb2, reply_name)
    call = channel.unary_unary(
        rpc_path(service, method),
        request_serializer=request_type.SerializeToString,
        response_deserializer=reply_type.FromString,
    )
    calls.clear()
    reply = call(request_type(), timeout=30)
    assert isinstance(reply, reply_type)
    assert calls == [(f"{service}/{method}", f"{PACKAGE}.{request_name}")]


def test_unknown_path_is_unimplemented(
    served: tuple[grpc.Channel, list[tuple[str, str]]],
) -> None:
    # Guards the test above: a wrong path must not be routed anywhere.
    channel, _ = served
    call = channel.unary_unary(f"/{PACKAGE}.Suggestion/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as err:
        call(b"", timeout=30)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
