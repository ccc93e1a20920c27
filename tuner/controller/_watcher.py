"""Waking the controller's loop the moment a trial ends: its wait between two passes polls
the exit descriptors of every live trial (the local executor's pidfds and pipes) at once."""

from __future__ import annotations

import math
import os
import select
import threading
import time


class ExitWatcher:
    """Exit descriptors and a wake-up pipe, polled by `wait` in the thread that calls it.

    `watch` hands a descriptor over (the watcher closes it once readable, or at `close`);
    `wait` sleeps until one of them is readable, `wake` is called, or the timeout passes.
    `watch`, `wait` and `close` are the loop's (one thread); `wake` may be called from any
    thread. The loop's own thread polls: a watcher thread of its own cost every trial two
    thread switches (the nudge at launch, the hand-over of the exit) on the loop's path.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # between `wake` and `close`
        self._held: set[int] = set()
        self._closed = False
        read, write = os.pipe()  # non-inheritable, as Python makes them
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._wake = (read, write)
        self._poller = select.poll()  # not select: descriptors may pass FD_SETSIZE
        self._poller.register(read, select.POLLIN)

    def watch(self, fd: int) -> None:
        """Watch ``fd`` (now the watcher's to close) until it is readable."""
        if self._closed:
            os.close(fd)
            return
        self._poller.register(fd, select.POLLIN)
        self._held.add(fd)

    def wake(self) -> None:
        """End the current or next `wait` at once (from any thread)."""
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self._wake[1], b"\0")
            except BlockingIOError:  # the pipe is full: the wait ends anyway
                pass

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, less if a watched descriptor becomes readable
        (closed and forgotten here) or `wake` is called; whether either happened."""
        if self._closed:
            time.sleep(max(0.0, timeout))
            return False
        read = self._wake[0]
        ready = self._poller.poll(max(0, math.ceil(timeout * 1000)))
        for fd, _ in ready:
            if fd == read:
                try:
                    while os.read(read, 512):
                        pass
                except BlockingIOError:
                    pass
                continue
            self._poller.unregister(fd)
            self._held.discard(fd)
            os.close(fd)
        return bool(ready)

    def close(self) -> None:
        """Stop watching; every descriptor still held is closed (the trials run on)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for fd in (*self._held, *self._wake):
            os.close(fd)
        self._held.clear()
