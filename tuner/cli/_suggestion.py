"""`tuner suggestion-server`: serve every suggestion algorithm and early stopping over gRPC."""

from __future__ import annotations

import argparse
import sys

from tuner.tls import (
    TLSError,
    add_client_options,
    add_server_options,
    channel_credentials,
    server_credentials,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "suggestion-server",
        help="run the gRPC suggestion and early-stopping server",
        description="Serve Katib's api.v1.beta1 Suggestion and EarlyStopping services (and "
        "grpc.health.v1) for every algorithm. Port 0 picks a free port; the bound address is "
        "printed. SIGTERM stops it gracefully.",
    )
    parser.add_argument(
        "--address",
        default="127.0.0.1:6789",
        help="HOST:PORT to listen on (default 127.0.0.1:6789; use 0.0.0.0:6789 in a container)",
    )
    add_server_options(parser)
    add_client_options(
        parser, "--dbmanager-tls", "the DBManagers early stopping reads trial logs from"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `tuner validate` does not pay for grpc and the algorithm libraries.
    from suggestion.service import run_server

    try:
        credentials = server_credentials(args.tls_cert, args.tls_key, args.tls_ca)
        dbmanager = channel_credentials(
            args.dbmanager_tls_ca,
            args.dbmanager_tls_cert,
            args.dbmanager_tls_key,
            prefix="--dbmanager-tls",
        )
    except TLSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run_server(args.address, credentials=credentials, dbmanager_credentials=dbmanager)
