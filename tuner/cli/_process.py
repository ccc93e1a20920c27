"""Garbage collection around a command's start-up and the process's end.

Starting `tuner run` allocates a few hundred thousand objects that live as long as the
process (modules, classes, the spec models, SQLAlchemy's and gRPC's tables); the cyclic
collector traces them again at each of its passes while they pile up, and once more when
the interpreter exits. A run therefore starts with the collector off and turns it on when
its work begins; a process whose command line this is (``main()`` without arguments) first
takes the start-up objects out of the collector's sight for good (``gc.freeze``), and does
so again before it exits, leaving its heap to the operating system.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

_owns_process = False


def own_process() -> None:
    """Declare that this process ends when the command ends (``main()`` of ``sys.argv``): the
    objects alive at the end of the start-up may then stay uncollected."""
    global _owns_process
    _owns_process = True


def before_exit() -> None:
    """The command has ended and the process exits next: no collection at exit (the objects
    left are freed with the process). Nothing unless the process is the command's own."""
    if _owns_process:
        gc.freeze()


@contextlib.contextmanager
def collection_paused() -> Iterator[Callable[[], None]]:
    """The collector off inside the block until the function it yields is called (the start-up
    is over); on again at the latest when the block ends. A collector that was already off
    is left alone."""
    paused = gc.isenabled()
    gc.disable()

    def resume() -> None:
        nonlocal paused
        if paused:
            paused = False
            if _owns_process:
                gc.freeze()
            gc.enable()

    try:
        yield resume
    finally:
        resume()
