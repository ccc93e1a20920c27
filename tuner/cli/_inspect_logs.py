"""`tuner logs TRIAL [-f]`: print a trial's output log; with -f, keep printing until the
store says the trial has finished."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tuner.cli._common import EXIT_OK, CliError
from tuner.cli._inspect_common import (
    command,
    not_found,
    open_existing_store,
)
from tuner.store import Store, TrialNotFoundError, TrialRecord, TrialStatus

CHUNK = 64 * 1024


@command
def logs(args: argparse.Namespace) -> int:
    with open_existing_store(args.db) as store:
        trial = _trial(store, args)
        if not args.follow:
            _copy(_log_file(trial), 0)
            return EXIT_OK
        return _follow(store, args, trial)


def _follow(store: Store, args: argparse.Namespace, trial: TrialRecord) -> int:
    offset = 0
    while True:
        # Status before file: once the store says finished, the trial's process has exited,
        # so the file read after this holds everything it will ever hold.
        finished = trial.status.is_finished()
        if trial.log_path is not None and Path(trial.log_path).is_file():
            offset = _copy(Path(trial.log_path), offset)
        elif finished:
            _log_file(trial)  # raises: finished without a (readable) log
        if finished:
            return EXIT_OK
        time.sleep(args.poll_interval)
        try:
            trial = store.get_trial(args.trial)
        except TrialNotFoundError as e:
            raise CliError(
                f'trial "{args.trial}" was deleted from {store.url} while its log was followed'
            ) from e


def _trial(store: Store, args: argparse.Namespace) -> TrialRecord:
    try:
        return store.get_trial(args.trial)
    except TrialNotFoundError as e:
        raise not_found(e, store, args.db) from e


def _log_file(trial: TrialRecord) -> Path:
    if trial.log_path is None:
        if trial.status is TrialStatus.CREATED:
            raise CliError(
                f'trial "{trial.name}" has not started yet, so it has no log; use -f to wait for it'
            )
        raise CliError(
            f'trial "{trial.name}" ({trial.status.value}) has no log file recorded in the'
            " database (it never ran, or its executor keeps no local log)"
        )
    path = Path(trial.log_path)
    if not path.is_file():
        raise CliError(
            f'trial "{trial.name}": its log file {path} does not exist (removed, or written on '
            "another machine)"
        )
    return path


def _copy(path: Path, offset: int) -> int:
    """Write the file's bytes from `offset` to stdout; the offset to continue from."""
    out = sys.stdout.buffer
    try:
        with path.open("rb") as f:
            if f.seek(0, 2) < offset:
                offset = 0  # truncated or replaced: start over
            f.seek(offset)
            while chunk := f.read(CHUNK):
                out.write(chunk)
                offset += len(chunk)
    except OSError as e:
        raise CliError(f"cannot read the log file {path}: {e.strerror or e}") from e
    out.flush()
    return offset
