"""TLS for tuner's gRPC endpoints (the suggestion server, the DBManager) and their clients:
PEM files in, ``grpc`` credentials out. A server given a CA requires and checks client
certificates (mutual TLS); a client given a certificate and key presents them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


class TLSError(ValueError):
    """TLS files that are missing, unreadable or given in an incomplete combination; the
    message names the option."""


def _read(option: str, path: str | Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TLSError(f"{option}: cannot read {str(path)!r}: {e.strerror or e}") from e
    if b"-----BEGIN " not in data:
        raise TLSError(f"{option}: {str(path)!r} is not a PEM file")
    return data


def server_credentials(
    cert: str | Path | None,
    key: str | Path | None,
    ca: str | Path | None = None,
    *,
    prefix: str = "--tls",
) -> Any:
    """``grpc.ServerCredentials`` for ``cert`` and ``key`` (PEM), or None when neither is
    given (plaintext). With ``ca``, clients must present a certificate it signed."""
    if cert is None and key is None:
        if ca is not None:
            raise TLSError(f"{prefix}-ca needs {prefix}-cert and {prefix}-key")
        return None
    if cert is None or key is None:
        raise TLSError(f"{prefix}-cert and {prefix}-key go together")
    import grpc

    pair = (_read(f"{prefix}-key", key), _read(f"{prefix}-cert", cert))
    root = _read(f"{prefix}-ca", ca)
    return grpc.ssl_server_credentials(
        [pair], root_certificates=root, require_client_auth=root is not None
    )


def channel_credentials(
    ca: str | Path | None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    *,
    prefix: str = "--tls",
) -> Any:
    """``grpc.ChannelCredentials`` trusting ``ca`` (None: the system's roots) and presenting
    ``cert``/``key`` when given (mutual TLS); None when nothing is given (plaintext)."""
    if ca is None and cert is None and key is None:
        return None
    if (cert is None) != (key is None):
        raise TLSError(f"{prefix}-cert and {prefix}-key go together")
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=_read(f"{prefix}-ca", ca),
        private_key=_read(f"{prefix}-key", key),
        certificate_chain=_read(f"{prefix}-cert", cert),
    )


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert``, ``--tls-key``, ``--tls-ca`` of a command that serves gRPC."""
    group = parser.add_argument_group(
        "TLS",
        "Without these the server speaks plaintext (keep it on loopback or behind a "
        "NetworkPolicy). With --tls-ca, clients must present a certificate it signed.",
    )
    group.add_argument("--tls-cert", metavar="PEM", help="the server's certificate chain")
    group.add_argument("--tls-key", metavar="PEM", help="the server's private key")
    group.add_argument("--tls-ca", metavar="PEM", help="CA whose client certificates to accept")


def add_client_options(parser: argparse.ArgumentParser, prefix: str, what: str) -> None:
    """``PREFIX-ca``, ``PREFIX-cert``, ``PREFIX-key``: a client's TLS to ``what``."""
    group = parser.add_argument_group(
        f"TLS to {what}", f"Given any of these, {what} is reached over TLS."
    )
    group.add_argument(f"{prefix}-ca", metavar="PEM", help=f"CA that signed {what}'s certificate")
    group.add_argument(f"{prefix}-cert", metavar="PEM", help="client certificate (mutual TLS)")
    group.add_argument(f"{prefix}-key", metavar="PEM", help="client private key (mutual TLS)")
