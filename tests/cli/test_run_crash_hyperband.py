"""Crash safety of a hyperband run: SIGKILL `tuner run` mid-bracket, rerun it, and the
brackets come out exactly as an uninterrupted run gives them, since the algorithm's state
is stored with the trials it produced, in one transaction."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
import subprocess
from collections import Counter
from itertools import groupby
from pathlib import Path

import support
import yaml
from support import HANG_GUARD_SECONDS, tuner_command, wait_until

TRIAL = r"""
import sys, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
time.sleep(0.3)
print(f"loss={(float(opts['lr']) - 0.03) ** 2 * 1000 + 1.0 / int(opts['epochs'])}", flush=True)
"""


def katib_rungs(r_l: float, eta: int) -> list[tuple[int, int]]:
    """(trials, resource) per rung from Katib's formulas (see the controller's test)."""
    s_max = int(math.log(r_l) / math.log(eta))
    rungs = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) * eta**s / (s + 1))
        r = int(r_l * eta ** (-s))
        rungs += [(math.ceil(n / eta**i), r * eta**i) for i in range(s + 1)]
    return rungs


def rows(db: Path) -> list[tuple[str, str, str]]:
    """(created_at, status, parameters JSON) of every trial in creation order."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(
                "SELECT created_at, status, parameters FROM trials ORDER BY id"
            ).fetchall()
    except sqlite3.OperationalError:
        return []  # schema not created yet


def test_sigkill_mid_bracket_then_resume_runs_katibs_brackets(tmp_path: Path) -> None:
    doc = support.experiment_document(
        "hb",
        command=[
            "python3",
            "trial.py",
            "--lr=${trialParameters.lr}",
            "--epochs=${trialParameters.epochs}",
        ],
        parameters=[
            support.double_parameter("lr", 0.0, 0.1),
            support.int_parameter("epochs", 1, 4),
        ],
        algorithm="hyperband",
        settings={"resource_name": "epochs", "r_l": "4", "eta": "2"},
        parallel=4,
    )
    (tmp_path / "trial.py").write_text(TRIAL)
    (tmp_path / "hb.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    db = tmp_path / "tuner.db"
    command = [
        *tuner_command(),
        "run",
        "hb.yaml",
        "--db",
        f"sqlite:///{db}",
        "--poll-interval",
        "0.05",
        "--output",
        "result.json",
        "--no-progress",
    ]
    # Inside bracket 2 (4 @1, 2 @2, 1 @4), then inside bracket 1 (3 @2, 2 @4).
    for stored in (5, 9):
        proc = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(
            lambda: len(rows(db)) >= stored,  # noqa: B023
            f"{stored} trial rows",
            interval=0.01,
            process=proc,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(HANG_GUARD_SECONDS)

    final = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )
    assert final.returncode == 0, final.stderr
    assert json.loads((tmp_path / "result.json").read_text())["reason"] == (
        "ExperimentSuggestionEndReached"
    )
    trials = rows(db)
    assert Counter(status for _, status, _ in trials) == Counter({"Succeeded": 15})
    rungs = [
        [json.loads(parameters)["epochs"] for _, _, parameters in group]
        for _, group in groupby(trials, key=lambda row: row[0])
    ]
    assert [(len(r), int(r[0])) for r in rungs] == katib_rungs(4, 2)
    assert all(len(set(r)) == 1 for r in rungs)
