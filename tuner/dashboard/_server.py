"""Serving the dashboard: parse `--address`, bind the socket first (so port 0 works and the
printed URL is the real one), then hand it to uvicorn."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

from tuner.store import Store

DEFAULT_ADDRESS = "127.0.0.1:8080"


class AddressError(ValueError):
    """An `--address` that is not HOST:PORT."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (meaning 127.0.0.1)."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise AddressError(
                f"--address: {text!r} is not HOST:PORT with a port from 0 to 65535,"
                f" e.g. {DEFAULT_ADDRESS}"
            )
        host = host.strip("[]") or "127.0.0.1"
        return cls(host, int(port))


def bind(address: Address) -> socket.socket:
    """A listening socket on `address` (OSError when the port is taken)."""
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def server(
    store: Store, *, poll_interval: float = 2.0, log_level: str = "warning", **options: Any
) -> uvicorn.Server:
    """A uvicorn server of the dashboard app (not started; `run(sockets=[bind(...)])`).
    `options` go to `create_app`. Access logs stay off: they would only repeat the polling."""
    import optuna

    from tuner.dashboard._app import create_app

    # Each chart builds a throw-away study; Optuna would log "A new study created" for each.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = uvicorn.Config(
        create_app(store, poll_interval=poll_interval, **options),
        log_level=log_level,
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(config)
