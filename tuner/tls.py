"""TLS for tuner's gRPC endpoints (the suggestion server, the DBManager) and their clients:
PEM files in, ``grpc`` credentials out. A server given a CA requires and checks client
certificates (mutual TLS); a client given a certificate and key presents them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DBMANAGER_TLS_CA_ENV = "TUNER_DBMANAGER_TLS_CA"
"""Trial environment: PEM file of the certificate(s) to trust for the DBManager (the
controller sets the DBManager's own certificate). Set: ``tuner.report_metrics`` uses TLS."""

DBMANAGER_TLS_CERT_ENV = "TUNER_DBMANAGER_TLS_CERT"
"""Trial environment: the client certificate a trial presents to the DBManager (mutual TLS)."""

DBMANAGER_TLS_KEY_ENV = "TUNER_DBMANAGER_TLS_KEY"
"""Trial environment: the private key of ``TUNER_DBMANAGER_TLS_CERT``."""

DBMANAGER_TLS_ENV_NAMES = (DBMANAGER_TLS_CA_ENV, DBMANAGER_TLS_CERT_ENV, DBMANAGER_TLS_KEY_ENV)


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


def _channel_credentials(ca: bytes | None, cert: bytes | None, key: bytes | None) -> Any:
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


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
    return _channel_credentials(
        _read(f"{prefix}-ca", ca), _read(f"{prefix}-cert", cert), _read(f"{prefix}-key", key)
    )


def trial_channel_credentials(environ: Mapping[str, str] | None = None) -> Any:
    """``grpc.ChannelCredentials`` a trial reaches its DBManager with, from the
    ``TUNER_DBMANAGER_TLS_*`` variables the controller set (None: plaintext). Raises
    `TLSError` naming the variable of a file that is missing or not PEM."""
    env = os.environ if environ is None else environ
    ca, cert, key = (env.get(name) or None for name in DBMANAGER_TLS_ENV_NAMES)
    if ca is None and cert is None and key is None:
        return None
    if (cert is None) != (key is None):
        raise TLSError(f"{DBMANAGER_TLS_CERT_ENV} and {DBMANAGER_TLS_KEY_ENV} go together")
    return _channel_credentials(
        _read(DBMANAGER_TLS_CA_ENV, ca),
        _read(DBMANAGER_TLS_CERT_ENV, cert),
        _read(DBMANAGER_TLS_KEY_ENV, key),
    )


@dataclass(frozen=True)
class DBManagerTLS:
    """TLS of the DBManager a controller serves (``tuner run``/``tuner controller``
    ``--dbmanager-tls-*``): its certificate and key, the CA whose client certificates it
    requires (mutual TLS; None: any client), and the certificate and key its clients present
    (the trials it starts and the early-stopping service that reads their logs).

    Clients trust the DBManager's own certificate (``cert``, pinned), so it may be
    self-signed or signed by any CA; it must name the host clients dial (``127.0.0.1``).
    Build it with `from_options`, which reads every file once to refuse a bad one early."""

    cert: Path
    key: Path
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @classmethod
    def from_options(
        cls,
        cert: str | Path | None,
        key: str | Path | None,
        ca: str | Path | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
        *,
        prefix: str = "--dbmanager-tls",
    ) -> DBManagerTLS | None:
        """The settings of the ``PREFIX-*`` options, or None when none is given. Raises
        `TLSError` naming the option of a missing or unreadable file or of a combination
        that cannot work."""
        if client_cert is not None or client_key is not None:
            if cert is None and key is None:
                raise TLSError(
                    f"{prefix}-client-cert/-client-key need {prefix}-cert and {prefix}-key"
                )
            if (client_cert is None) != (client_key is None):
                raise TLSError(f"{prefix}-client-cert and {prefix}-client-key go together")
        server_credentials(cert, key, ca, prefix=prefix)  # reads and checks them
        if cert is None or key is None:
            return None
        if ca is not None and client_cert is None:
            raise TLSError(
                f"{prefix}-ca makes the DBManager require client certificates: give"
                f" {prefix}-client-cert and {prefix}-client-key, the certificate (signed by"
                f" that CA) that the trials and early stopping present"
            )
        _read(f"{prefix}-client-cert", client_cert)
        _read(f"{prefix}-client-key", client_key)

        def absolute(path: str | Path | None) -> Path | None:
            return None if path is None else Path(path).absolute()

        return cls(
            Path(cert).absolute(),
            Path(key).absolute(),
            absolute(ca),
            absolute(client_cert),
            absolute(client_key),
        )

    def server_credentials(self) -> Any:
        """``grpc.ServerCredentials`` for the DBManager."""
        return server_credentials(self.cert, self.key, self.ca, prefix="--dbmanager-tls")

    def client_credentials(self) -> Any:
        """``grpc.ChannelCredentials`` of a client of the DBManager (what trials get)."""
        return trial_channel_credentials(self.trial_environment())

    def trial_environment(self) -> dict[str, str]:
        """The ``TUNER_DBMANAGER_TLS_*`` variables of a trial (absolute file paths)."""
        env = {DBMANAGER_TLS_CA_ENV: str(self.cert)}
        if self.client_cert is not None and self.client_key is not None:
            env[DBMANAGER_TLS_CERT_ENV] = str(self.client_cert)
            env[DBMANAGER_TLS_KEY_ENV] = str(self.client_key)
        return env


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


def add_dbmanager_options(parser: argparse.ArgumentParser) -> None:
    """``--dbmanager-tls-*`` of a command whose controller serves a DBManager to its trials;
    `DBManagerTLS.from_options` reads them."""
    group = parser.add_argument_group(
        "TLS of the DBManager",
        "The DBManager the controller serves its trials (tuner.report_metrics) speaks "
        "plaintext on 127.0.0.1 without these. With --dbmanager-tls-cert/-key it serves TLS; "
        "trials are given the certificate to trust in TUNER_DBMANAGER_TLS_CA (it must name "
        "127.0.0.1). With --dbmanager-tls-ca, clients must present a certificate that CA "
        "signed: trials get --dbmanager-tls-client-cert/-key in TUNER_DBMANAGER_TLS_CERT/KEY.",
    )
    group.add_argument("--dbmanager-tls-cert", metavar="PEM", help="the DBManager's certificate")
    group.add_argument("--dbmanager-tls-key", metavar="PEM", help="the DBManager's private key")
    group.add_argument(
        "--dbmanager-tls-ca", metavar="PEM", help="CA whose client certificates to accept"
    )
    group.add_argument(
        "--dbmanager-tls-client-cert",
        metavar="PEM",
        help="client certificate the trials and early stopping present (mutual TLS)",
    )
    group.add_argument(
        "--dbmanager-tls-client-key", metavar="PEM", help="its private key (mutual TLS)"
    )


def dbmanager_tls(args: argparse.Namespace) -> DBManagerTLS | None:
    """The `DBManagerTLS` of the options `add_dbmanager_options` added, or None."""
    return DBManagerTLS.from_options(
        args.dbmanager_tls_cert,
        args.dbmanager_tls_key,
        args.dbmanager_tls_ca,
        args.dbmanager_tls_client_cert,
        args.dbmanager_tls_client_key,
    )


def add_client_options(parser: argparse.ArgumentParser, prefix: str, what: str) -> None:
    """``PREFIX-ca``, ``PREFIX-cert``, ``PREFIX-key``: a client's TLS to ``what``."""
    group = parser.add_argument_group(
        f"TLS to {what}", f"Given any of these, {what} is reached over TLS."
    )
    group.add_argument(f"{prefix}-ca", metavar="PEM", help=f"CA that signed {what}'s certificate")
    group.add_argument(f"{prefix}-cert", metavar="PEM", help="client certificate (mutual TLS)")
    group.add_argument(f"{prefix}-key", metavar="PEM", help="client private key (mutual TLS)")
