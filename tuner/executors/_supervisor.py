"""Supervisor process of one local trial: starts the trial's command, enforces its deadline,
and records how it ended in ``outcome.json`` so a restarted controller can still learn it.

Run as ``python -I -S <this file> TRIAL_DIR WORKING_DIR DEADLINE GRACE LOCK_FD -- ARGV...``
(``DEADLINE`` is ``-`` for none; ``LOCK_FD``, the trial directory opened and ``flock``-ed by
the launcher, held for as long as the supervisor lives). It imports only a few built-in
modules so that it starts in milliseconds; the local executor (``tuner.executors._local*``)
imports the file names and helpers below from here.
"""

from __future__ import annotations

import os
import sys
import time

# ``signal`` imports ``enum`` (several ms at every trial start); its C core has all we use.
try:
    import _signal as signal
except ImportError:  # pragma: no cover - non-CPython
    import signal

# 2: ``supervisor.json`` is a file of records, one JSON object a line, appended (1: one
# object, replaced), and the "supervisor alive" lock is an ``flock`` on the trial directory
# (1: on ``LEGACY_LOCK_FILE``). Written into every record; readers go by the files present.
PROTOCOL_VERSION = 2
LOG_FILE = "output.log"
IDENTITY_FILE = "supervisor.json"
OUTCOME_FILE = "outcome.json"
# The lock of trials started by protocol 1, and of those whose directory the filesystem
# cannot lock (see ``_local_launch._locked``): taken wherever it exists.
LEGACY_LOCK_FILE = "supervisor.lock"
KILL_MARKER_FILE = "kill-requested"
AFFINITY_VARIABLE = "TUNER_CPU_AFFINITY"  # the CPUs to pin to, read and removed at start

# The trial reason strings, shared with ``tuner.executors._base.ExitReason``.
COMPLETED = "Completed"
FAILED = "Failed"
DEADLINE_EXCEEDED = "DeadlineExceeded"
KILLED = "Killed"

# After the trial's main process is gone, how long to wait for the rest of it to be reaped
# (all of it was sent SIGKILL, so this only bounds a pathological case).
_REAP_SECONDS = 5.0
_TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36


def proc_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    With the boot id it names a process uniquely, unlike a pid, which the kernel reuses.
    None if the process does not exist or the system has no ``/proc``.
    """
    state_and_ticks = _proc_stat(pid)
    return None if state_and_ticks is None else state_and_ticks[1]


def proc_is_running(pid: int, start_ticks: int | None) -> bool:
    """Whether ``pid`` is a live (not zombie) process that started at ``start_ticks``
    (any start time if None)."""
    stat = _proc_stat(pid)
    if stat is not None:
        state, ticks = stat
        return state not in ("Z", "X", "x") and (start_ticks is None or ticks == start_ticks)
    if os.path.isdir("/proc/self"):
        return False
    return _pid_exists(pid)  # no /proc (not Linux): best effort, pid reuse goes unnoticed


def _proc_stat(pid: int) -> tuple[str, int] | None:
    # os-level calls: ``open()`` builds a buffered file (and its fstat, ioctl, lseeks) to
    # read one short line, on every trial's path.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    try:
        data = os.read(fd, 4096)  # one read: the kernel renders the file whole (< 1 KiB)
    except ProcessLookupError:  # the process went between open and read
        return None
    finally:
        os.close(fd)
    if not data:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_boot_id: list[str | None] = []  # read once (a fork server's children inherit it)


def boot_id() -> str | None:
    """This boot's random id: start ticks count from boot, so they identify a process only
    together with it."""
    if not _boot_id:
        try:
            with open("/proc/sys/kernel/random/boot_id", "rb") as f:
                _boot_id.append(f.read().strip().decode())
        except (OSError, UnicodeDecodeError):
            _boot_id.append(None)
    return _boot_id[0]


def write_json_atomically(path: str, data: dict[str, object]) -> None:
    """Write ``data`` so that readers see either no file or the complete one (the target is
    written once: the rename replaces nothing, so no inode is freed)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        write_all(fd, _dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def create_records(path: str) -> int:
    """Create the file of records ``path`` (it must not exist: a file there means a
    supervisor recorded itself before, and the trial may have run) for appending."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    return os.open(path, flags, 0o666)


def write_all(fd: int, body: bytes) -> None:
    """Write ``body`` with one ``write`` (a loop only should one be short), so that a record
    appended to a file of records lands whole: a reader takes only lines ending in a newline."""
    while body:
        body = body[os.write(fd, body) :]


def prepare_records() -> None:
    """Load what writing the records needs (``_json``, a C extension: loaded in each forked
    supervisor it costs a library load and its page faults) and read the boot id; a fork
    server calls it once, before it forks."""
    _dumps({})
    boot_id()


def _dumps(data: dict[str, object]) -> str:
    # ``json`` costs ~10 ms to import (it pulls in ``re``); these flat records need only this.
    try:
        from _json import encode_basestring_ascii as quote
    except ImportError:  # pragma: no cover - non-CPython
        from json import dumps as quote
    items = []
    for key, value in data.items():
        if value is None:
            text = "null"
        elif value is True or value is False:
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        else:
            text = quote(str(value))
        items.append(f"{quote(key)}: {text}")
    return "{" + ", ".join(items) + "}\n"


class _Supervision:
    """The state the signal handlers and the main flow share."""

    def __init__(
        self, trial_dir: str, deadline: float | None, grace: float, start_ticks: int | None
    ) -> None:
        self.trial_dir = trial_dir
        self.deadline = deadline
        self.grace = grace
        self.child: int | None = None
        self.reason: str | None = None  # KILLED or DEADLINE_EXCEEDED once termination began
        self.signalled = False
        self.exited = False
        self.started_at = time.time()
        self.start_ticks = start_ticks  # ours, read once (`write_identity`) if not given
        self.records = -1  # supervisor.json, open for appending from the first record on

    def on_termination_request(self, signum: int, frame: object) -> None:
        self._terminate(KILLED)

    def on_alarm(self, signum: int, frame: object) -> None:
        if self.reason is None:
            self._terminate(DEADLINE_EXCEEDED)
        elif not self.exited and self.child is not None:
            _signal_trial(self.child, signal.SIGKILL)  # the grace period is over

    def _terminate(self, reason: str) -> None:
        if self.reason is not None or self.exited:
            return
        self.reason = reason
        self.signal_child()

    def signal_child(self) -> None:
        if self.child is None or self.signalled or self.reason is None:
            return
        self.signalled = True
        _signal_trial(self.child, signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, max(self.grace, 0.001))

    def path(self, name: str) -> str:
        return os.path.join(self.trial_dir, name)

    def write_identity(self) -> None:
        """Append a record of who we are (and who the trial is, once spawned) to
        ``supervisor.json``, created by the first: one line, one ``write``, no file replaced."""
        line = self.identity_line()
        if self.records < 0:
            self.records = create_records(self.path(IDENTITY_FILE))
        write_all(self.records, line)

    def close_records(self) -> None:
        if self.records >= 0:
            os.close(self.records)
            self.records = -1

    def identity_line(self) -> bytes:
        return _dumps(self.identity()).encode()

    def identity(self) -> dict[str, object]:
        me = os.getpid()
        if self.start_ticks is None:
            self.start_ticks = proc_start_ticks(me)
        record: dict[str, object] = {
            "version": PROTOCOL_VERSION,
            "pid": me,
            "start_ticks": self.start_ticks,
            "boot_id": boot_id(),
            "started_at": self.started_at,
        }
        if self.child is not None:
            record.update(
                child_pid=self.child,
                child_pgid=self.child,
                child_start_ticks=proc_start_ticks(self.child),
            )
        return record

    def write_outcome(
        self, reason: str, exit_code: int | None, signum: int | None, message: str
    ) -> None:
        write_json_atomically(
            self.path(OUTCOME_FILE), self.outcome(reason, exit_code, signum, message)
        )

    def outcome(
        self, reason: str, exit_code: int | None, signum: int | None, message: str
    ) -> dict[str, object]:
        return {
            "version": PROTOCOL_VERSION,
            "reason": reason,
            "exit_code": exit_code,
            "signal": signum,
            "message": message,
            "started_at": self.started_at,
            "finished_at": time.time(),
            "child_pid": self.child,
        }


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_trial(child: int, signum: int) -> None:
    """Signal the trial's process group, and its main process even if that left the group
    (a command run through ``setsid``), so that the deadline holds for it too."""
    _killpg(child, signum)
    try:
        if os.getpgid(child) != child:
            os.kill(child, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _become_subreaper() -> None:
    """Orphans of the trial (a grandchild whose parent died) become our children, so we can
    reap them instead of leaving zombies to an init that may never reap."""
    if not sys.platform.startswith("linux"):
        return
    try:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except (OSError, AttributeError, ImportError, TypeError):  # pragma: no cover - exotic libc
        pass


_prctl_function: object = None  # built once: a fork server's children inherit it


def _prctl(option: int, value: int) -> None:
    """Call libc's ``prctl`` through ``_ctypes`` alone: importing ``ctypes`` (its many
    classes) takes a millisecond or two of every trial's start; this, a few hundred
    microseconds. ``ctypes`` is the fallback should the C core differ."""
    prctl = prepare_prctl()
    if prctl is None:  # pragma: no cover
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
        return
    prctl(option, value, 0, 0, 0)  # type: ignore[operator]


def prepare_prctl() -> object:
    """libc's ``prctl`` as a ``_ctypes`` function, built on first use (None if it cannot be);
    a fork server calls it once so that the supervisors it forks find it built."""
    global _prctl_function
    if _prctl_function is None:
        try:
            import _ctypes

            class _Int(_ctypes._SimpleCData):
                _type_ = "i"

            class _Libc:
                _handle = _ctypes.dlopen(None)  # type: ignore[arg-type]  # None: the program

            class _Function(_ctypes.CFuncPtr):
                _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
                _restype_ = _Int

            _prctl_function = _Function(("prctl", _Libc()))  # type: ignore[arg-type]
        except (ImportError, AttributeError, TypeError, OSError):  # pragma: no cover
            return None
    return _prctl_function


def _signal_name(signum: int) -> str:
    names = {
        signal.SIGTERM: "SIGTERM",
        signal.SIGKILL: "SIGKILL",
        signal.SIGINT: "SIGINT",
        signal.SIGHUP: "SIGHUP",
        signal.SIGSEGV: "SIGSEGV",
        signal.SIGABRT: "SIGABRT",
    }
    return names.get(signum, f"signal {signum}")


def _spawn(sup: _Supervision, argv: list[str], env: dict[str, str]) -> None:
    blocked = {*_TERMINATION_SIGNALS, signal.SIGALRM}
    # Handlers must not see a child that is spawned but not yet recorded.
    signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        if sup.reason is not None:
            return  # killed while starting: do not start the trial at all
        sup.child = os.posix_spawnp(
            argv[0],
            argv,
            env,
            setpgroup=0,  # the trial's own process group, so kill() reaches its descendants
            setsigmask=(),
            # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec, so reset them.
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, *_TERMINATION_SIGNALS),
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
    sup.signal_child()  # a termination request that came during the spawn


def _wait_for_child(sup: _Supervision) -> tuple[int | None, int | None]:
    """Wait until the trial's main process ends; return (exit code, terminating signal).

    The child is left a zombie while the rest of its group is killed, so its pid (the group
    id) cannot be reused by an unrelated group in between.
    """
    assert sup.child is not None
    while True:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        if info is None:  # pragma: no cover - only with WNOHANG
            continue
        if info.si_pid == sup.child:
            break
        os.waitpid(info.si_pid, 0)  # an orphan that was handed to us as subreaper
    sup.exited = True
    signal.setitimer(signal.ITIMER_REAL, 0)
    if info.si_code == os.CLD_EXITED:
        return info.si_status, None
    return None, info.si_status


def _reap_everything(pgid: int) -> None:
    """Kill and reap what is left of the trial once its main process has ended, as
    Kubernetes does with a pod's other processes: its process group, and descendants that
    left the group (``setsid``) but were handed to us, the subreaper, when orphaned."""
    _killpg(pgid, signal.SIGKILL)
    os.waitpid(pgid, 0)  # the main process, a zombie until now
    give_up = time.monotonic() + _REAP_SECONDS
    while True:
        # Reaped first: with no child left (the usual case) nothing of the trial is ours,
        # and listing our children in /proc would find none.
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return  # nothing left of it that is ours
        for pid in _children():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > give_up:
            return
        time.sleep(0.005)


def _children() -> list[int]:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(pid) for pid in f.read().split()]
    except OSError:
        return []


def _describe(reason: str, exit_code: int | None, signum: int | None, sup: _Supervision) -> str:
    ended = (
        f"exited with code {exit_code}"
        if exit_code is not None
        else f"was terminated by {_signal_name(signum or 0)}"
    )
    if reason == DEADLINE_EXCEEDED:
        return f"activeDeadlineSeconds ({sup.deadline:g}) exceeded; the trial {ended}"
    if reason == KILLED:
        return f"killed on request; the trial {ended}"
    return f"the trial {ended}"


def rehearse() -> None:
    """Run, to no effect, what a supervisor runs once it has its trial. In a child forked
    by the fork server each first write to a page (a reference count, a code object's
    counters, the allocator's lists) copies it: a spare child rehearses while it waits for
    its request, so that fewer copies wait for it once its trial is known."""
    sup = _Supervision(os.curdir, 1.0, 0.0, None)  # were it to write: to the cwd
    sup.child = os.getpid()  # a process that exists, to read as the trial's
    for _ in range(2):
        sup.identity_line()
        write_all(sup.records, b"")  # the write path's code, with nothing to write
        sup.path(IDENTITY_FILE)
        for reason, code, signum in ((COMPLETED, 0, None), (DEADLINE_EXCEEDED, None, 15)):
            message = _describe(reason, code, signum, sup)
            _dumps(sup.outcome(reason, code, signum, message)).encode()
        sup.path(OUTCOME_FILE)


def supervise(
    trial_dir: str,
    working_dir: str,
    deadline: float | None,
    grace: float,
    argv: list[str],
    env: dict[str, str] | None = None,
    start_ticks: int | None = None,
) -> int:
    """Run ``argv`` to its end and write ``outcome.json``; return the supervisor's exit code.

    ``env`` is the trial's environment (default: this process's); ``start_ticks``, this
    process's start time if known (else read from ``/proc``).
    """
    sup = _Supervision(trial_dir, deadline, grace, start_ticks)
    for signum in _TERMINATION_SIGNALS:
        signal.signal(signum, sup.on_termination_request)
    signal.signal(signal.SIGALRM, sup.on_alarm)
    _become_subreaper()
    try:
        return _run(sup, working_dir, argv, dict(os.environ) if env is None else env)
    except BaseException as e:
        if sup.child is not None and not sup.exited:
            _signal_trial(sup.child, signal.SIGKILL)
        sup.write_outcome(FAILED, None, None, f"supervisor error: {type(e).__name__}: {e}")
        raise


def _run(sup: _Supervision, working_dir: str, argv: list[str], env: dict[str, str]) -> int:
    sup.write_identity()
    if not os.path.exists(sup.path(KILL_MARKER_FILE)):
        try:
            os.chdir(working_dir)
        except OSError as e:
            return _cannot_start(sup, f"cannot use working directory {working_dir!r}", e)
        if sup.deadline is not None:
            signal.setitimer(signal.ITIMER_REAL, sup.deadline)
        try:
            _spawn(sup, argv, env)
        except OSError as e:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return _cannot_start(sup, f"cannot run {argv[0]!r}", e)
    if sup.child is None:
        sup.write_outcome(KILLED, None, None, "killed on request before the trial started")
        return 0
    sup.write_identity()
    sup.close_records()  # the last identity record: the trial is known
    exit_code, signum = _wait_for_child(sup)
    _reap_everything(sup.child)
    if sup.reason is not None:
        reason = sup.reason
    else:
        reason = COMPLETED if exit_code == 0 else FAILED
    sup.write_outcome(reason, exit_code, signum, _describe(reason, exit_code, signum, sup))
    return 0


def _cannot_start(sup: _Supervision, what: str, error: OSError) -> int:
    # The shell's codes: 127 for "not found", 126 for "found but cannot run".
    code = 127 if isinstance(error, FileNotFoundError) else 126
    message = f"{what}: {error.strerror}"
    print(f"tuner: {message}", file=sys.stderr, flush=True)
    sup.write_outcome(FAILED, code, None, message)
    return 0


def pin_to_cpus(cpus: str) -> None:
    """Run on these CPUs only (the trial, spawned later, inherits it), where the OS can."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return
    try:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    except (OSError, ValueError) as e:
        print(f"tuner: CPU affinity {cpus} not set: {e}", file=sys.stderr, flush=True)


def main(args: list[str]) -> int:
    if len(args) < 7 or args[5] != "--":
        print(
            "usage: _supervisor.py TRIAL_DIR WORKING_DIR DEADLINE GRACE LOCK_FD -- ARGV...",
            file=sys.stderr,
        )
        return 2
    trial_dir, working_dir, deadline, grace, lock_fd = args[:5]
    pin_to_cpus(os.environ.pop(AFFINITY_VARIABLE, ""))
    # The lock fd (the trial directory, flock-ed) marks "a supervisor is alive" for as long
    # as we run; the trial must not inherit it, or a trial that outlived us would look like
    # a live supervisor.
    os.set_inheritable(int(lock_fd), False)
    return supervise(
        trial_dir,
        working_dir,
        None if deadline == "-" else float(deadline),
        float(grace),
        args[6:],
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
