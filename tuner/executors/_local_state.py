"""The on-disk state of one local trial (what its supervisor recorded) and the process
checks that make re-adoption safe: pid + start time, the supervisor's lock, process scans.

A trial directory holds ``supervisor.json`` (the supervisor's identity records, one JSON
object a line, the last complete one current) and ``outcome.json``; the supervisor's lock is
an ``flock`` on the directory itself. Trials started by older versions (protocol 1) have one
object in ``supervisor.json`` (the same thing: one line) and a ``supervisor.lock`` file,
which is the lock wherever it exists."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from tuner.executors import _supervisor as sv
from tuner.executors._base import ExitReason, Outcome


@dataclass(frozen=True)
class ProcessId:
    """A process named so that pid reuse cannot fool us: pid + start time + boot id."""

    pid: int
    start_ticks: int | None
    boot_id: str | None

    def is_running(self) -> bool:
        if self.boot_id is not None and self.boot_id != this_boot():
            return False
        return sv.proc_is_running(self.pid, self.start_ticks)


_boot_id: list[str | None] = []


def this_boot() -> str | None:
    """This boot's id, read once: it cannot change while we run."""
    if not _boot_id:
        _boot_id.append(sv.boot_id())
    return _boot_id[0]


def wait_for_process(process: ProcessId, timeout: float | None) -> bool | None:
    """Block until ``process`` (not necessarily our child) has ended or ``timeout`` seconds
    passed: whether it ended; None where the OS offers no way to wait (no pidfd: poll).

    Woken the moment it exits (a pidfd becomes readable then, zombie or reaped).
    """
    pidfd = process_descriptor(process)
    if pidfd is None or pidfd < 0:
        return None if pidfd is None else True
    try:
        waiter = select.poll()  # not select: descriptors may pass FD_SETSIZE
        waiter.register(pidfd, select.POLLIN)
        return bool(waiter.poll(None if timeout is None else max(timeout, 0.0) * 1000))
    finally:
        os.close(pidfd)


def process_descriptor(process: ProcessId) -> int | None:
    """A pidfd of ``process`` (the caller closes it): readable once the process has ended.
    -1 if it has ended already; None where the OS has no pidfds."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return -1
    except (AttributeError, OSError):
        return None
    try:
        running = process.is_running()  # checked after opening: the pidfd is this process's
    except BaseException:
        os.close(pidfd)
        raise
    if not running:
        os.close(pidfd)
        return -1
    return pidfd


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # written atomically by us, so only tampering gets here
    return data if isinstance(data, dict) else None


def read_outcome(trial_dir: Path) -> Outcome | None:
    data = read_json(trial_dir / sv.OUTCOME_FILE)
    if data is None:
        return None
    try:
        reason = ExitReason(data.get("reason"))
    except ValueError:
        reason = ExitReason.FAILED
    return Outcome(
        reason=reason,
        exit_code=data.get("exit_code"),
        signal=data.get("signal"),
        message=str(data.get("message", "")),
        started_at=utc(data.get("started_at")),
        finished_at=utc(data.get("finished_at")),
    )


def utc(timestamp: Any) -> datetime | None:
    if not isinstance(timestamp, (int, float)):
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc)


def read_identity(trial_dir: Path) -> dict[str, Any] | None:
    """The supervisor's latest identity record: the last line of ``supervisor.json`` that
    is complete (ends in a newline) and a JSON object. A torn last line (a record being
    appended, or cut short by a crash) is passed over; None if there is no record."""
    try:
        data = (trial_dir / sv.IDENTITY_FILE).read_bytes()
    except OSError:
        return None
    for line in reversed(data.split(b"\n")[:-1]):  # what follows the last \n is torn
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return record
    return None


def identity_from_disk(trial_dir: Path) -> ProcessId | None:
    data = read_identity(trial_dir)
    if data is None or not isinstance(data.get("pid"), int):
        return None
    return ProcessId(data["pid"], data.get("start_ticks"), data.get("boot_id"))


def open_lock(trial_dir: Path, *, legacy: bool = True) -> int:
    """A new descriptor to take the trial's supervisor lock on (the caller closes it): its
    directory, or, with ``legacy``, the ``supervisor.lock`` of a trial an older version
    started, where there is one (its supervisor holds that)."""
    if legacy:
        try:
            return os.open(trial_dir / sv.LEGACY_LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
    return os.open(trial_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def lock_is_held(trial_dir: Path) -> bool:
    try:
        fd = open_lock(trial_dir)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if we got it
    return False


def signal_process(process: ProcessId, signum: int) -> bool:
    """Signal ``process`` only if it is still the process we mean (pid reuse)."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        pidfd = None  # no pidfd (old kernel, not Linux): a tiny reuse race remains
    try:
        if not process.is_running():
            return False
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


def kill_orphaned_group(trial_dir: Path) -> None:
    """SIGKILL what is left of a trial whose supervisor is gone.

    The trial's group id is its main process's pid. Members are recognised by that group id
    *and* the supervisor's session id, so a reused pid cannot make us kill a stranger.
    """
    data = read_identity(trial_dir)
    if data is None or not isinstance(data.get("child_pgid"), int):
        return
    pgid, session = data["child_pgid"], data.get("pid")
    if any(s == session for s in sessions_of_group(pgid)):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def sessions_of_group(pgid: int) -> list[int]:
    """Session ids of the live processes whose process group is ``pgid`` (psutil lists the
    processes on any OS it supports; group and session ids are POSIX)."""
    sessions: list[int] = []
    for process in psutil.process_iter():
        try:
            if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                continue
            if os.getpgid(process.pid) == pgid:
                sessions.append(os.getsid(process.pid))
        except (psutil.Error, OSError):
            continue  # gone meanwhile, or not ours to inspect
    return sessions
