"""Failures that explain themselves: a failed trial's message ends with the last lines of its
output, `tuner describe trial` shows them; real `tuner run`, real trial processes."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import support

# Prints 40 numbered lines, a secret-bearing URL and a traceback-like last line, then fails.
TRIAL = r"""
import sys
for i in range(40):
    print(f"step {i}", flush=True)
print("connecting to postgresql://me:hunter2@db/x", file=sys.stderr, flush=True)
print("\x1b[31mKeyError: 'label'\x1b[0m", file=sys.stderr, flush=True)
sys.exit(int(sys.argv[1]))
"""


def failing_experiment() -> dict:
    return support.experiment_document(
        "failing",
        command=["python3", "trial.py", "${trialParameters.code}"],
        parameters=[support.int_parameter("code", 3, 3)],
        parallel=1,
        max_trials=1,
        max_failed=1,
    )


def test_failed_trial_message_carries_its_last_output_lines(tmp_path: Path) -> None:
    done = support.tuner_run(tmp_path, failing_experiment(), {"trial.py": TRIAL})
    assert done.returncode == 1, done.stderr
    with sqlite3.connect(tmp_path / "tuner.db") as db:
        ((name, message),) = db.execute("SELECT name, message FROM trials").fetchall()
    head, _, tail = message.partition("; the last lines of its output:\n")
    assert head == "the trial exited with code 3"
    lines = tail.split("\n")
    assert lines[-1] == "?[31mKeyError: 'label'?[0m"  # no escape sequences reach a terminal
    assert lines[-2] == "connecting to postgresql://me:***@db/x"
    assert lines[0] == "step 27" and len(lines) == 15  # bounded: the last 15 lines
    assert "hunter2" not in message

    described = subprocess.run(
        [*support.tuner_command(), "describe", "trial", name, "--db", "sqlite:///tuner.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=support.HANG_GUARD_SECONDS,
    )
    assert described.returncode == 0, described.stderr
    assert "KeyError: 'label'" in described.stdout
    assert "postgresql://me:***@db/x" in described.stdout
