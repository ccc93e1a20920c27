"""Starting a local trial's supervisor: forked by the executor's fork server, or, where
there is none, a ``python -I -S _supervisor.py`` process of its own; both leave the same records."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from tuner.executors import _local_forkserver as forkserver
from tuner.executors import _local_state as trial_state
from tuner.executors import _supervisor as sv
from tuner.executors._base import Executor, LaunchError
from tuner.executors._devices import Allocation
from tuner.executors._local_handle import RESOURCES_FILE, LocalTrialHandle, _never_started
from tuner.executors._local_state import ProcessId

# The executor's logger: its records keep the name they had before this module was split off.
log = logging.getLogger("tuner.executors._local")

_PYTHON_NAMES = frozenset({"python", "python3"})


class SupervisorLaunching(Executor):
    """The local executor's launch of a trial: its directory and files, then its supervisor
    (see :class:`~tuner.executors._local.LocalExecutor` for the two ways)."""

    run_dir: Path
    default_working_dir: Path
    grace_period_seconds: float
    python_executable: str
    _lock: threading.Lock
    _launched: dict[Path, LocalTrialHandle]
    _use_fork_server: bool
    _server: forkserver.ForkServer | None

    def _launch(
        self,
        trial_name: str,
        trial_dir: Path,
        command: list[str],
        env: Mapping[str, str],
        working_dir: str | Path | None,
        deadline_seconds: float | None,
        grace_period_seconds: float | None,
        allocation: Allocation | None,
    ) -> LocalTrialHandle:
        child_env = self.trial_environment(env)
        cwd = self.default_working_dir / (working_dir or "")
        deadline = None if deadline_seconds is None else _positive(deadline_seconds)
        grace = (
            self.grace_period_seconds
            if grace_period_seconds is None
            else _non_negative(grace_period_seconds, "grace_period_seconds")
        )
        try:
            try:
                trial_dir.mkdir()
            except FileNotFoundError:  # the first trial: the run directory comes first
                self.run_dir.mkdir(parents=True, exist_ok=True)
                trial_dir.mkdir()
        except FileExistsError as e:
            raise LaunchError(
                f"trial {trial_name!r}: {trial_dir} already exists, so this trial was launched"
                " before; adopt() or find() it instead of launching it twice"
            ) from e
        except OSError as e:
            raise LaunchError(f"run directory {self.run_dir}: {e.strerror}") from e
        if allocation is not None:
            # Before the supervisor exists: a restarted controller that finds this trial by
            # its directory knows what it holds.
            (trial_dir / RESOURCES_FILE).write_text(
                json.dumps(allocation.to_json()), encoding="utf-8"
            )
        cpus = (
            ""
            if allocation is None or allocation.cpus is None
            else ",".join(map(str, allocation.cpus))
        )
        fds = [-1, -1, -1]  # the trial's log, its lock, the pipe's write end: ours to close
        done = -1  # the pipe's read end, the handle's once a supervisor is forked
        try:
            try:
                fds[0] = os.open(
                    trial_dir / sv.LOG_FILE,
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                    0o644,
                )
                fds[1] = _locked(trial_dir)
                if self._use_fork_server:
                    done, fds[2] = os.pipe()  # close-on-exec, both
            except OSError as e:
                raise LaunchError(f"trial {trial_name!r}: cannot create its files: {e}") from e
            forked, supervisor = self._fork_supervisor(
                trial_dir, cwd, deadline, grace, command, child_env, cpus, fds
            )
            if forked:
                handle = LocalTrialHandle(
                    trial_name, trial_dir, supervisor, None, allocation, done=done
                )
                done = -1
            else:
                popen = self._spawn_supervisor(
                    trial_name,
                    trial_dir,
                    cwd,
                    deadline,
                    grace,
                    command,
                    child_env,
                    cpus,
                    fds[0],
                    fds[1],
                )
                supervisor = ProcessId(popen.pid, sv.proc_start_ticks(popen.pid), sv.boot_id())
                handle = LocalTrialHandle(trial_name, trial_dir, supervisor, popen, allocation)
        finally:
            for fd in (*fds, done):
                if fd >= 0:
                    os.close(fd)
        with self._lock:
            self._launched[trial_dir] = handle
        return handle

    def _fork_supervisor(
        self,
        trial_dir: Path,
        cwd: Path,
        deadline: float | None,
        grace: float,
        command: list[str],
        env: Mapping[str, str],
        cpus: str,
        fds: list[int],
    ) -> tuple[bool, ProcessId | None]:
        """Have the fork server fork the trial's supervisor: (True, its id or None if it
        runs but is not known yet), or (False, None) if there is no fork server to ask (then
        nothing was started). ``fds`` are the trial's log and lock, and the write end of its
        "outcome written" pipe; the lock may be replaced.

        Should the server die mid-request, the trial's lock tells whether it forked the
        supervisor (which holds the lock, or has left its records): if so, that is the
        trial; if not, a new server is started and asked once more. A trial never starts
        twice.
        """
        for _ in range(2):
            server = self._fork_server()
            if server is None:
                return False, None
            try:
                pid, start_ticks = server.start_supervisor(
                    trial_dir=str(trial_dir),
                    working_dir=str(cwd),
                    deadline=deadline,
                    grace=grace,
                    argv=command,
                    env=env,
                    cpus=cpus,
                    log_fd=fds[0],
                    lock_fd=fds[1],
                    done_fd=fds[2],
                )
            except forkserver.RequestRefusedError as e:
                raise LaunchError(
                    f"trial {trial_dir.name!r}: cannot start its supervisor: {e}"
                ) from e
            except forkserver.ServerGoneError as e:
                log.warning("local executor: %s; starting a new one", e)
                os.close(fds[1])
                fds[1] = -1
                try:
                    fds[1] = _locked(trial_dir, blocking=False, legacy=True)
                except OSError:
                    # BlockingIOError: a forked supervisor holds it, the trial runs. Other
                    # errors: unknown, so taken as started (its records will tell).
                    return True, None
                if not _never_started(trial_dir, lock_checked=True):
                    return True, trial_state.identity_from_disk(trial_dir)  # ran and ended
                continue
            return True, ProcessId(pid, start_ticks, trial_state.this_boot())
        log.warning(
            "local executor: two fork servers in a row died; each trial now gets a supervisor"
            " process of its own"
        )
        self._use_fork_server = False
        return False, None

    def _fork_server(self) -> forkserver.ForkServer | None:
        """The live fork server, started if need be; None where supervisors are not forked
        (not Linux) or the server cannot be started."""
        if not self._use_fork_server:
            return None
        with self._lock:
            if self._server is not None and self._server.alive():
                return self._server
            if self._server is not None:
                self._server.close()
            try:
                # tuner's own interpreter, not the trials' (python_executable): a known one.
                self._server = forkserver.ForkServer(sys.executable or self.python_executable)
            except OSError as e:
                log.warning(
                    "local executor: cannot start its fork server (%s); each trial gets a"
                    " supervisor process of its own",
                    e,
                )
                self._server = None
                self._use_fork_server = False
            return self._server

    def _spawn_supervisor(
        self,
        trial_name: str,
        trial_dir: Path,
        cwd: Path,
        deadline: float | None,
        grace: float,
        command: list[str],
        env: Mapping[str, str],
        cpus: str,
        log_fd: int,
        lock_fd: int,
    ) -> subprocess.Popen[bytes]:
        """Start ``python -I -S _supervisor.py`` for the trial: the way where there is no
        fork server."""
        supervisor_env = dict(env)
        if cpus:
            # Read (and removed) by the supervisor, which pins itself: the trial inherits it.
            supervisor_env[sv.AFFINITY_VARIABLE] = cpus
        supervisor_argv = [
            self.python_executable,
            "-I",  # ignore PYTHON* variables meant for the trial
            "-S",  # no site-packages: faster, and the supervisor needs only the stdlib
            sv.__file__,
            str(trial_dir),
            str(cwd),
            "-" if deadline is None else repr(deadline),
            repr(grace),
        ]
        try:
            return subprocess.Popen(
                [*supervisor_argv, str(lock_fd), "--", *command],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                env=supervisor_env,
                cwd=trial_dir,
                start_new_session=True,  # Ctrl-C on the controller's terminal spares trials
                close_fds=True,
                pass_fds=(lock_fd,),
            )
        except OSError as e:
            raise LaunchError(f"trial {trial_name!r}: cannot start its supervisor: {e}") from e

    def resolve_argv(self, argv: Sequence[str]) -> list[str]:
        """The argv that will run: validated, ``python``/``python3`` mapped (see class doc)."""
        if isinstance(argv, (str, bytes)) or not argv:
            raise LaunchError(f"argv: {argv!r} is not a non-empty list of strings")
        command = []
        for i, arg in enumerate(argv):
            if not isinstance(arg, str):
                raise LaunchError(f"argv[{i}]: {arg!r} is not a string")
            if "\0" in arg:
                raise LaunchError(
                    f"argv[{i}]: {arg!r} contains a NUL byte, which no argument can hold"
                )
            command.append(arg)
        if command[0] in _PYTHON_NAMES:
            command[0] = self.python_executable
        return command

    def trial_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The trial's full environment (precedence in the class doc)."""
        merged = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for key, value in env.items():
            if not isinstance(key, str) or not key or "=" in key or "\0" in key:
                raise LaunchError(f"env: {key!r} is not a valid environment variable name")
            if not isinstance(value, str) or "\0" in value:
                raise LaunchError(f"env.{key}: {value!r} is not a string without NUL bytes")
            merged[key] = value
        return merged


def _positive(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise LaunchError(f"deadline_seconds: {value!r} is not a positive number")
    return float(value)


def _non_negative(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise LaunchError(f"{field}: {value!r} is not a non-negative number")
    return float(value)


def _locked(trial_dir: Path, *, blocking: bool = True, legacy: bool = False) -> int:
    """The trial's lock, opened and taken: held by its supervisor while that lives. An
    ``flock`` on the trial directory, not on a file of its own: each file is an inode to
    create (and, when the run directory goes, to free), which some filesystems make slow.
    ``legacy``: a directory that an older version may have made, whose lock file counts.
    Where a directory cannot be locked (NFS emulates ``flock`` with byte-range locks, which
    a directory does not take), the lock file is made and locked instead: readers take it
    wherever it exists."""
    fd = trial_state.open_lock(trial_dir, legacy=legacy)
    how = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
    try:
        fcntl.flock(fd, how)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError as e:
        os.close(fd)
        if e.errno not in _NO_DIRECTORY_LOCK:
            raise
        fd = os.open(
            trial_dir / sv.LEGACY_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        try:
            fcntl.flock(fd, how)
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        os.close(fd)
        raise
    return fd


# What ``flock`` on a directory answers where the filesystem cannot lock one.
_NO_DIRECTORY_LOCK = frozenset({errno.EBADF, errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP})
