"""The executor contract: how the controller starts, watches, stops and re-adopts trials."""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from tuner.errors import TunerError
from tuner.executors import _supervisor

if TYPE_CHECKING:
    from tuner.spec import Experiment


class ExecutorError(TunerError):
    """An executor could not do what was asked (not: the trial's command failed)."""


class UnknownExecutorError(ExecutorError, LookupError):
    """No executor is registered under the requested name."""


class LaunchError(ExecutorError):
    """A trial could not be launched: invalid request, or the executor itself failed."""


class InvalidReferenceError(ExecutorError, ValueError):
    """A stored trial reference is not one this executor can adopt."""


class ExitReason(str, enum.Enum):
    """How a trial's run ended; the enum value is the spelling stored on disk."""

    COMPLETED = _supervisor.COMPLETED
    """The command exited with code 0."""
    FAILED = _supervisor.FAILED
    """Non-zero exit code, killed by a signal nobody asked for, or could not be started."""
    DEADLINE_EXCEEDED = _supervisor.DEADLINE_EXCEEDED
    """``activeDeadlineSeconds`` passed; the executor terminated the trial."""
    KILLED = _supervisor.KILLED
    """Terminated because :meth:`Executor.kill` asked for it."""
    LOST = "Lost"
    """The trial's processes are gone and nobody recorded how it ended."""


@dataclass(frozen=True)
class Outcome:
    """What is known about a finished trial run.

    ``exit_code`` is set when the main process exited on its own accord (0 included),
    ``signal`` when a signal ended it (then ``exit_code`` is None). ``message`` is a sentence
    for the trial's status. Times are timezone-aware UTC, None when unknown (a lost trial).
    """

    reason: ExitReason
    exit_code: int | None = None
    signal: int | None = None
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        """The command ran to its end with exit code 0 (metrics decide the trial's state)."""
        return self.reason is ExitReason.COMPLETED

    @property
    def deadline_exceeded(self) -> bool:
        return self.reason is ExitReason.DEADLINE_EXCEEDED

    @property
    def lost(self) -> bool:
        return self.reason is ExitReason.LOST


class TrialHandle:
    """A launched trial, as one executor instance knows it.

    ``reference`` is a JSON-serialisable dict the controller stores so that after a restart
    :meth:`Executor.adopt` can find the trial again. Handles are opaque otherwise: pass them
    back to the executor that returned them.
    """

    def __init__(self, trial_name: str, reference: Mapping[str, Any]) -> None:
        self.trial_name = trial_name
        self._reference = dict(reference)

    @property
    def reference(self) -> dict[str, Any]:
        return dict(self._reference)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.trial_name!r})"


class TrialOutput(Protocol):
    """A trial's combined stdout and stderr as one byte stream, read as it grows.

    ``read_new`` returns up to ``max_bytes`` (None: the reader's chunk size) bytes that
    follow what it returned before, ``b""`` when nothing new is there yet; once the trial has
    ended, ``b""`` means the whole output was read (a reader that fetches output from
    elsewhere may block briefly then, until it has the rest). Not thread-safe.
    """

    def read_new(self, max_bytes: int | None = None) -> bytes: ...

    def close(self) -> None: ...


class Executor(abc.ABC):
    """Runs trials somewhere (a local process group, a Kubernetes Job).

    Call order for one trial: :meth:`launch` once, store ``handle.reference``, then
    :meth:`poll` until it returns an :class:`Outcome` (None means still running); the
    Outcome is final and every later ``poll`` returns the same one. :meth:`kill` may come at
    any time, any number of times; it asks for termination and returns without waiting:
    keep polling (or :meth:`wait`) for the Outcome, whose reason is then ``KILLED``
    (or whatever ended the trial first). After a controller restart, :meth:`adopt` turns a
    stored reference back into a handle, and the same rules apply to it.

    Thread safety: all methods may be called from any thread, also concurrently on one
    handle. An executor instance serves many trials at once.

    Errors: :meth:`launch` raises :class:`LaunchError` when the request is invalid or the
    executor itself cannot start the trial; a command that cannot be started (not found,
    bad working directory) is not an error of the executor but a finished trial, reported by
    :meth:`poll` as ``FAILED``. :meth:`adopt` raises :class:`InvalidReferenceError` for a
    reference it cannot read. Nothing else raises for a trial's own behaviour.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def launch(
        self,
        trial_name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        working_dir: str | Path | None,
        deadline_seconds: float | None,
        *,
        manifest: Mapping[str, Any] | None = None,
        grace_period_seconds: float | None = None,
    ) -> TrialHandle:
        """Start trial ``trial_name``: run ``argv`` (never through a shell) with ``env`` added
        to the executor's environment, in ``working_dir``; terminate it after
        ``deadline_seconds`` (None: no deadline). ``manifest`` is the rendered batch/v1 Job
        for executors that run Jobs; ``grace_period_seconds`` is the time between SIGTERM and
        SIGKILL (None: the executor's default). A trial name is launched at most once."""

    @abc.abstractmethod
    def poll(self, handle: TrialHandle) -> Outcome | None:
        """None while the trial runs; its final Outcome once it has ended."""

    @abc.abstractmethod
    def kill(self, handle: TrialHandle) -> None:
        """Ask the trial to terminate (SIGTERM, then SIGKILL after the grace period), all of
        its processes included. Idempotent; a no-op for a trial that has already ended."""

    @abc.abstractmethod
    def adopt(self, reference: Mapping[str, Any]) -> TrialHandle | None:
        """The handle of a trial launched earlier, possibly by another process. Its
        :meth:`poll` tells whether it still runs, finished, or was lost (``LOST``: the
        controller should fail and replace it). None if the trial was never launched, which
        includes a launch that died before the trial's command started: the executor then
        clears what that launch left, so that :meth:`launch` can start the trial."""

    @abc.abstractmethod
    def find(self, trial_name: str) -> TrialHandle | None:
        """Like :meth:`adopt`, by trial name alone: for a trial whose reference was not
        stored because the controller died right after (or during) :meth:`launch`."""

    @abc.abstractmethod
    def log_path(self, handle: TrialHandle) -> Path | None:
        """The file that receives the trial's stdout and stderr, if there is a local one."""

    def prepare(self, experiment: Experiment) -> None:  # noqa: B027 - an optional hook
        """Called once per experiment (and again after a restart) before any of its trials is
        launched, adopted or found. Executors that need the experiment's own settings read
        them here (``kubernetes``: namespace, primaryContainerName, primaryPodLabels,
        success/failure conditions, retain). Raises :class:`LaunchError` when this executor
        cannot run the experiment's trials, so that the experiment fails once, before any
        trial. The default does nothing."""

    def open_output(self, handle: TrialHandle, position: int = 0) -> TrialOutput:
        """The trial's output from byte ``position`` on (a stored collector checkpoint), for
        the metrics collector. The default follows :meth:`log_path`; executors without a
        local log file (``kubernetes``: pod logs) override it. Close it when done."""
        # tuner.metrics sits beside this package: imported when used, so that loading one
        # package never needs the other.
        from tuner.metrics import LogFollower

        path = self.log_path(handle)
        if path is None:
            raise ExecutorError(f"trial {handle.trial_name!r}: {self.name} keeps no log file")
        return LogFollower(path, position)

    def cleanup(self, handle: TrialHandle) -> None:  # noqa: B027 - an optional hook
        """Called once a finished trial's outcome and metrics are stored (its output is no
        longer read): frees what the executor keeps for it (``kubernetes`` deletes the
        finished Job unless ``trialTemplate.retain``). Never raises for a trial that is
        already gone. The default does nothing."""

    def wait(self, handle: TrialHandle, timeout: float | None = None) -> Outcome | None:
        """Block until the trial has ended and return its Outcome; None on timeout."""
        give_up = None if timeout is None else time.monotonic() + timeout
        while True:
            outcome = self.poll(handle)
            if outcome is not None:
                return outcome
            if give_up is not None and time.monotonic() >= give_up:
                return None
            time.sleep(0.02)

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release the executor's resources; running trials keep running."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
