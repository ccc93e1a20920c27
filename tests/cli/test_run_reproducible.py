"""Seeded runs repeat: with ``random_state`` and ``parallelTrialCount: 1`` two `tuner run`s of
one Experiment give the same trials in the same order with the same values, for every seeded
algorithm; the quickstart (`make demo`, three parallel trials, random) gives the same trials."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import support
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# A deterministic surface of its --key=value arguments.
TRIAL = r"""
import sys
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:])
x, y = float(opts["x"]), float(opts["y"])
print(f"loss={(x - 1) ** 2 + (y + 0.5) ** 2:.9f}")
"""


def seeded_experiment(algorithm: str) -> dict[str, Any]:
    step = {"step": "0.5"} if algorithm == "grid" else {}
    parameters = [
        {"name": n, "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "2", **step}}
        for n in ("x", "y")
    ]
    return support.experiment_document(
        "seeded",
        command=["python3", "trial.py", "--x=${trialParameters.x}", "--y=${trialParameters.y}"],
        parameters=parameters,
        algorithm=algorithm,
        settings={"random_state": "5"},
        parallel=1,
        max_trials=5,
    )


def trials_of(root: Path, order: str = "id") -> list[tuple[str, str, float | None]]:
    with sqlite3.connect(root / "tuner.db") as db:
        return db.execute(
            f"SELECT parameters, status, objective_value FROM trials ORDER BY {order}"
        ).fetchall()


def run_twice(tmp_path: Path, document: dict[str, Any], files: dict[str, str]) -> list[Path]:
    roots = []
    for attempt in ("first", "second"):
        root = tmp_path / attempt
        root.mkdir()
        done = support.tuner_run(root, document, files)
        assert done.returncode == 0, done.stderr
        roots.append(root)
    return roots


@pytest.mark.parametrize(
    "algorithm",
    ["random", "grid", "bayesianoptimization", "tpe", "multivariate-tpe", "cmaes", "sobol"],
)
def test_a_seeded_sequential_run_repeats_exactly(tmp_path: Path, algorithm: str) -> None:
    first, second = run_twice(tmp_path, seeded_experiment(algorithm), {"trial.py": TRIAL})
    trials = trials_of(first)
    assert len(trials) == 5 and {status for _, status, _ in trials} == {"Succeeded"}
    assert trials_of(second) == trials


def test_the_quickstart_with_parallel_trials_gives_the_same_trials(tmp_path: Path) -> None:
    # `make demo`: three trials at a time finish in varying order and batches, which once
    # changed which points the random search drew.
    document = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    train = (EXAMPLES / "quickstart_train.py").read_text()
    first, second = run_twice(tmp_path, document, {"quickstart_train.py": train})
    order = "parameters"  # the creation order of parallel trials is not fixed; the set is
    assert len(trials_of(first, order)) == 12
    assert trials_of(second, order) == trials_of(first, order)
