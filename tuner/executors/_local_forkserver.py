"""The controller's side of the local executor's fork server (``_forkserver.py``): starts it,
asks it to fork a trial's supervisor, and tells a dead server from a refused request."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

from tuner.executors import _forkserver as fs


def available() -> bool:
    """Where supervisors are forked: Linux (pidfds to wait on a process that is not our
    child, ``/proc`` to name it by start time); elsewhere one supervisor process per trial."""
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open")


class ServerGoneError(Exception):
    """The fork server died (or could not be reached) before it answered."""


class RequestRefusedError(Exception):
    """The fork server is alive but could not start the supervisor (``fork`` failed...)."""


class ForkServer:
    """One fork server process. Thread-safe: requests are serialised."""

    def __init__(self, python_executable: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [python_executable, "-I", "-S", fs.__file__],
                stdin=theirs.fileno(),
                # Never the controller's stdout/stderr: the server outlives the controller
                # while trials run, and would keep a pipe from it open.
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C on the controller's terminal spares it
                close_fds=True,
                cwd="/",  # holds no directory of the controller's (each child moves on)
                # Every symbol bound at start: lazy binding would write to the server's
                # binding tables in each forked supervisor (a copied page per first call).
                # The trials get the environment sent with each request, not this one.
                env={**os.environ, "LD_BIND_NOW": "1"},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._socket = ours
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self._socket is not None and self.process.poll() is None

    def start_supervisor(
        self,
        *,
        trial_dir: str,
        working_dir: str,
        deadline: float | None,
        grace: float,
        argv: Sequence[str],
        env: Mapping[str, str],
        cpus: str,
        log_fd: int,
        lock_fd: int,
        done_fd: int | None = None,
    ) -> tuple[int, int | None]:
        """Fork a supervisor for this trial; its (pid, start ticks). ``done_fd``: the write
        end of a pipe, closed by the supervisor once it has written ``outcome.json`` (None: a
        pipe nobody reads).

        Raises :class:`ServerGoneError` if the server died before it answered (a supervisor
        may or may not have been forked: the caller asks the trial's lock), and
        :class:`RequestRefusedError` if it answered that it could not fork.
        """
        request: dict[str, object] = {
            "trial_dir": trial_dir,
            "working_dir": working_dir,
            "deadline": deadline,
            "grace": grace,
            "argv": list(argv),
            "env": dict(env),
            "cpus": cpus,
        }
        message = fs.encode(request)
        unread: tuple[int, int] | None = None
        if done_fd is None:
            unread = os.pipe()
            done_fd = unread[1]
        try:
            return self._request(message, [log_fd, lock_fd, done_fd])
        finally:
            if unread is not None:
                for fd in unread:
                    os.close(fd)

    def _request(self, message: bytes, fds: list[int]) -> tuple[int, int | None]:
        with self._lock:
            if not self.alive():
                raise ServerGoneError("the fork server has exited")
            try:
                sent = socket.send_fds(self._socket, [message], fds)
                if sent < len(message):
                    self._socket.sendall(message[sent:])
                reply = fs.receive(self._socket)
            except OSError as e:
                raise ServerGoneError(f"the fork server is unreachable: {e}") from e
        if reply is None:
            raise ServerGoneError("the fork server closed its socket")
        answer = reply[0]
        if not isinstance(answer, dict) or "pid" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise RequestRefusedError(str(error))
        return answer["pid"], answer.get("start_ticks")

    def close(self) -> None:
        """Close our end: the server exits once the supervisors it started have ended."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None  # type: ignore[assignment]
        self.process.poll()  # reap it if it is gone already
