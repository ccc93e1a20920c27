"""Fork server of the local executor: one long-lived process per executor that starts each
trial's supervisor by forking itself, so that no Python interpreter starts per trial.

Run as ``python -I -S <this file>`` with a Unix stream socket as stdin. Each request is a
length-prefixed ``marshal`` record (trial dir, working dir, deadline, grace, argv, env,
CPUs) with the trial's log and lock (its directory, ``flock``-ed) descriptors attached
(``SCM_RIGHTS``), and the write end of a pipe that the supervisor closes once it has written
``outcome.json``. The server hands it, descriptors and all, to a spare child it forked
beforehand (when it started, and whenever a child has exited, so that the fork runs while
the controller takes in the trial that ended; at once if there is none); the child becomes
exactly the per-trial supervisor that ``_supervisor.py`` is (own session, stdout and stderr
to the log, the lock held, subreaper, ``supervisor.json`` and ``outcome.json``) and never
returns to the server. The reply is the child's pid and start time, or an error. A spare
whose server closes its socket before a request came exits having started nothing. The
server reaps its children; when the controller's end of the socket closes (the controller
exited or died), it waits for the supervisors it forked to end and then exits, so none is
left a zombie. Should the server die, each supervisor runs on alone.
"""

from __future__ import annotations

# ``_socket``, not ``socket``: that imports ``enum`` and ``selectors``, memory that every
# forked supervisor maps and, when it exits, unmaps.
import _socket
import marshal
import os
import select
import struct
import sys

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
MAX_FDS = 3  # the trial's log and lock, and the write end of its "outcome written" pipe
_LOCK_FD = 3  # where the child keeps the lock (0-2 are stdin, stdout, stderr)


def encode(request: dict[str, object]) -> bytes:
    body = marshal.dumps(request)
    return HEADER.pack(len(body)) + body


def send_fds(sock: _socket.socket, message: bytes, fds: list[int]) -> None:
    """Send ``message`` with the descriptors ``fds`` attached to its first byte."""
    rights = struct.pack(f"{len(fds)}i", *fds)
    sent = sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    if sent < len(message):
        sock.sendall(message[sent:])


def _recv_fds(sock: _socket.socket, size: int, max_fds: int) -> tuple[bytes, list[int]]:
    # Close-on-exec from the start: no trial inherits them by accident.
    chunk, ancillary, _, _ = sock.recvmsg(
        size, _socket.CMSG_LEN(max_fds * _INT_SIZE), _MSG_CMSG_CLOEXEC
    )
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            count = len(data) // _INT_SIZE
            fds.extend(struct.unpack(f"{count}i", data[: count * _INT_SIZE]))
    return chunk, fds


_INT_SIZE = struct.calcsize("i")
_MSG_CMSG_CLOEXEC = getattr(_socket, "MSG_CMSG_CLOEXEC", 0)


def receive(sock: _socket.socket, with_fds: int = 0) -> tuple[object, list[int]] | None:
    """One length-prefixed record and the descriptors sent with it; None at end of stream."""
    fds: list[int] = []
    header = b""
    while len(header) < HEADER.size:
        if with_fds and not fds:
            chunk, fds = _recv_fds(sock, HEADER.size - len(header), with_fds)
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


class _Spare:
    """A child forked ahead of the next request, waiting on its own socket for it: the fork
    and what the child sets up before it knows its trial are off the trial's path."""

    def __init__(self, pid: int, start_ticks: int | None, channel: _socket.socket) -> None:
        self.pid = pid
        self.start_ticks = start_ticks
        self.channel = channel


class _Server:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.children: set[int] = set()
        self.spare: _Spare | None = None
        self.own_fds: list[int] = []  # the server's descriptors besides its socket
        self.fork_error = ""

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
        # A child's exit writes to this pipe: the moment to fork the next spare, while the
        # controller takes in the trial that ended (not while a trial starts: they would
        # share the CPUs).
        woken, wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.own_fds = [woken, wake]
        signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, self.reap)
        # Ctrl-C or a hang-up meant for the controller must not end the server early.
        for signum in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(woken, select.POLLIN)
        while True:
            if self.spare is None and not self.children:
                self.spare = self.fork_spare()  # None if fork failed: tried again at need
            ready = {fd for fd, _ in poller.poll()}
            if woken in ready:
                try:
                    while os.read(woken, 512):
                        pass
                except BlockingIOError:
                    pass
                if self.spare is None:
                    self.spare = self.fork_spare()
            if self.sock.fileno() not in ready:
                continue
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
        if self.spare is not None:
            self.spare.channel.close()  # it ends without having started anything
            self.spare = None
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        while True:
            try:
                os.wait()
            except ChildProcessError:
                return

    def start(self, request: object, fds: list[int]) -> dict[str, object]:
        """Hand the request to the spare child, which becomes the trial's supervisor."""
        if not isinstance(request, dict) or len(fds) != MAX_FDS:
            return {"error": f"bad request: {type(request).__name__} with {len(fds)} fds"}
        message = encode(request)
        for _ in range(2):  # a spare found dead (killed while it waited) is replaced once
            spare, self.spare = self.spare or self.fork_spare(fds), None
            if spare is None:
                return {"error": f"fork: {self.fork_error}"}
            try:
                send_fds(spare.channel, message, fds)
            except OSError:
                continue
            finally:
                # What was sent stays readable to the spare; nothing else goes to it.
                spare.channel.close()
            return {"pid": spare.pid, "start_ticks": spare.start_ticks}
        return {"error": "the forked supervisor exited before it got its trial"}

    def fork_spare(self, request_fds: tuple[int, ...] | list[int] = ()) -> _Spare | None:
        """Fork a child that waits for the next request. ``request_fds`` are the
        descriptors of a request being served (the child must not keep them)."""
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        # No reaping between the fork and reading the child's start time: a pid read after
        # the child was reaped could name another process.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            try:
                pid = os.fork()
            except OSError as e:
                ours.close()
                theirs.close()
                self.fork_error = e.strerror or str(e)
                return None
            if pid == 0:
                _become_supervisor(
                    theirs, [self.sock, ours], [*self.own_fds, *request_fds]
                )  # never returns
            theirs.close()
            self.children.add(pid)
            return _Spare(pid, sv.proc_start_ticks(pid), ours)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def _become_supervisor(
    channel: _socket.socket, sockets: list[_socket.socket], fds: list[int]
) -> None:
    """In the forked child: set up what ``Popen`` gives a supervisor process, wait on
    ``channel`` for the trial's request, then supervise it; ends, having started nothing, if
    the server closes the channel first (the controller has gone). ``sockets`` and ``fds``
    are the server's, closed here: the descriptors that remain are known, so none is left
    to list and close in ``/proc/self/fd`` (and the trial inherits only 0-2: Python's own
    descriptors are close-on-exec)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)  # the server's pipe
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for signum in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        for sock in sockets:
            sock.close()
        for fd in fds:
            os.close(fd)
        os.setsid()  # Ctrl-C on the controller's terminal spares trials
        # Before the request, all that does not depend on it.
        start_ticks = sv.proc_start_ticks(os.getpid())
        waiter = select.poll()
        waiter.register(channel, select.POLLIN)
        if not waiter.poll(0):  # forked for a request already sent: no time to rehearse
            sv.rehearse()
        try:
            received = receive(channel, MAX_FDS)
        except OSError:
            received = None
        if received is None:
            code = 0
            return
        request, (log_fd, lock_fd, done_fd) = received
        channel.close()
        if not isinstance(request, dict):  # the server sends only what it checked
            raise TypeError(f"bad request: {type(request).__name__}")
        if done_fd == _LOCK_FD:
            done_fd = os.dup(done_fd)  # out of the lock's way (close-on-exec, as received)
        # 0 is /dev/null already, inheritable (the server's, see main()).
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        # The lock marks "a supervisor is alive" while we run; the trial must not inherit it
        # (nor the log's and the lock's descriptors as received, which are inheritable).
        if lock_fd == _LOCK_FD:
            os.set_inheritable(lock_fd, False)
        else:
            os.dup2(lock_fd, _LOCK_FD, inheritable=False)  # replaces the log's, if there
        for fd in {log_fd, lock_fd} - {0, 1, 2, _LOCK_FD}:
            os.close(fd)
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
            start_ticks=start_ticks,
        )
        # outcome.json is written: the controller, woken by this, need not wait for our
        # exit (the unmapping of a copy of the server) to read it.
        os.close(done_fd)
    except BaseException as e:
        try:
            os.write(2, f"tuner: supervisor error: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def main() -> int:
    sock = _socket.socket(fileno=os.dup(0))
    os.close(0)
    os.open(os.devnull, os.O_RDONLY)  # fd 0 again, no longer the socket
    os.set_inheritable(0, True)  # the trials' stdin (os.open made it close-on-exec)
    _Server(sock).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
