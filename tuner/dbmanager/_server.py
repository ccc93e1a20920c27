"""Serving the DBManager: a gRPC server on a loopback port, with grpc.health.v1."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tuner.dbmanager._servicer import DBManagerServicer
from tuner.errors import TunerError
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.store import Store
from tuner.tokens import ReportPolicy

log = logging.getLogger(__name__)

SERVICE_NAME = api_pb2.DESCRIPTOR.services_by_name["DBManager"].full_name
STOP_GRACE_SECONDS = 1.0
CHECK_TIMEOUT_SECONDS = 10.0
WILDCARD_HOSTS = frozenset({"0.0.0.0", "", "[::]", "::"})
"""Hosts that bind every interface: not an address a client can be given."""


class DBManagerError(TunerError, RuntimeError):
    """The DBManager server could not start (e.g. the address cannot be bound)."""


def create_server(
    store: Store,
    address: str = "127.0.0.1:0",
    *,
    max_workers: int = 8,
    policy: ReportPolicy | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.Server, int]:
    """Start a DBManager server for ``store`` on ``address`` (port 0: a free port); return it
    and its port. Stop it with ``server.stop(grace)``; the store stays open. ``policy``: who
    may report for which trial (see ``DBManagerServicer``); ``credentials``: serve TLS
    (``tuner.tls.server_credentials``), None: plaintext."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dbmanager"),
        # Without this a second server silently shares a port already in use.
        options=[("grpc.so_reuseport", 0)],
    )
    api_pb2_grpc.add_DBManagerServicer_to_server(DBManagerServicer(store, policy), server)
    health_servicer = health.HealthServicer()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as e:
        raise DBManagerError(f"DBManager: cannot listen on {address!r}: {e}") from e
    if port == 0:
        raise DBManagerError(f"DBManager: cannot listen on {address!r}: it could not be bound")
    server.start()
    return server, port


@contextlib.contextmanager
def serve(
    store: Store,
    address: str = "127.0.0.1:0",
    *,
    address_file: Path | None = None,
    policy: ReportPolicy | None = None,
    credentials: grpc.ServerCredentials | None = None,
    client_credentials: grpc.ChannelCredentials | None = None,
    advertised: str | None = None,
) -> Iterator[str]:
    """A DBManager for ``store`` while the block runs; yields its ``host:port``.

    ``credentials``: serve TLS. ``client_credentials``: what its clients will use; the
    server is called once with them before the block runs, so that a certificate that does
    not fit (another CA, a name other than the host clients dial: ``advertised``'s host if
    given, else ``address``'s) is a `DBManagerError` at start rather than a failed report
    in every trial.

    ``address_file`` keeps the port between runs: when ``address`` asks for any port (0),
    the port the file holds is tried first (on ``address``'s host), and the port bound is
    written to it. A controller restarted after a crash thus serves on the port its adopted
    trials were given, and their reports keep arriving.
    """
    host, _, wanted = address.rpartition(":")
    server = None
    previous = _read_port(address_file) if wanted == "0" else None
    if previous is not None:
        try:
            server, port = create_server(
                store, f"{host}:{previous}", policy=policy, credentials=credentials
            )
        except DBManagerError as e:
            log.warning("%s; serving on another port", e)
    if server is None:
        server, port = create_server(store, address, policy=policy, credentials=credentials)
    try:
        if client_credentials is not None:
            _check_client(host, port, client_credentials, advertised)
        if address_file is not None and port != previous:
            _write_port(address_file, port)
        yield f"{host}:{port}"
    finally:
        server.stop(STOP_GRACE_SECONDS).wait()


def _check_client(
    host: str, port: int, credentials: grpc.ChannelCredentials, advertised: str | None
) -> None:
    # A wildcard bind is reached on loopback; the certificate is checked against the name
    # clients dial.
    dial = "127.0.0.1" if host in WILDCARD_HOSTS else host
    address = f"{dial}:{port}"
    name = (advertised or "").rpartition(":")[0] or dial
    options = [("grpc.ssl_target_name_override", name)] if name != dial else []
    with grpc.secure_channel(address, credentials, options=options) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=CHECK_TIMEOUT_SECONDS
            )
        except grpc.RpcError as e:
            raise DBManagerError(
                f"DBManager at {address}: a client with the TLS files given to its trials"
                f" cannot connect to it as {name!r} ({e.code().name}: {e.details()}); check"
                f" that --dbmanager-tls-cert names {name!r} (an IP SAN 127.0.0.1 for local"
                " trials) and that --dbmanager-tls-ca signed --dbmanager-tls-client-cert"
            ) from e


def _read_port(path: Path | None) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip() if path is not None else ""
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _write_port(path: Path, port: int) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        partial.write_text(f"{port}\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as e:  # only a restart after a crash would miss it
        log.warning("DBManager: cannot record its port in %s: %s", path, e)
