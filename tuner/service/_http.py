"""The replica's HTTP endpoint: ``/metrics`` (Prometheus text format) and ``/healthz``."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tuner.service._errors import AddressError
from tuner.service._metrics import ServiceMetrics
from tuner.service._service import Health

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:8080"


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as (host, port); port 0 picks a free port."""
    host, sep, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not sep or not host or not 0 <= port <= 65535:
        raise AddressError(
            f"address {address!r} is not HOST:PORT with a port from 0 to 65535, e.g. "
            f"{DEFAULT_ADDRESS} (0.0.0.0:8080 to listen on every interface)"
        )
    return host, port


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` on a thread; `address` is the bound HOST:PORT.

    ``/healthz`` answers 200 when ``health()`` says healthy and 503 otherwise, with the
    detail as text. Anything else is 404. Only GET (and HEAD) are served.
    """

    def __init__(self, address: str, metrics: ServiceMetrics, health: Callable[[], Health]):
        host, port = parse_address(address)
        handler = _handler(metrics, health)
        server_class = _V6Server if ":" in host else ThreadingHTTPServer
        try:
            self._server = server_class((host, port), handler)
        except OSError as e:
            raise AddressError(f"cannot listen on {address!r}: {e.strerror or e}") from e
        self._server.daemon_threads = True
        bound_host, bound_port = str(self._server.server_address[0]), self._server.server_port
        self.address = (
            f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(metrics: ServiceMetrics, health: Callable[[], Health]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "tuner-controller"

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, content_type = metrics.exposition()
                self._reply(200, body, content_type)
            elif path == "/healthz":
                state = health()
                self._reply(200 if state.healthy else 503, f"{state.detail}\n".encode())
            else:
                self._reply(404, b"not found: try /metrics or /healthz\n")

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
