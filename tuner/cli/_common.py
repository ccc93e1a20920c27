"""What commands share at parse time: the default database, the `--db` and `-o` options, exit
codes, and the error that ends a command with a message. Cheap to import (no SQLAlchemy)."""

from __future__ import annotations

import argparse

from tuner.errors import TunerError

DEFAULT_DB_URL = "sqlite:///tuner.db"
"""The database `tuner run` and the inspection commands use when `--db` is not given:
`tuner.db` in the current directory."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

OUTPUT_FORMATS = ("table", "json", "yaml")


class CliError(TunerError):
    """Ends a command: `message` goes to stderr after "error: ", `code` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def db_url(text: str) -> str:
    """The argparse type of every ``--db``: an empty URL names no database (it is refused
    rather than read as the default file)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"an empty URL names no database; leave --db out for {DEFAULT_DB_URL}"
        )
    if "://" in text:
        from sqlalchemy.engine import make_url  # here: parsing the other options stays light
        from sqlalchemy.exc import ArgumentError

        from tuner.redact import mask_urls

        try:
            make_url(text)
        except (ArgumentError, ValueError) as e:  # ValueError: a port that is not a number
            raise argparse.ArgumentTypeError(
                mask_urls(f"{text!r} is not a valid database URL: {e}")
            ) from e
    return text


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=db_url,
        default=DEFAULT_DB_URL,
        metavar="URL",
        help="database URL: sqlite:///FILE, postgresql://..., mysql://... or a SQLite file "
        f"path (default {DEFAULT_DB_URL}, the file 'tuner run' uses in the current directory)",
    )


def add_output_option(
    parser: argparse.ArgumentParser, default: str = "table", extra: tuple[str, ...] = ()
) -> None:
    """`-o/--output FORMAT`; a command whose default is not `table` offers only json/yaml;
    `extra` adds formats of that command alone (csv for `get trials`)."""
    formats = (OUTPUT_FORMATS if default == "table" else OUTPUT_FORMATS[1:]) + extra
    parser.add_argument(
        "-o",
        "--output",
        choices=formats,
        default=default,
        metavar="FORMAT",
        help=f"output format: {', '.join(formats)} (default {default}); json and yaml are "
        "stable documents for scripts",
    )
