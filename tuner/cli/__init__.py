"""The `tuner` command line: one subcommand per module, dispatched from `main`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tuner.cli import _dashboard, _inspect, _process, _run, _service, _suggestion, _validate
from tuner.redact import mask_log_handlers, mask_urls

# Each entry registers its subcommand on the parser; adding a command is one module and one line.
_COMMANDS = (_validate, _run, _inspect, _suggestion, _service, _dashboard)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


class _Parser(argparse.ArgumentParser):
    """argparse with the passwords of URLs masked in its error messages (it quotes the bad
    argument, which may be a database URL given in the wrong place). Subcommand parsers
    are of the same class."""

    def error(self, message: str) -> NoReturn:
        super().error(mask_urls(message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tuner",
        description="Hyperparameter tuning for Katib v1beta1 Experiments, locally or on "
        "Kubernetes.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv``; its exit code. None: this process's command line
    (``sys.argv``), as the ``tuner`` console script and ``python -m tuner.cli`` call it,
    and the process ends with the command."""
    if argv is None:
        _process.own_process()
    try:
        return _main(argv)
    finally:
        _process.before_exit()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mask_log_handlers()  # database URLs in log lines lose their passwords
    try:
        code = int(args.handler(args))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tuner run FILE --dry-run | head -1`). Python flushes stdout
        # at exit and would report the broken pipe again: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
