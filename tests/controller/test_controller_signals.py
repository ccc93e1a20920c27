"""Interrupts that arrive while a trial is being started are held until it is recorded."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tuner.controller._signals import deferred_interrupts


@pytest.fixture
def sigterm_interrupts() -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("sigterm_interrupts")
def test_sigterm_inside_the_block_is_raised_after_it() -> None:
    steps = []
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("started")  # would never run if the signal interrupted the block
            steps.append("recorded")
    assert steps == ["started", "recorded"]


@pytest.mark.usefixtures("sigterm_interrupts")
def test_handlers_are_restored_and_nothing_pending_means_nothing_raised() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with deferred_interrupts():
        pass
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)


def test_sigint_keeps_its_default_keyboard_interrupt() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
