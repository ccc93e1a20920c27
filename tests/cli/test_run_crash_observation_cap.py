"""The cap on stored reports per metric across a SIGKILL of `tuner run` mid-log: a trial
printing 200,000 metric lines with a cap of 1,000 ends with the same stored points and the
same objective as an uninterrupted run, and the flag and the annotation mean the same."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import support
import yaml
from support import HANG_GUARD_SECONDS, wait_until

from tuner.spec import MAX_OBSERVATIONS_ANNOTATION

LINES = 200_000
CAP = 1_000

# Prints the first half of its metric lines, waits for the go file, prints the rest. Values
# are scattered so that the minimum (the objective) falls where the stride keeps nothing.
TRIAL = r"""
import os, sys, time
lines, go = int(sys.argv[1]), sys.argv[2]
value = lambda i: ((i * 7919 + 13) % 200003) / 1000
half = lines // 2
out = sys.stdout
out.write("".join(f"loss={value(i)}\n" for i in range(half)))
out.flush()
while not os.path.exists(go):
    time.sleep(0.02)
out.write("".join(f"loss={value(i)}\n" for i in range(half, lines)))
out.flush()
"""


def value(i: int) -> float:
    return ((i * 7919 + 13) % 200003) / 1000


def write_experiment(root: Path, annotated: bool) -> Path:
    (root / "trial.py").write_text(TRIAL)
    doc = support.experiment_document(
        "capped",
        command=["python3", "trial.py", str(LINES), str(root / "go"), "${trialParameters.x}"],
        parameters=[support.double_parameter("x", 0, 1)],
        parallel=1,
        max_trials=1,
    )
    if annotated:
        doc["metadata"]["annotations"] = {MAX_OBSERVATIONS_ANNOTATION: str(CAP)}
    path = root / "capped.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_command(root: Path, path: Path, *extra: str) -> list[str]:
    return support.run_command(
        path, root / "tuner.db", root / "runs", "--poll-interval", "0.05", *extra
    )


def outcome(db: Path) -> tuple[list[tuple[int, float]], tuple[str, float]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT step, value FROM observations ORDER BY step").fetchall()
        status, objective = conn.execute("SELECT status, objective_value FROM trials").fetchone()
    return [(int(s), float(v)) for s, v in rows], (status, objective)


def test_a_capped_log_is_the_same_after_a_kill_mid_log_as_without_it(tmp_path: Path) -> None:
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    whole.mkdir()
    crashed.mkdir()
    # Uninterrupted, the cap given by the annotation.
    path = write_experiment(whole, annotated=True)
    (whole / "go").touch()
    done = subprocess.run(
        run_command(whole, path),
        cwd=whole,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert done.returncode == 0, done.stderr

    # Killed mid-log and resumed, the cap given by the flag.
    path = write_experiment(crashed, annotated=False)
    command = run_command(crashed, path, "--max-observations-per-metric", str(CAP))
    proc = subprocess.Popen(
        command, cwd=crashed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    db = crashed / "tuner.db"
    wait_until(
        lambda: support.stored_observations(db) > 0,
        "first observations stored",
        interval=0.01,
        process=proc,
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(HANG_GUARD_SECONDS)
    assert 0 < support.stored_observations(db) <= CAP + 3
    (crashed / "go").touch()
    final = subprocess.run(
        command, cwd=crashed, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )
    assert final.returncode == 0, final.stderr

    rows, trial = outcome(db)
    assert (rows, trial) == outcome(whole / "tuner.db")
    assert CAP // 2 <= len(rows) <= CAP + 3
    lowest = min(range(LINES), key=value)
    assert trial == ("Succeeded", value(lowest))
    assert (lowest, value(lowest)) in rows and (LINES - 1, value(LINES - 1)) in rows


def test_a_cap_that_is_not_a_positive_integer_is_refused_by_flag_and_annotation(
    tmp_path: Path,
) -> None:
    path = write_experiment(tmp_path, annotated=False)
    flag = subprocess.run(
        run_command(tmp_path, path, "--max-observations-per-metric=0"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert flag.returncode == 2
    assert "argument --max-observations-per-metric: '0' is not a positive integer" in flag.stderr

    doc = yaml.safe_load(path.read_text())
    doc["metadata"]["annotations"] = {MAX_OBSERVATIONS_ANNOTATION: "1.5"}
    path.write_text(yaml.safe_dump(doc))
    annotated = subprocess.run(
        run_command(tmp_path, path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert annotated.returncode == 2
    assert (
        f"metadata.annotations[\"{MAX_OBSERVATIONS_ANNOTATION}\"]: '1.5' is not a positive"
        " integer" in annotated.stderr
    )
    assert not (tmp_path / "tuner.db").exists()
