"""The Python API's multi-objective experiments: ``objective=[...]`` and ``goal_type=[...]``
become Katib's objective plus ``additionalObjectives``, and ``Result.pareto_front`` holds the
trials no other trial beats in both objectives (checked against the test's own front)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tuner
from tuner import Experiment, Int
from tuner.space import Direction
from tuner.spec import SpecError


def accuracy_and_size(params: dict[str, Any]) -> dict[str, float]:
    # accuracy grows with width, size too: a trade-off along width; depth only costs.
    width, depth = params["width"], params["depth"]
    return {"accuracy": width - 0.1 * width * width, "size": width + depth}


def dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """Whether q dominates p (accuracy maximised, size minimised)."""
    return q[0] >= p[0] and q[1] <= p[1] and q != p


def experiment(**kwargs: Any) -> Experiment:
    arguments: dict[str, Any] = {
        "parameters": {"width": Int(1, 6), "depth": Int(1, 3)},
        "objective": ["accuracy", "size"],
        "goal_type": ["maximize", "minimize"],
        "algorithm": "nsga2",
        "algorithm_settings": {"population_size": 4, "random_state": 5},
        "max_trials": 10,
        "parallel_trials": 3,
        "objective_fn": accuracy_and_size,
    }
    return Experiment("tradeoff", **(arguments | kwargs))


def test_objective_lists_become_additional_objectives() -> None:
    objective = experiment().to_dict()["spec"]["objective"]
    assert objective["objectiveMetricName"] == "accuracy"
    assert objective["type"] == "maximize"
    assert objective["additionalObjectives"] == [{"metricName": "size", "type": "minimize"}]


def test_directions_must_match_the_objectives() -> None:
    with pytest.raises(SpecError, match="goal_type: .* 1 direction"):
        experiment(goal_type="maximize")


def test_result_pareto_front_is_the_non_dominated_trials(
    tmp_path: Path, suggestion_address: str
) -> None:
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    result = experiment().run(
        db=db, progress=False, run_dir=tmp_path / "runs", suggestion_address=suggestion_address
    )

    assert result.succeeded and len(result.trials) == 10
    assert result.objectives == [
        ("accuracy", Direction.MAXIMIZE),
        ("size", Direction.MINIMIZE),
    ]
    points = {}
    for t in result.trials:
        expected = accuracy_and_size(t.parameters)
        points[t.name] = (expected["accuracy"], expected["size"])
    front = {n for n, p in points.items() if not any(dominated(p, q) for q in points.values())}
    assert result.pareto_front is not None
    assert {t.name for t in result.pareto_front} == front
    assert result.best_trial is not None and result.best_trial.name in front
    # tuner.load reads the same front back.
    assert [t.name for t in tuner.load("tradeoff", db=db).pareto_front or []] == [
        t.name for t in result.pareto_front
    ]
