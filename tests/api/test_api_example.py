"""examples/python_api.py runs as a user runs it: a fresh directory, the default database
and an in-process suggestion server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tuner
from tuner.store import TrialStatus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python_api.py"


def test_the_python_api_example_runs_and_prints_the_best_trial(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "experiment python-api-quadratic: Succeeded (ExperimentMaxTrialsReached)"

    result = tuner.load("python-api-quadratic", db=f"sqlite:///{tmp_path / 'tuner.db'}")
    assert [t.status for t in result.trials] == [TrialStatus.SUCCEEDED] * 12
    assert result.best_trial is not None
    assert lines[1] == (
        f"best trial {result.best_trial.name}: loss={result.best_trial.objective:.4f} "
        f"parameters={result.best_trial.parameters}"
    )
    assert set(result.best_trial.metrics) == {"loss", "distance"}
