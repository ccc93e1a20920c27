"""Deferring Ctrl-C / SIGTERM across the few statements that start a trial and record it.

The reconcile loop turns SIGINT and SIGTERM into KeyboardInterrupt and then kills every trial
it knows. A signal that lands after a trial's process started but before the loop recorded
it would leave that process running unwatched; inside `deferred_interrupts()` such a signal
is held and delivered (to the handler that was installed) as soon as the block ends.
"""

from __future__ import annotations

import _signal
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_SIGNALS = (int(signal.SIGINT), int(signal.SIGTERM))


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration of the block (main thread only: Python runs
    signal handlers there, so other threads need nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append((signum, frame))

    # ``_signal``'s own function: ``signal.signal`` converts numbers and handlers to and
    # from enums, which cost more than the two system calls (this runs twice per trial).
    previous = {signum: _signal.signal(signum, hold) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
        for held, frame in pending:
            _deliver(held, frame, previous[held])


def _deliver(signum: int, frame: FrameType | None, handler: object) -> None:
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        # The default action (terminate): re-send now that the default is back in place.
        os.kill(os.getpid(), signum)
