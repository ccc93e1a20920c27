"""Fork server of the local executor: one long-lived process per executor that starts each
trial's supervisor by forking itself, so that no Python interpreter starts per trial.

Run as ``python -I -S <this file>`` with a Unix stream socket as stdin. Each request is a
length-prefixed ``marshal`` record (trial dir, working dir, deadline, grace, argv, env,
CPUs) with the trial's log and lock descriptors attached (``SCM_RIGHTS``). The server forks;
the child becomes exactly the per-trial supervisor that ``_supervisor.py`` is (own session,
stdout and stderr to the log, the lock held, subreaper, ``supervisor.json`` and
``outcome.json``) and never returns to the server. The reply is the child's pid and start
time, or an error. The server reaps its children; when the controller's end of the socket
closes (the controller exited or died), it waits for the supervisors it forked to end and
then exits, so none is left a zombie. Should the server die, each supervisor runs on alone.
"""

from __future__ import annotations

import marshal
import os
import socket
import struct
import sys
from typing import Any

try:
    import _signal as signal
except ImportError:  # pragma: no cover - non-CPython
    import signal

if __name__ == "__main__":  # run by path with -I: the package is not importable
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _supervisor as sv
else:
    from tuner.executors import _supervisor as sv

HEADER = struct.Struct("!I")
MAX_FDS = 2  # the trial's log and lock
_LOCK_FD = 3  # where the child keeps the lock (0-2 are stdin, stdout, stderr)


def encode(request: Any) -> bytes:
    body = marshal.dumps(request)
    return HEADER.pack(len(body)) + body


def receive(sock: socket.socket, with_fds: int = 0) -> tuple[object, list[int]] | None:
    """One length-prefixed record and the descriptors sent with it; None at end of stream."""
    fds: list[int] = []
    header = b""
    while len(header) < HEADER.size:
        if with_fds and not fds:
            chunk, fds, _, _ = socket.recv_fds(sock, HEADER.size - len(header), with_fds)
        else:
            chunk = sock.recv(HEADER.size - len(header))
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None
        header += chunk
    (size,) = HEADER.unpack(header)
    body = bytearray()
    while len(body) < size:
        chunk = sock.recv(min(size - len(body), 1 << 20))
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None
        body += chunk
    return marshal.loads(bytes(body)), list(fds)


class _Server:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: set[int] = set()

    def reap(self, signum: int = 0, frame: object = None) -> None:
        while self.children:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if not pid:
                return
            self.children.discard(pid)

    def serve(self) -> None:
        sv.prepare_prctl()
        sv.prepare_records()
        signal.signal(signal.SIGCHLD, self.reap)
        # Ctrl-C or a hang-up meant for the controller must not end the server early.
        for signum in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        while True:
            try:
                received = receive(self.sock, MAX_FDS)
            except OSError:
                received = None
            if received is None:
                break
            request, fds = received
            try:
                reply = self.start(request, fds)
            finally:
                for fd in fds:
                    os.close(fd)  # the child holds them now: the lock is its alone
            try:
                self.sock.sendall(encode(reply))
            except OSError:
                break
        # The controller is gone: stay the parent (and reaper) of what we started.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        while True:
            try:
                os.wait()
            except ChildProcessError:
                return

    def start(self, request: object, fds: list[int]) -> dict[str, object]:
        if not isinstance(request, dict) or len(fds) != MAX_FDS:
            return {"error": f"bad request: {type(request).__name__} with {len(fds)} fds"}
        sys.stdout.flush()
        sys.stderr.flush()
        # No reaping between the fork and reading the child's start time: a pid read after
        # the child was reaped could name another process.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            try:
                pid = os.fork()
            except OSError as e:
                return {"error": f"fork: {e.strerror}"}
            if pid == 0:
                _become_supervisor(self.sock, request, fds)  # never returns
            self.children.add(pid)
            return {"pid": pid, "start_ticks": sv.proc_start_ticks(pid)}
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def _become_supervisor(server_socket: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: set up what ``Popen`` gives a supervisor process, then supervise."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for signum in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        null = os.open(os.devnull, os.O_RDONLY)
        server_socket.close()
        os.setsid()  # Ctrl-C on the controller's terminal spares trials
        log_fd, lock_fd = fds
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        # The lock marks "a supervisor is alive" while we run; the trial must not inherit it.
        os.dup2(lock_fd, _LOCK_FD, inheritable=False)
        _close_from(_LOCK_FD + 1)
        os.chdir(request["trial_dir"])
        sv.pin_to_cpus(request.get("cpus") or "")
        deadline = request.get("deadline")
        code = sv.supervise(
            request["trial_dir"],
            request["working_dir"],
            None if deadline is None else float(deadline),
            float(request["grace"]),
            list(request["argv"]),
            env=dict(request["env"]),
        )
    except BaseException as e:
        try:
            os.write(2, f"tuner: supervisor error: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def _close_from(lowest: int) -> None:
    """Close every descriptor from ``lowest`` up (as ``Popen(close_fds=True)`` does)."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the slow way
        os.closerange(lowest, os.sysconf("SC_OPEN_MAX"))
        return
    for fd in open_fds:
        if fd >= lowest:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory listing's own descriptor, already closed


def main() -> int:
    sock = socket.socket(fileno=os.dup(0))
    os.close(0)
    os.open(os.devnull, os.O_RDONLY)  # fd 0 again, no longer the socket
    _Server(sock).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
