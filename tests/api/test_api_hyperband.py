"""hyperband from the Python API (how a benchmark or a notebook runs it): the function gets
the resource in its parameters and the run goes through every bracket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner import Double, Experiment, Int


def curve(params: dict[str, Any]) -> float:
    return (params["lr"] - 0.03) ** 2 * 100 + 1.0 / params["epochs"]


def test_hyperband_runs_every_bracket_from_the_python_api(
    tmp_path: Path, db: str, suggestion_address: str
) -> None:
    experiment = Experiment(
        "hb-api",
        parameters={"lr": Double(0.0, 0.1), "epochs": Int(1, 4)},
        objective="loss",
        goal_type="minimize",
        algorithm="hyperband",
        algorithm_settings={"resource_name": "epochs", "r_l": 4, "eta": 2, "random_state": 1},
        parallel_trials=4,
        objective_fn=curve,
    )
    result = experiment.run(
        db=db, progress=False, run_dir=tmp_path / "runs", suggestion_address=suggestion_address
    )

    assert result.reason == "ExperimentSuggestionEndReached"
    # r_l 4, eta 2: 4 @1, 2 @2, 1 @4; 3 @2, 2 @4; 3 @4 (Katib's brackets).
    epochs = [t.parameters["epochs"] for t in result.trials]
    assert epochs == [1] * 4 + [2] * 2 + [4] + [2] * 3 + [4] * 2 + [4] * 3
    assert result.best_trial is not None and result.best_trial.parameters["epochs"] == 4
