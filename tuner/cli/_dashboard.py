"""`tuner dashboard`: serve the read-only web dashboard of a store (tuner.dashboard)."""

from __future__ import annotations

import argparse
import sys

from tuner.cli._common import EXIT_USAGE, CliError, add_db_option

DEFAULT_ADDRESS = "127.0.0.1:8080"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "dashboard",
        help="serve a read-only web dashboard of the database",
        description="Serve a web dashboard of what the database holds: experiments, trials, "
        "charts, logs, live while 'tuner run' or 'tuner controller' writes. Read-only. Prints "
        "the URL it serves; Ctrl-C stops it. Needs the 'dashboard' extra.",
    )
    add_db_option(parser)
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        metavar="HOST:PORT",
        help=f"where to listen (default {DEFAULT_ADDRESS}: this machine only; port 0 picks a "
        "free port). The dashboard has no login: listen on other interfaces only behind "
        "something that authenticates",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between two looks of an open page at the database (default 2)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from tuner.cli._inspect_common import command

    return int(command(_serve)(args))


def _serve(args: argparse.Namespace) -> int:
    try:
        from tuner import dashboard
    except ImportError as e:
        raise CliError(
            f"tuner dashboard needs the 'dashboard' extra ({e.name} is missing): "
            "pip install 'tuner[dashboard]'"
        ) from e
    from tuner.cli._inspect_common import open_existing_store

    try:
        address = dashboard.Address.parse(args.address)
    except dashboard.AddressError as e:
        raise CliError(str(e), EXIT_USAGE) from e
    if not args.poll_interval > 0:
        raise CliError(f"--poll-interval: {args.poll_interval} is not positive", EXIT_USAGE)
    with open_existing_store(args.db) as store:
        try:
            sock = dashboard.bind(address)
        except OSError as e:
            raise CliError(f"--address {args.address}: cannot listen there: {e}") from e
        with sock:
            print(f"tuner dashboard: serving {dashboard.url_of(sock)}", flush=True)
            print("press Ctrl-C to stop", file=sys.stderr, flush=True)
            dashboard.server(store, poll_interval=args.poll_interval).run(sockets=[sock])
    return 0
