"""Re-adopting local trials after the controller is gone: live, finished, lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tuner.executors import ExitReason, InvalidReferenceError, LocalExecutor

# A stand-in controller: launches one gated trial, prints its reference, waits to be killed.
CONTROLLER = """
import json, sys, time
from tuner.executors import LocalExecutor
run_dir, trial_code, gate, code = sys.argv[1:5]
ex = LocalExecutor(run_dir)
handle = ex.launch("orphan", ["python3", "-c", trial_code, gate, code], {}, None, None)
print(json.dumps(handle.reference), flush=True)
time.sleep(600)
"""


def _stored(reference: dict[str, Any]) -> dict[str, Any]:
    """What the controller gets back from its database: a JSON round trip."""
    return json.loads(json.dumps(reference))


def test_fresh_executor_adopts_a_running_trial_and_sees_its_exit_code(
    harness, run_dir: Path
) -> None:
    handle, gate = harness.launch_gated("t", exit_code=7)
    reference = _stored(handle.reference)

    restarted = LocalExecutor(run_dir)
    adopted = restarted.adopt(reference)
    assert adopted is not None
    assert restarted.poll(adopted) is None  # live
    gate.touch()
    outcome = restarted.wait(adopted, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.FAILED
    assert outcome.exit_code == 7
    assert restarted.log_path(adopted) == harness.executor.log_path(handle)


def test_adopting_a_finished_trial_returns_its_recorded_outcome(harness, run_dir: Path) -> None:
    handle, _ = harness.run("done", harness.python("import sys; sys.exit(4)"))
    restarted = LocalExecutor(run_dir)
    adopted = restarted.adopt(_stored(handle.reference))
    assert adopted is not None
    outcome = restarted.poll(adopted)
    assert outcome is not None and outcome.exit_code == 4


def test_trial_survives_a_sigkilled_controller_and_is_adopted(
    harness, run_dir: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    controller = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(run_dir), harness.GATED_TRIAL, str(gate), "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        reference = json.loads(controller.stdout.readline())  # type: ignore[union-attr]
    finally:
        controller.kill()
        controller.wait()
    assert controller.returncode == -signal.SIGKILL

    executor = LocalExecutor(run_dir)
    adopted = executor.adopt(reference)
    assert adopted is not None
    pgid = int(harness.wait_for_log_line(adopted, r"pgid=(\d+)", executor)[1])
    assert executor.poll(adopted) is None  # still running without its controller
    gate.touch()
    outcome = executor.wait(adopted, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.exit_code == 5
    # Output written after the controller died still reached the log.
    assert "after gate" in executor.log_path(adopted).read_text()
    assert harness.live_group_members(pgid) == []


def test_find_recovers_a_trial_whose_reference_was_never_stored(harness, run_dir: Path) -> None:
    _, gate = harness.launch_gated("unsaved")
    restarted = LocalExecutor(run_dir)
    found = restarted.find("unsaved")
    assert found is not None and restarted.poll(found) is None
    gate.touch()
    outcome = restarted.wait(found, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.succeeded
    assert restarted.find("never-launched") is None


def test_wrong_start_time_means_the_pid_is_not_ours_and_the_trial_is_lost(
    harness, run_dir: Path
) -> None:
    handle, _ = harness.launch_gated("reused")
    pgid = int(harness.wait_for_log_line(handle, r"pgid=(\d+)")[1])
    reference = _stored(handle.reference)
    reference["start_ticks"] += 1  # as if the pid now belonged to another process

    restarted = LocalExecutor(run_dir)
    adopted = restarted.adopt(reference)
    assert adopted is not None
    outcome = restarted.poll(adopted)
    assert outcome is not None and outcome.reason is ExitReason.LOST and outcome.lost
    assert outcome.message.startswith("lost: process gone without outcome")
    # A lost trial's processes are cleaned up, so its replacement never runs beside them.
    harness.wait_until(lambda: not harness.live_group_members(pgid), "the group to be killed")


def test_trial_whose_supervisor_died_is_lost_and_its_processes_are_killed(harness) -> None:
    handle, _ = harness.launch_gated("orphaned")
    pgid = int(harness.wait_for_log_line(handle, r"pgid=(\d+)")[1])
    os.kill(handle.reference["pid"], signal.SIGKILL)
    outcome = harness.executor.wait(handle, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.LOST
    harness.wait_until(lambda: not harness.live_group_members(pgid), "the group to be killed")


def test_adopt_refuses_another_executors_reference(executor: LocalExecutor) -> None:
    with pytest.raises(InvalidReferenceError, match="^reference.executor: 'kubernetes'"):
        executor.adopt({"executor": "kubernetes", "trial_name": "t"})


def test_adopt_of_a_never_launched_trial_is_none(executor: LocalExecutor) -> None:
    assert executor.adopt({"executor": "local", "version": 1, "trial_name": "ghost"}) is None
