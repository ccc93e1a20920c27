"""What the inspection handlers share at run time: opening an existing store without
creating one, messages for unknown names, and turning errors into exit codes."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tuner.cli._common import (
    DEFAULT_DB_URL,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
)
from tuner.redact import mask_urls
from tuner.store import ExperimentNotFoundError, Store, StoreError, TrialNotFoundError


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL (or bare path) names; None for other databases and in-memory ones."""
    if "://" not in url:
        return Path(url).expanduser()
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        # ValueError: a port that is not a number.
        raise CliError(
            mask_urls(f"--db: {url!r} is not a valid database URL: {e}"), EXIT_USAGE
        ) from e
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).expanduser()


def open_existing_store(url: str) -> Store:
    """Open the store at `url` without creating it: a missing SQLite file is an error.

    `Store.open` creates a missing database, which a command that only reads (or deletes)
    must not do: a typo in `--db` would otherwise leave an empty database behind.
    """
    file = sqlite_file(url)
    if file is not None and not file.is_file():
        raise CliError(
            f"database {mask_urls(url)}: the file {file.absolute()} does not exist;"
            " 'tuner run' creates it, or pass --db URL to read another database"
        )
    try:
        return Store.open(url)
    except StoreError as e:
        raise CliError(mask_urls(f"database {url}: {e}")) from e


def display_url(store: Store, db_url: str) -> str:
    """The database as messages name it: a SQLite file by its absolute path."""
    file = sqlite_file(db_url)
    return store.url if file is None else f"sqlite:///{file.absolute()}"


def with_db(command_line: str, db_url: str) -> str:
    """A command to suggest, carrying `--db` when it is not the default."""
    return command_line + ("" if db_url == DEFAULT_DB_URL else f" --db {mask_urls(db_url)}")


def not_found(error: StoreError, store: Store, db_url: str) -> CliError:
    """The message for an unknown experiment or trial, naming the database searched."""
    where = display_url(store, db_url)
    if isinstance(error, ExperimentNotFoundError):
        listing = with_db("tuner get experiments", db_url)
        return CliError(f"experiment \"{error.name}\" not found in {where}; see '{listing}'")
    if isinstance(error, TrialNotFoundError):
        listing = with_db("tuner get trials EXPERIMENT", db_url)
        return CliError(f"trial \"{error.name}\" not found in {where}; see '{listing}'")
    return CliError(f"database {where}: {error}")


Handler = Callable[[argparse.Namespace], int]


def command(handler: Handler) -> Handler:
    """Wrap a handler: `CliError` and `StoreError` become a message and an exit code, a
    closed pipe (`tuner get trials x | head`) ends quietly, Ctrl-C exits 130."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            code = handler(args)
            sys.stdout.flush()
            return code
        except CliError as e:
            print(mask_urls(f"error: {e}"), file=sys.stderr)
            return e.code
        except StoreError as e:
            print(mask_urls(f"error: database {args.db}: {e}"), file=sys.stderr)
            return EXIT_FAILED
        except BrokenPipeError:
            # Python flushes stdout at exit and would report the broken pipe again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED

    return run
