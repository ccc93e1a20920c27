"""Crash safety of `tuner run`: SIGKILL the controller at several moments, rerun it, and check
that no trial is lost, none runs twice, and exactly maxTrialCount trials complete."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import support
import yaml
from support import HANG_GUARD_SECONDS, wait_until

MAX_TRIALS = 12
PARALLEL = 3

# Records one file per run (<trial>.<pid>.json), sleeps a little, prints the metric.
TRIAL = r"""
import json, os, sys, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
with open(os.path.join(opts["record"], f"{opts['trial']}.{os.getpid()}.json"), "w") as f:
    json.dump(sys.argv[1:], f)
time.sleep(0.4)
print(f"loss={float(opts['x']) ** 2 + int(opts['n'])}", flush=True)
"""


def write_experiment(root: Path, records: Path, marker: str) -> Path:
    args = [
        "trial.py",
        "--x=${trialParameters.x}",
        "--n=${trialParameters.n}",
        "--trial=${trialParameters.trial}",
        f"--record={records}",
        f"--marker={marker}",
    ]
    doc = support.experiment_document(
        "crashy",
        command=["python3", *args],
        parameters=[support.double_parameter("x", -3, 3), support.int_parameter("n", 0, 1000)],
        trial_parameters={"trial": "${trialSpec.Name}"},
        settings={"random_state": "11"},
        parallel=PARALLEL,
        max_trials=MAX_TRIALS,
        max_failed=1,
    )
    (root / "trial.py").write_text(TRIAL)
    path = root / "crashy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def statuses(db: Path) -> Counter[str]:
    if not db.exists():
        return Counter()
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return Counter(r[0] for r in conn.execute("SELECT status FROM trials"))
    except sqlite3.OperationalError:
        return Counter()  # schema not created yet


def marked_processes(marker: str) -> list[int]:
    """Live (non-zombie) processes whose argv holds ``marker``: trials and their supervisors."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        state = stat[stat.rindex(b")") + 2 :].split()[0]
        if marker.encode() in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def test_sigkill_at_three_moments_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    marker = f"crash-marker-{uuid.uuid4().hex}"
    path = write_experiment(tmp_path, records, marker)
    db = tmp_path / "tuner.db"
    command = support.run_command(
        path,
        db,
        tmp_path / "runs",
        "--poll-interval",
        "0.05",
        "--output",
        str(tmp_path / "result.json"),
    )

    def completed(c: Counter[str]) -> int:
        return sum(n for s, n in c.items() if s not in ("Created", "Running"))

    moments: list[tuple[str, Callable[[Counter[str]], bool]]] = [
        ("first trial row stored", lambda c: sum(c.values()) >= 1),
        ("trials running mid-run", lambda c: c["Running"] >= 2 and completed(c) >= 3),
        ("near the end", lambda c: completed(c) >= MAX_TRIALS - 3),
    ]
    for what, condition in moments:
        proc = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # The wait ends before the loop moves on, so the lambda sees this pass's condition.
        wait_until(
            lambda: condition(statuses(db)),  # noqa: B023
            f"'{what}'",
            interval=0.01,
            process=proc,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(HANG_GUARD_SECONDS)

    final = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )
    assert final.returncode == 0, final.stderr

    result = json.loads((tmp_path / "result.json").read_text())
    assert result["reason"] == "ExperimentMaxTrialsReached"
    assert statuses(db) == Counter({"Succeeded": MAX_TRIALS})
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, parameters FROM trials").fetchall()
    assert len({params for _, params in rows}) == MAX_TRIALS  # no duplicate parameter sets
    runs = Counter(f.name.split(".")[0] for f in records.iterdir())
    assert runs == Counter({name: 1 for name, _ in rows})  # every trial ran exactly once

    # Supervisors may take a moment to exit after the outcome.
    wait_until(lambda: not marked_processes(marker), "no leftover trial processes")


def test_sigkill_while_launched_trials_are_not_yet_stored_running(tmp_path: Path) -> None:
    """A launched trial is stored Running with the next pass; killed before, the rerun finds
    it by name (running or ended), never launches it again, and counts it once."""
    records = tmp_path / "records"
    records.mkdir()
    seen = tmp_path / "seen"  # records of trials started before a kill, moved aside
    seen.mkdir()
    marker = f"crash-marker-{uuid.uuid4().hex}"
    path = write_experiment(tmp_path, records, marker)
    db = tmp_path / "tuner.db"
    command = support.run_command(
        path, db, tmp_path / "runs", "--output", str(tmp_path / "result.json")
    )

    def launched_unstored() -> bool:
        # A trial has started (its record file exists) and its row is still Created.
        started = {f.name.split(".")[0] for f in records.iterdir()}
        if not started or not db.exists():
            return False
        try:
            with sqlite3.connect(db) as conn:
                created = conn.execute(
                    "SELECT name FROM trials WHERE status = 'Created'"
                ).fetchall()
        except sqlite3.OperationalError:  # the schema is being created
            return False
        return any(name in started for (name,) in created)

    for _ in range(2):
        proc = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(launched_unstored, "a launched trial still stored Created", interval=0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(HANG_GUARD_SECONDS)
        for f in records.iterdir():  # so that the next kill waits for a new launch
            f.rename(seen / f.name)

    final = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )
    assert final.returncode == 0, final.stderr
    assert statuses(db) == Counter({"Succeeded": MAX_TRIALS})
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, parameters, executor_ref FROM trials").fetchall()
    assert len({params for _, params, _ in rows}) == MAX_TRIALS
    assert all(ref is not None for _, _, ref in rows)  # adopted ones got their reference
    runs = Counter(f.name.split(".")[0] for d in (records, seen) for f in d.iterdir())
    assert runs == Counter({name: 1 for name, _, _ in rows})  # every trial ran exactly once
    wait_until(lambda: not marked_processes(marker), "no leftover trial processes")
