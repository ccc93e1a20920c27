"""The workers of one replica: how many experiment loop passes run at once, handed out first
come, first served, so that with many experiments none waits behind the others."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ExperimentLag:
    """One driven experiment as seen by the pool at one instant."""

    namespace: str
    name: str
    lag: float
    """Seconds since its last loop pass ended (since it was registered, before the first)."""
    queued: float
    """Seconds it has waited for a worker so far (0 while it works or idles)."""


@dataclass(frozen=True)
class PoolStats:
    workers: int
    busy: int
    queued: int
    experiments: tuple[ExperimentLag, ...]


@dataclass
class _Entry:
    namespace: str
    registered: float  # monotonic
    last_pass: float | None = None
    queued_at: float | None = None
    working: bool = False


class WorkerPool:
    """``workers`` turns, each held by one experiment's driver while it works; a strict FIFO
    queue of the drivers waiting for one (oldest waiting first).

    Order of calls per experiment: `register` (queued), then `acquire` from the driver's
    thread, then any number of `release` (its pass ended; it idles) / `requeue` + `acquire`,
    and `unregister` when the driver ends (which also gives back a held turn). `wake` makes
    waiters re-check their ``stopped`` predicate (call it when one is stopped). Thread-safe.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers: {workers} is less than 1")
        self.workers = workers
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._entries: dict[str, _Entry] = {}
        self._busy = 0

    def register(self, name: str, namespace: str) -> None:
        """Add a new driver, waiting for its first turn behind everyone queued now."""
        with self._cond:
            now = time.monotonic()
            self._entries[name] = _Entry(namespace, now, queued_at=now)
            self._queue.append(name)

    def requeue(self, name: str) -> None:
        """Queue an idle driver (its wait between two passes is over) at the back."""
        with self._cond:
            entry = self._entries[name]
            if entry.working or entry.queued_at is not None:
                return
            entry.queued_at = time.monotonic()
            self._queue.append(name)

    def acquire(self, name: str, stopped: Callable[[], bool]) -> bool:
        """Wait until ``name`` is first in the queue and a worker is free, and take it;
        False (and out of the queue) if ``stopped()`` became true first."""
        with self._cond:
            entry = self._entries[name]
            while True:
                # Stopped wins over a free worker: a pass that would stop at once is wasted.
                if stopped():
                    self._leave_queue(name, entry)
                    return False
                if self._busy < self.workers and self._queue and self._queue[0] == name:
                    break
                self._cond.wait()
            self._queue.popleft()
            entry.queued_at = None
            entry.working = True
            self._busy += 1
            # The next in line may find a worker free too.
            self._cond.notify_all()
            return True

    def release(self, name: str) -> None:
        """Give back ``name``'s worker: its pass ended."""
        with self._cond:
            entry = self._entries[name]
            if entry.working:
                entry.working = False
                entry.last_pass = time.monotonic()
                self._busy -= 1
                self._cond.notify_all()

    def unregister(self, name: str) -> None:
        with self._cond:
            entry = self._entries.pop(name, None)
            if entry is None:
                return
            if entry.working:
                self._busy -= 1
            self._leave_queue(name, entry)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def stats(self) -> PoolStats:
        with self._cond:
            now = time.monotonic()
            lags = tuple(
                ExperimentLag(
                    entry.namespace,
                    name,
                    now - (entry.last_pass if entry.last_pass is not None else entry.registered),
                    now - entry.queued_at if entry.queued_at is not None else 0.0,
                )
                for name, entry in sorted(self._entries.items())
            )
            return PoolStats(self.workers, self._busy, len(self._queue), lags)

    def _leave_queue(self, name: str, entry: _Entry) -> None:
        if entry.queued_at is not None:
            entry.queued_at = None
            self._queue.remove(name)
            # Whoever was behind it may be first now.
            self._cond.notify_all()
