"""LocalExecutor.wait: blocks on the supervisor's exit (its pidfd where Linux has one)."""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest

from tuner.executors import ExitReason
from tuner.executors._local import _wait_for_exit

from .conftest import WAIT_SECONDS


def test_wait_returns_none_while_running_then_the_outcome_once_it_ends(harness) -> None:
    handle, gate = harness.launch_gated("gated", exit_code=4)
    assert harness.executor.wait(handle, 0.05) is None
    gate.touch()
    outcome = harness.executor.wait(handle, WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.FAILED
    assert outcome.exit_code == 4


def test_wait_after_poll_reaped_the_supervisor_still_returns_the_outcome(harness) -> None:
    handle, gate = harness.launch_gated("reaped")
    gate.touch()
    harness.wait_until(lambda: harness.executor.poll(handle), "the trial to end")
    outcome = harness.executor.wait(handle, WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.COMPLETED


def test_wait_for_exit_reports_a_timeout_an_exit_and_an_already_reaped_child() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    assert _wait_for_exit(child, 0.05) is False
    assert child.returncode is None
    assert child.stdin is not None
    child.stdin.close()  # the child reads EOF and exits
    assert _wait_for_exit(child, WAIT_SECONDS) is True
    assert child.returncode == 0
    assert _wait_for_exit(child, 0.0) is True  # reaped already: no pidfd, no wait


def test_exit_descriptor_becomes_readable_when_the_trial_ends(harness) -> None:
    handle, gate = harness.launch_gated("descriptor")
    fd = harness.executor.exit_descriptor(handle)
    if handle.popen is not None:
        # A supervisor of its own is our child: `wait` reaps it, no descriptor is offered.
        assert fd is None
        gate.touch()
        assert harness.executor.wait(handle, WAIT_SECONDS) is not None
        return
    if fd is None:
        pytest.skip("no pidfds on this platform: the executor offers no exit descriptor")
    try:
        waiter = select.poll()
        waiter.register(fd, select.POLLIN)
        assert waiter.poll(50) == []  # still running
        gate.touch()
        assert waiter.poll(WAIT_SECONDS * 1000) != []
    finally:
        os.close(fd)
    outcome = harness.wait_until(lambda: harness.executor.poll(handle), "the trial's outcome")
    assert outcome.reason is ExitReason.COMPLETED
    # Known to have ended: no descriptor to wait on, "ended" at once.
    assert harness.executor.exit_descriptor(handle) == -1
