"""The executor contract: how the controller starts, watches, stops and re-adopts trials."""

from __future__ import annotations

import abc
import enum
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from tuner.errors import TunerError
from tuner.executors import _supervisor

if TYPE_CHECKING:
    from tuner.spec import Experiment, RenderedTrial


OUTPUT_TAIL_BYTES = 8192
"""How much of a trial's output :meth:`Executor.output_tail` reads by default."""

DEFAULT_RUN_DIR = "runs"
"""Where executors that keep per-trial directories put them by default, relative to the
current directory."""


class ExecutorError(TunerError):
    """An executor could not do what was asked (not: the trial's command failed)."""


class UnknownExecutorError(ExecutorError, LookupError):
    """No executor is registered under the requested name."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"executor: {name!r} is not a known executor; known executors: {', '.join(known)}"
        )


class LaunchError(ExecutorError):
    """A trial could not be launched: invalid request, or the executor itself failed."""


class ResourcesBusyError(LaunchError):
    """The trial's resources (accelerators) are all held by running trials: nothing was
    started or written; launch it again once one of them has ended."""


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


@dataclass(frozen=True)
class ExecutorOptions:
    """What a caller (``tuner run`` flags, the Python API's arguments) says about where trials
    run, whichever the executor: each one builds its constructor options from what concerns
    it (:meth:`Executor.constructor_options`).

    ``run_dir``: per-trial directories, for executors that keep them on this machine.
    ``working_dir``: the trials' default working directory (None: the current one), for
    executors that run trials here. ``extra``: options of one executor by their constructor
    name (``kubeconfig``, ``context``...), passed through.
    """

    run_dir: str | os.PathLike[str] = DEFAULT_RUN_DIR
    working_dir: str | os.PathLike[str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchRequest:
    """The arguments of one :meth:`Executor.launch`, planned but not carried out (a dry run).
    ``parameters`` is the trial's assignment, for people reading the plan."""

    trial_name: str
    parameters: Mapping[str, Any]
    argv: Sequence[str]
    env: Mapping[str, str]
    working_dir: str | None
    deadline_seconds: float | None
    manifest: Mapping[str, Any]


LaunchPlanner = Callable[[Path | None], list[LaunchRequest]]
"""The controller's half of a dry run: the launch requests of the first trials, given the
executor's run directory (a File collector's metrics file moves into ``<run_dir>/<trial>``)."""


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

    Capabilities: callers ask the class (or instance) what it can do, never which one it is.
    Each has a default here; an executor overrides what differs.

    - :attr:`shares_host` (False): trials run on the controller's machine, so they can write
      files the controller reads (the File collector) and reach its loopback address (the
      Push collector's DBManager).
    - :attr:`local_output` (False): :meth:`poll` and the trial's output are read on this
      machine without waiting on a network, so a controller may read them while it holds
      a store transaction open (on SQLite, the database's write lock).
    - :attr:`run_dir` (None): the directory holding one subdirectory per trial, if any.
    - :meth:`check_template` (accepts all): refuses a rendered trial this executor cannot run.
    - :attr:`supports_dry_run` / :meth:`dry_run` (none): what launches would do.
    - :attr:`cli_options` (none) and :meth:`constructor_options`: how the options a caller
      collected (:class:`ExecutorOptions`) become constructor arguments.
    - :meth:`for_reference` (None): an instance that can stop a stored trial without the
      controller's configuration (``tuner delete --force``).

    Errors: :meth:`launch` raises :class:`LaunchError` when the request is invalid or the
    executor itself cannot start the trial; a command that cannot be started (not found,
    bad working directory) is not an error of the executor but a finished trial, reported by
    :meth:`poll` as ``FAILED``. :meth:`launch` raises :class:`ResourcesBusyError` (having
    done nothing) when the trial must wait for resources that running trials hold.
    :meth:`adopt` raises :class:`InvalidReferenceError` for a reference it cannot read.
    Nothing else raises for a trial's own behaviour.
    """

    name: ClassVar[str]

    shares_host: ClassVar[bool] = False
    """Trials run on this machine, as the controller does: they share its files and its
    loopback network."""

    local_output: ClassVar[bool] = False
    """:meth:`poll`, :meth:`open_output` and :meth:`output_tail` read local files or memory,
    never a network: quick enough to call inside a store transaction."""

    run_dir: Path | None = None
    """The directory with one subdirectory per trial (``<run_dir>/<trial name>``), or None."""

    supports_dry_run: ClassVar[bool] = False
    """:meth:`dry_run` shows what launches would do."""

    cli_options: ClassVar[frozenset[str]] = frozenset()
    """The constructor options that the CLI's executor flags set for this executor (the flag
    ``--kubeconfig`` sets ``kubeconfig``); a flag of another executor is a usage error."""

    @classmethod
    def constructor_options(cls, options: ExecutorOptions) -> dict[str, Any]:
        """The keyword arguments of this executor's constructor from what a caller said. The
        default passes ``options.extra`` through; executors that use ``run_dir`` or
        ``working_dir`` add them."""
        return dict(options.extra)

    @classmethod
    def create(cls, options: ExecutorOptions) -> Executor:
        """An instance built from ``options`` (see :meth:`constructor_options`)."""
        return cls(**cls.constructor_options(options))

    @classmethod  # noqa: B027 - an optional hook
    def check_template(
        cls, rendered: RenderedTrial, *, provided_env: frozenset[str] = frozenset()
    ) -> None:
        """Refuse, with :class:`LaunchError` naming the field, a rendered trial this executor
        cannot run; called before anything is written or started (no instance exists yet).
        ``provided_env``: variables tuner sets in every trial itself. The default accepts
        every trial; :meth:`prepare` may still refuse what needs the executor's settings."""

    @classmethod
    def dry_run(
        cls, experiment: Experiment, options: ExecutorOptions, plan: LaunchPlanner
    ) -> list[dict[str, Any]]:
        """One document per planned trial (``plan``): what :meth:`launch` would run, as
        people read it, touching no file and no cluster. Only for executors with
        :attr:`supports_dry_run`; raises :class:`LaunchError` for a template this executor
        cannot run."""
        raise NotImplementedError(f"the {cls.name} executor has no dry run")

    @classmethod
    def for_reference(cls, reference: Mapping[str, Any]) -> Executor | None:
        """An instance that can :meth:`adopt` (and so kill) the trial of a stored reference
        without the controller's configuration, or None when the reference is not enough.
        The default is None."""
        return None

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
        ``deadline_seconds`` (None: no deadline). ``manifest`` is the rendered trial object (a
        Job or any kind) for executors that create it; ``grace_period_seconds`` is the time
        between SIGTERM and SIGKILL (None: the executor's default). A trial name is launched
        at most once."""

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

    def output_tail(self, handle: TrialHandle, max_bytes: int = OUTPUT_TAIL_BYTES) -> bytes:
        """Up to the last ``max_bytes`` of the trial's output, to explain how it ended;
        ``b""`` when there is none to read. The default reads :meth:`log_path`; executors
        without a local log file may override it. Never raises for a missing output."""
        path = self.log_path(handle)
        if path is None:
            return b""
        try:
            with open(path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                return f.read(max_bytes)
        except OSError:
            return b""

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

    def exit_descriptor(self, handle: TrialHandle) -> int | None:
        """A file descriptor that becomes readable once the trial has ended, for a caller
        that watches many trials with one ``poll`` (the caller closes it); -1 if the trial
        has ended already; None where the executor offers none (then :meth:`wait`).
        Readable means "poll now", not a verdict: :meth:`poll` still says how it ended.
        The default offers none."""
        return None

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release the executor's resources; running trials keep running."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
