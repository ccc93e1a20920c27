"""The gRPC server: Suggestion, EarlyStopping and grpc.health.v1 on one port.

`create_server` is for embedding (tests, the controller, benchmarks) and returns a started
server; `run_server` is the blocking entry point behind ``tuner suggestion-server``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent import futures
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from suggestion.service._earlystopping import EarlyStoppingServicer
from suggestion.service._sessions import SuggestionEngine
from suggestion.service._suggestion import (
    MAX_CALLS_PER_EXPERIMENT,
    Admission,
    SuggestionServicer,
    add_suggestion_servicer,
)
from tuner.errors import TunerError
from tuner.protos import api_pb2, api_pb2_grpc

logger = logging.getLogger(__name__)

HEALTH_SERVICES = (
    "",
    "manager.v1beta1.Suggestion",  # the name Katib's suggestion deployments are probed with
    api_pb2.DESCRIPTOR.services_by_name["Suggestion"].full_name,
    api_pb2.DESCRIPTOR.services_by_name["EarlyStopping"].full_name,
)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a request carries every trial of the experiment
STOP_GRACE_SECONDS = 5.0
_WAKE_SECONDS = 0.25


class ServerError(TunerError, RuntimeError):
    """The server could not start (e.g. the address cannot be bound)."""


def create_server(
    address: str = "127.0.0.1:0",
    *,
    engine: SuggestionEngine | None = None,
    max_workers: int = 16,
    max_calls_per_experiment: int = MAX_CALLS_PER_EXPERIMENT,
    max_concurrent_calls: int | None = None,
    credentials: grpc.ServerCredentials | None = None,
    dbmanager_credentials: grpc.ChannelCredentials | None = None,
) -> tuple[grpc.Server, int]:
    """Start a server on ``address`` (port 0 picks a free port); return it and its port.

    At most ``max_calls_per_experiment`` GetSuggestions calls for one experiment are in
    flight (and ``max_concurrent_calls`` in all, if given); more are refused with
    RESOURCE_EXHAUSTED, so one experiment cannot take every thread from health checks and
    other experiments. ``credentials``: serve TLS (see ``tuner.tls.server_credentials``);
    None: plaintext. ``dbmanager_credentials``: TLS to the DBManagers early stopping reads
    (``tuner.tls.channel_credentials``); None: plaintext. The caller stops it with
    ``server.stop(grace)``; `stop_server` also makes running computations stop.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="suggestion"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Without this a second server silently shares a port already in use.
            ("grpc.so_reuseport", 0),
        ],
    )
    admission = Admission(max_concurrent_calls, max_calls_per_experiment)
    engine = engine or SuggestionEngine()
    add_suggestion_servicer(SuggestionServicer(engine, admission), server)
    _SERVED[server] = (engine, admission)
    api_pb2_grpc.add_EarlyStoppingServicer_to_server(
        EarlyStoppingServicer(dbmanager_credentials), server
    )
    health_servicer = health.HealthServicer()
    for name in HEALTH_SERVICES:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as e:
        raise ServerError(f"cannot listen on {address!r}: {e}") from e
    if port == 0:
        raise ServerError(f"cannot listen on {address!r}: the address could not be bound")
    server.start()
    return server, port


# What `stop_server` needs of a server made by `create_server`.
_SERVED: weakref.WeakKeyDictionary[grpc.Server, tuple[SuggestionEngine, Admission]] = (
    weakref.WeakKeyDictionary()
)


def stop_server(server: grpc.Server, grace: float | None) -> threading.Event:
    """``server.stop(grace)``, and once the grace period is over every suggestion computation
    still running is told to stop (gRPC cancels the calls then, but not the threads)."""
    stopped = server.stop(grace)
    served = _SERVED.get(server)
    if served is not None:
        if grace:
            timer = threading.Timer(grace, served[0].close)
            timer.daemon = True
            timer.start()
        else:
            served[0].close()
    return stopped


def run_server(
    address: str,
    *,
    credentials: grpc.ServerCredentials | None = None,
    dbmanager_credentials: grpc.ChannelCredentials | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT, then stop gracefully; return the exit code.

    Prints the bound address (``listening on HOST:PORT``) once the server accepts calls.
    Must run in the main thread (it installs signal handlers).
    """
    _route_optuna_logs()
    try:
        server, port = create_server(
            address, credentials=credentials, dbmanager_credentials=dbmanager_credentials
        )
    except ServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    host = address.rsplit(":", 1)[0]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(f"listening on {host}:{port}", flush=True)
        # Python runs signal handlers in the main thread only, and a signal the kernel
        # delivers to one of gRPC's threads does not interrupt a blocked wait here: wake up
        # regularly so the handler gets to run.
        while not stop.wait(_WAKE_SECONDS):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        finished = _stop_within(server, STOP_GRACE_SECONDS)
    if not finished:
        # A computation that misses its checks (inside one long library call) would keep
        # the process alive past its grace period: leave without waiting for it.
        logger.warning("calls still running after %.0f s; exiting now", STOP_GRACE_SECONDS)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _stop_within(server: grpc.Server, grace: float) -> bool:
    """Stop ``server``; whether every GetSuggestions call ended within ``grace`` (+1 s)."""
    deadline = time.monotonic() + grace + 1.0
    admission = _SERVED.get(server, (None, None))[1]
    stop_server(server, grace).wait(grace + 1.0)
    while admission is not None and admission.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    return admission is None or admission.in_flight == 0


def _route_optuna_logs() -> None:
    # Optuna prints INFO lines ("A new study created ...") through its own stderr handler;
    # in a server they belong to the logging configuration of the entry point.
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m suggestion.service [--address HOST:PORT] [-v]``."""
    parser = argparse.ArgumentParser(
        prog="python -m suggestion.service",
        description="Serve the suggestion and early-stopping algorithms over gRPC.",
    )
    parser.add_argument("--address", default="127.0.0.1:6789", help="HOST:PORT (port 0: any)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_server(args.address)
