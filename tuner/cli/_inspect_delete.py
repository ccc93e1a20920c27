"""`tuner delete experiment NAME [--force]`: remove an experiment with its trials and
observations; with --force also while it runs, stopping its local trial processes.

How --force stops a running experiment: the rows are deleted first, in one transaction, so a
live controller's next store call for that experiment fails with ExperimentNotFoundError or
TrialNotFoundError, which the controller takes as "deleted": it kills its trials and exits without
writing. Then this command kills the local trial processes the store recorded (the executor
checks pid, start time and boot id against /proc, so a reused pid is never signalled): those of
executors that can act on a stored reference alone (``Executor.for_reference``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tuner.cli._common import EXIT_OK, CliError
from tuner.cli._inspect_common import (
    command,
    not_found,
    open_existing_store,
)
from tuner.cli._inspect_data import is_running, lease_is_live
from tuner.cli._output import timestamp
from tuner.executors import (
    Executor,
    ExecutorError,
    TrialHandle,
    UnknownExecutorError,
    get_executor_class,
)
from tuner.store import ExperimentNotFoundError, ExperimentRecord, TrialRecord, TrialStatus


@command
def delete_experiment(args: argparse.Namespace) -> int:
    with open_existing_store(args.db) as store:
        try:
            record = store.get_experiment(args.name)
            if is_running(record) and not args.force:
                raise CliError(_refusal(record))
            live = store.list_trials(args.name, [TrialStatus.CREATED, TrialStatus.RUNNING])
            store.delete_experiment(args.name)
        except ExperimentNotFoundError as e:
            raise not_found(e, store, args.db) from e
    print(f'experiment "{args.name}" deleted')
    for note in stop_trials(live, max(0.0, args.wait)):
        print(note, file=sys.stderr)
    return EXIT_OK


def _refusal(record: ExperimentRecord) -> str:
    state = f'experiment "{record.name}" is {record.status.value}'
    if lease_is_live(record):
        expires = timestamp(record.lease_expires_at)
        return (
            f"{state}: its controller {record.lease_owner} holds the lease until {expires};"
            " stop that 'tuner run' first (Ctrl-C), or pass --force to kill its trials and"
            " delete it anyway"
        )
    return (
        f"{state} but no controller holds its lease, so its 'tuner run' has probably died;"
        " pass --force to kill its remaining trials and delete it"
    )


def stop_trials(trials: list[TrialRecord], wait_seconds: float) -> list[str]:
    """Kill the trials' processes that the store recorded; one note per trial not cleanly
    stopped. Only executors that can adopt a trial from its reference alone (the local
    executor) are reached from here."""
    notes: list[str] = []
    pending: list[tuple[str, Executor, TrialHandle]] = []
    for trial in trials:
        ref = trial.executor_ref
        if not ref:
            continue  # never launched, or launched and not yet recorded: the controller's part
        executor = _executor_for(trial.executor_kind, ref)
        if executor is None:
            notes.append(
                f'trial "{trial.name}" (executor {trial.executor_kind}) cannot be stopped from '
                "here; its controller stops it when it sees the experiment is gone"
            )
            continue
        try:
            handle = executor.adopt(ref)
            if handle is None:
                continue  # its directory is gone: nothing of it runs
            executor.kill(handle)
        except (ExecutorError, OSError) as e:
            notes.append(f'trial "{trial.name}": could not be stopped: {e}')
            continue
        pending.append((trial.name, executor, handle))
    give_up = time.monotonic() + wait_seconds
    for name, executor, handle in pending:
        if executor.wait(handle, max(0.0, give_up - time.monotonic())) is None:
            notes.append(
                f'trial "{name}": asked to stop; still exiting (SIGKILL follows after its '
                "grace period)"
            )
    return notes


def _executor_for(kind: str | None, reference: dict[str, Any]) -> Executor | None:
    """An executor of ``kind`` that can adopt ``reference`` without a controller's options."""
    try:
        cls = get_executor_class(kind or "")
    except (UnknownExecutorError, ImportError):
        return None
    return cls.for_reference(reference)
