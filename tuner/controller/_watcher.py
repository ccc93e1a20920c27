"""Waking the controller's loop the moment a trial ends: one thread polls the exit
descriptors of every live trial (the local executor's pidfds) at once."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable


class ExitWatcher:
    """One thread, started with the first descriptor, that calls ``on_exit`` whenever one
    of the watched descriptors becomes readable (its trial ended) and closes it.

    `watch` hands a descriptor over (the watcher closes it); `close` stops the thread and
    closes what it still holds. A trial's launch no longer starts a thread of its own:
    that cost the loop a thread start (and its hand-shake) per trial.
    """

    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._new: list[int] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None  # a pipe: read end, write end

    def watch(self, fd: int) -> None:
        """Watch ``fd`` (now the watcher's to close) until it is readable."""
        with self._lock:
            if self._closed:
                os.close(fd)
                return
            self._new.append(fd)
            if self._thread is None:
                self._wake = os.pipe()  # non-inheritable, as Python makes them
                self._thread = threading.Thread(
                    target=self._run, args=(self._wake[0],), name="trial-exits", daemon=True
                )
                self._thread.start()
                return
            wake = self._wake[1] if self._wake is not None else None
        if wake is not None:
            _nudge(wake)

    def close(self) -> None:
        """Stop watching; every descriptor still held is closed (the trials run on)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread, wake = self._thread, self._wake
        if thread is None or wake is None:
            return
        _nudge(wake[1])
        thread.join()
        os.close(wake[1])

    def _run(self, wake: int) -> None:
        poller = select.poll()  # not select: descriptors may pass FD_SETSIZE
        poller.register(wake, select.POLLIN)
        held: set[int] = set()
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    new, self._new = self._new, []
                for fd in new:
                    poller.register(fd, select.POLLIN)
                    held.add(fd)
                ended = False
                for fd, _ in poller.poll():
                    if fd == wake:
                        os.read(wake, 512)  # the nudges of the descriptors just added
                        continue
                    poller.unregister(fd)
                    held.discard(fd)
                    os.close(fd)
                    ended = True
                if ended:
                    self._on_exit()
        finally:
            with self._lock:
                held.update(self._new)
                self._new = []
            for fd in held:
                os.close(fd)
            os.close(wake)


def _nudge(fd: int) -> None:
    try:
        os.write(fd, b"\0")
    except BlockingIOError:  # pragma: no cover - the pipe is full: the thread is awake anyway
        pass
