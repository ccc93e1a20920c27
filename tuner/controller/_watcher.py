"""Waking the controller's loop the moment a trial ends: the loop's wait polls the exit
descriptors of every live trial (the local executor's pidfds) at once."""

from __future__ import annotations

import os
import select
import threading


class ExitWatcher:
    """The exit descriptors of the live trials, waited on by the loop's own thread: `wait`
    returns as soon as one of them is readable (its trial ended) or `wake` was called, and
    closes the readable ones.

    `watch` hands a descriptor over (the watcher closes it); `wake` may be called from any
    thread (a trial's own watcher thread, where the executor has no descriptor); `watch`,
    `wait` and `close` from the loop's thread only. `close` closes what it still holds.
    The loop used to be woken by a thread of the watcher's, through an event: each trial's
    end then cost two thread hand-offs (of the process's one GIL) instead of none.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # `wake` against `close`
        self._closed = False
        self._held: set[int] = set()
        self._wake = os.pipe()  # read end, write end; non-inheritable, as Python makes them
        for fd in self._wake:
            os.set_blocking(fd, False)
        self._poller = select.poll()  # not select: descriptors may pass FD_SETSIZE
        self._poller.register(self._wake[0], select.POLLIN)

    def watch(self, fd: int) -> None:
        """Watch ``fd`` (now the watcher's to close) until it is readable."""
        if self._closed:
            os.close(fd)
            return
        self._poller.register(fd, select.POLLIN)
        self._held.add(fd)

    def wake(self) -> None:
        """Make the current or next `wait` return at once (from any thread)."""
        with self._lock:
            if not self._closed:
                _nudge(self._wake[1])

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, less if a watched descriptor is readable or
        `wake` was called (also before this call, since the last `wait`)."""
        if self._closed:
            return
        for fd, _ in self._poller.poll(max(0, round(timeout * 1000))):
            if fd == self._wake[0]:
                _drain(fd)
                continue
            self._poller.unregister(fd)
            self._held.discard(fd)
            os.close(fd)

    def close(self) -> None:
        """Stop watching; every descriptor still held is closed (the trials run on)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (*self._held, *self._wake):
                os.close(fd)
            self._held.clear()


def _nudge(fd: int) -> None:
    try:
        os.write(fd, b"\0")
    except BlockingIOError:  # the pipe is full: the next wait returns at once anyway
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
