"""A local trial's handle, and how the local executor reads one back from what was recorded:
a stored reference or the trial's directory (adopt, find), and the supervisor named there."""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuner.executors import _local_state as trial_state
from tuner.executors import _supervisor as sv
from tuner.executors._base import (
    Executor,
    ExitReason,
    InvalidReferenceError,
    LaunchError,
    Outcome,
    TrialHandle,
)
from tuner.executors._devices import Allocation, ResourcePool
from tuner.executors._local_state import ProcessId

EXECUTOR_NAME = "local"
REFERENCE_VERSION = 1
# Trial names become directory names: no separators, no "." or "..".
_TRIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
RESOURCES_FILE = "resources.json"
"""What a trial holds (devices, CPUs), written before its supervisor starts."""


class LocalTrialHandle(TrialHandle):
    """A trial run by :class:`LocalExecutor`."""

    def __init__(
        self,
        trial_name: str,
        trial_dir: Path,
        supervisor: ProcessId | None,
        popen: subprocess.Popen[bytes] | None = None,
        allocation: Allocation | None = None,
        done: int | None = None,
    ) -> None:
        reference: dict[str, Any] = {
            "executor": EXECUTOR_NAME,
            "version": REFERENCE_VERSION,
            "trial_name": trial_name,
            "trial_dir": str(trial_dir),
            "log_path": str(trial_dir / sv.LOG_FILE),
        }
        if supervisor is not None:
            reference.update(
                pid=supervisor.pid,
                start_ticks=supervisor.start_ticks,
                boot_id=supervisor.boot_id,
            )
        if allocation is not None:
            reference["resources"] = allocation.to_json()
        super().__init__(trial_name, reference)
        self.trial_dir = trial_dir
        self.supervisor = supervisor
        self.popen = popen
        self.allocation = allocation
        self.outcome: Outcome | None = None
        self.lock = threading.Lock()
        # The read end of a pipe whose only write end a supervisor forked for this process
        # holds until it has written outcome.json (then closes it): readable at once,
        # where the supervisor's exit comes a few hundred microseconds later.
        self.done = done

    def outcome_written(self) -> bool:
        """Whether the supervisor said it wrote outcome.json (or died: then it did not)."""
        if self.done is None:
            return False
        waiter = select.poll()
        waiter.register(self.done, select.POLLIN)
        return bool(waiter.poll(0))

    def close_done(self) -> None:
        if self.done is not None:
            os.close(self.done)
            self.done = None


class TrialAdoption(Executor):
    """The local executor's reading of its trials' records: adopting a stored trial, finding
    one by name, the devices of trials found running, and asking a handle's supervisor."""

    run_dir: Path
    resources: ResourcePool
    _lock: threading.Lock
    _launched: dict[Path, LocalTrialHandle]
    _found_holding: dict[str, Path] | None
    _scan_lock: threading.Lock

    def _hold_what_runs_on_disk(self) -> None:
        """Hold the devices of trials still running in ``run_dir``, also those no controller
        has adopted yet (another experiment's, not resumed yet): their records on disk say
        what they hold, whatever this process remembers. Scanned once, at the first request;
        a trial found so lets its devices go when its supervisor has ended."""
        with self._scan_lock:
            if self._found_holding is None:
                self._found_holding = {}
                for recorded in self.run_dir.glob(f"*/{RESOURCES_FILE}"):
                    trial_dir = recorded.parent
                    allocation = Allocation.from_json(trial_state.read_json(recorded))
                    if allocation is not None and trial_state.lock_is_held(trial_dir):
                        self._found_holding[trial_dir.name] = trial_dir
                        self.resources.hold(trial_dir.name, allocation)
            for name, trial_dir in list(self._found_holding.items()):
                if not trial_state.lock_is_held(trial_dir):  # its supervisor has ended
                    del self._found_holding[name]
                    self.resources.release(name)

    # -- adopt ---------------------------------------------------------------------------

    def adopt(self, reference: Mapping[str, Any]) -> LocalTrialHandle | None:
        trial_name, trial_dir, supervisor = self._parse_reference(reference)
        with self._lock:
            launched = self._launched.get(trial_dir)
        if launched is not None:
            return launched  # our own child: keep the Popen, which reaps it
        if supervisor is None:
            supervisor = trial_state.identity_from_disk(trial_dir)
        if supervisor is None or not supervisor.is_running():
            if not trial_dir.is_dir():
                return None
            if _never_started(trial_dir):
                # Its launcher died between creating the directory and the supervisor
                # recording itself (which it does before starting the command): the command
                # never ran. Clear the directory so that the trial is launched, once.
                shutil.rmtree(trial_dir, ignore_errors=True)
                return None
        # What it holds comes from what was stored with it, not from this process's memory:
        # held until its outcome is read, also when it ended while nobody watched.
        allocation = Allocation.from_json(reference.get("resources")) or Allocation.from_json(
            trial_state.read_json(trial_dir / RESOURCES_FILE)
        )
        if allocation is not None:
            self.resources.hold(trial_name, allocation)
        return LocalTrialHandle(trial_name, trial_dir, supervisor, allocation=allocation)

    def find(self, trial_name: str) -> LocalTrialHandle | None:
        trial_dir = self._trial_dir(trial_name)
        return self.adopt(
            {"executor": self.name, "trial_name": trial_name, "trial_dir": str(trial_dir)}
        )

    # -- internals -----------------------------------------------------------------------

    def _trial_dir(self, trial_name: str) -> Path:
        if not isinstance(trial_name, str) or not _TRIAL_NAME.fullmatch(trial_name):
            raise LaunchError(
                f"trial_name: {trial_name!r} is not a valid trial name (letters, digits, '-',"
                " '_', '.'; starting with a letter or digit; at most 253 characters)"
            )
        return self.run_dir / trial_name

    def _own(self, handle: TrialHandle) -> LocalTrialHandle:
        if not isinstance(handle, LocalTrialHandle):
            raise TypeError(f"handle: {handle!r} was not returned by a LocalExecutor")
        return handle

    def _parse_reference(self, reference: Mapping[str, Any]) -> tuple[str, Path, ProcessId | None]:
        if reference.get("executor") != self.name:
            raise InvalidReferenceError(
                f"reference.executor: {reference.get('executor')!r} is not {self.name!r}; this"
                " trial was launched by another executor"
            )
        version = reference.get("version", REFERENCE_VERSION)
        if version != REFERENCE_VERSION:
            raise InvalidReferenceError(
                f"reference.version: {version!r} is not supported (expected {REFERENCE_VERSION})"
            )
        trial_name = reference.get("trial_name")
        if not isinstance(trial_name, str):
            raise InvalidReferenceError(f"reference.trial_name: {trial_name!r} is not a string")
        raw_dir = reference.get("trial_dir")
        trial_dir = Path(raw_dir) if isinstance(raw_dir, str) else self._trial_dir(trial_name)
        pid = reference.get("pid")
        if pid is None:
            return trial_name, trial_dir, None
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise InvalidReferenceError(f"reference.pid: {pid!r} is not a process id")
        return (
            trial_name,
            trial_dir,
            ProcessId(pid, reference.get("start_ticks"), reference.get("boot_id")),
        )

    def _supervisor_alive(self, h: LocalTrialHandle) -> bool:
        if h.popen is not None:
            return h.popen.poll() is None  # also reaps it
        if h.supervisor is None:
            h.supervisor = trial_state.identity_from_disk(h.trial_dir)
        if h.supervisor is not None:
            return h.supervisor.is_running()
        # Launched, but the supervisor has not written its identity yet: its lock tells.
        return trial_state.lock_is_held(h.trial_dir)

    def _signal_supervisor(self, h: LocalTrialHandle, signum: int) -> bool:
        """Send ``signum`` to the supervisor if it is alive; whether it was."""
        if h.popen is not None:
            if h.popen.poll() is not None:
                return False
            h.popen.send_signal(signum)
            return True
        if h.supervisor is None:
            h.supervisor = trial_state.identity_from_disk(h.trial_dir)
        if h.supervisor is None:
            return trial_state.lock_is_held(h.trial_dir)  # starting: it reads the kill marker
        return trial_state.signal_process(h.supervisor, signum)

    def _lost(self, h: LocalTrialHandle) -> Outcome:
        trial_state.kill_orphaned_group(h.trial_dir)
        if (h.trial_dir / sv.KILL_MARKER_FILE).exists():
            return Outcome(ExitReason.KILLED, message="killed on request; no outcome was recorded")
        return Outcome(
            ExitReason.LOST,
            message="lost: process gone without outcome (its supervisor died or the machine"
            " restarted)",
        )


def _never_started(trial_dir: Path, *, lock_checked: bool = False) -> bool:
    """No supervisor ever recorded itself, none holds the lock, nothing was asked or ended.

    ``supervisor.json`` counts whatever it holds: only a supervisor creates it, before it
    writes its first record and long before it starts the command, so even an empty file
    (the supervisor died between the two) or a torn line says "maybe started". Taken as
    started, such a trial is reported lost rather than run a second time.
    """
    return (
        not (trial_dir / sv.IDENTITY_FILE).exists()
        and not (trial_dir / sv.OUTCOME_FILE).exists()
        and not (trial_dir / sv.KILL_MARKER_FILE).exists()
        and (lock_checked or not trial_state.lock_is_held(trial_dir))
    )
