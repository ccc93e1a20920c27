"""``MLflowCallback`` against a local MLflow tracking store in a temp dir: each trial of a
real ``Experiment.run()`` becomes one MLflow run with its parameters, metrics and status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuner import Categorical, Double, Experiment

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def objective(params: dict[str, Any]) -> dict[str, float]:
    if params["opt"] == "broken" and params["x"] > 0.5:
        raise RuntimeError("diverged")
    return {"loss": params["x"] ** 2, "accuracy": 1 - params["x"]}


@pytest.fixture(params=["sqlite", "directory"])
def tracking_uri(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any) -> str:
    if request.param == "directory":
        # MLflow 3 keeps the plain-directory store in maintenance mode behind this switch.
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        return (tmp_path / "mlruns").as_uri()
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_each_trial_is_logged_as_a_run_with_params_and_metrics(
    tracking_uri: str, suggestion_address: str
) -> None:
    from tuner.integrations.mlflow import MLflowCallback

    result = Experiment(
        "mlflow-demo",
        parameters={"x": Double(0.0, 1.0), "opt": Categorical(["sgd", "broken"])},
        objective="loss",
        goal_type="minimize",
        additional_metrics=["accuracy"],
        algorithm="random",
        algorithm_settings={"random_state": 5},
        max_trials=6,
        objective_fn=objective,
    ).run(
        progress=False,
        suggestion_address=suggestion_address,
        callbacks=[MLflowCallback(tracking_uri=tracking_uri, tags={"team": "ml"})],
    )

    client = mlflow.tracking.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("mlflow-demo")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == sorted(t.name for t in result.trials)
    for trial in result.trials:
        run = runs[trial.name]
        assert run.data.params == {k: str(v) for k, v in trial.parameters.items()}
        assert run.data.metrics == pytest.approx(trial.metrics)
        assert run.data.tags["tuner.status"] == trial.status.value
        assert run.data.tags["team"] == "ml"
        expected = "FINISHED" if trial.status.value == "Succeeded" else "FAILED"
        assert run.info.status == expected
    assert any(t.status.value == "Failed" for t in result.trials)  # both kinds were logged


def test_without_mlflow_the_callback_says_how_to_install_it(monkeypatch: Any) -> None:
    import sys

    from tuner.integrations.mlflow import MLflowCallback, MLflowError

    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(MLflowError, match=r"pip install 'tuner\[mlflow\]'"):
        MLflowCallback()
