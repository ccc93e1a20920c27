"""A trial printing a million metric lines is collected exactly once across a SIGKILL of
`tuner run` mid-log: the rerun resumes from the collector checkpoint stored with the last
batch of observations, storing none twice and losing none."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import support
import yaml
from support import HANG_GUARD_SECONDS, wait_until

LINES = 1_000_000

# Prints the first half of its metric lines, waits for the test's go file, prints the rest.
TRIAL = r"""
import os, sys, time
lines, go = int(sys.argv[1]), sys.argv[2]
half = lines // 2
out = sys.stdout
out.write("".join(f"loss={i}\n" for i in range(half)))
out.flush()
while not os.path.exists(go):
    time.sleep(0.02)
out.write("".join(f"loss={i}\n" for i in range(half, lines)))
out.flush()
"""


def test_a_million_lines_are_stored_exactly_once_across_a_restart_mid_log(
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    (tmp_path / "trial.py").write_text(TRIAL)
    doc = support.experiment_document(
        "chatty",
        command=["python3", "trial.py", str(LINES), str(go), "${trialParameters.x}"],
        parameters=[support.double_parameter("x", 0, 1)],
        parallel=1,
        max_trials=1,
    )
    path = tmp_path / "chatty.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    db = tmp_path / "tuner.db"
    command = support.run_command(path, db, tmp_path / "runs", "--poll-interval", "0.05")

    proc = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Killed while it collects the first half: some batches stored, the trial still running.
    wait_until(
        lambda: support.stored_observations(db) > 0,
        "first observations stored",
        interval=0.01,
        process=proc,
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(HANG_GUARD_SECONDS)
    at_kill = support.stored_observations(db)
    assert 0 < at_kill <= LINES // 2
    first = "SELECT id, timestamp FROM observations WHERE step = 0"
    with sqlite3.connect(db) as conn:
        stored_before = conn.execute(first).fetchall()

    go.touch()
    final = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )
    assert final.returncode == 0, final.stderr

    with sqlite3.connect(db) as conn:
        count, steps, low, high = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT step), MIN(step), MAX(step) FROM observations"
        ).fetchone()
        # Step i carries value i: every line stored once, in its place.
        misplaced = conn.execute("SELECT COUNT(*) FROM observations WHERE value != step").fetchone()
        status, objective = conn.execute("SELECT status, objective_value FROM trials").fetchone()
        stored_after = conn.execute(first).fetchall()
    assert (count, steps, low, high) == (LINES, LINES, 0, LINES - 1)
    assert misplaced == (0,)
    # What was stored before the kill was kept, not deleted and parsed again.
    assert stored_after == stored_before
    assert (status, objective) == ("Succeeded", 0.0)
