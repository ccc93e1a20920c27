"""LocalExecutor.wait: blocks on the supervisor's exit (its pidfd where Linux has one)."""

from __future__ import annotations

import subprocess
import sys

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
