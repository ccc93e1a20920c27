"""``Experiment.run()`` end to end: real suggestion server, real trial processes, SQLite
files in a temp dir; ``tuner.load`` and ``tuner run`` on the same experiments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import HANG_GUARD_SECONDS, tuner_command

import tuner
from tuner import Categorical, Discrete, Double, Experiment, Int
from tuner.store import Store, TrialStatus


def run_yaml(cwd: Path, db: str, suggestion_address: str) -> subprocess.CompletedProcess[str]:
    """`tuner run experiment.yaml` in `cwd` against `db`, as a user would."""
    return subprocess.run(
        [*tuner_command(), "run", "experiment.yaml", "--db", db, "--no-progress"]
        + ["--suggestion-address", suggestion_address],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def number(value: object) -> float:
    """A typed parameter value that the test knows to be numeric."""
    assert isinstance(value, (int, float)), value
    return float(value)


def picky(params: dict[str, Any]) -> dict[str, float]:
    """Checks the types it gets; one grid point raises, another exits with code 3."""

    assert type(params["i"]) is int, params
    assert type(params["lr"]) is float, params
    assert type(params["scale"]) is (int if params["scale"] == 2 else float), params
    assert type(params["opt"]) is str, params
    if (params["i"], params["scale"], params["lr"]) == (1, 0.5, 0.25):
        raise RuntimeError("unlucky point")
    if (params["i"], params["scale"], params["lr"]) == (3, 2, 0.5):
        sys.exit(3)
    return {"loss": params["i"] * params["scale"] + params["lr"]}


def bowl(params: dict[str, Any]) -> float:
    return (params["x"] - 1) ** 2 + params["y"]


def test_a_raising_or_exiting_trial_fails_alone(
    tmp_path: Path, db: str, suggestion_address: str
) -> None:
    experiment = Experiment(
        "picky",
        parameters={
            "opt": Categorical(["adam"]),
            "scale": Discrete([0.5, 2]),
            "lr": Double(0.25, 0.5, step=0.25),
            "i": Int(0, 4),
        },
        objective="loss",
        goal_type="minimize",
        algorithm="grid",
        max_trials=20,
        parallel_trials=4,
        objective_fn=picky,
    )
    result = experiment.run(
        db=db, progress=False, run_dir=tmp_path / "runs", suggestion_address=suggestion_address
    )

    assert (result.status.value, result.reason) == ("Succeeded", "ExperimentMaxTrialsReached")
    assert len(result.trials) == 20
    failed = {
        (t.parameters["i"], t.parameters["scale"], t.parameters["lr"]): t.exit_code
        for t in result.trials
        if t.status is TrialStatus.FAILED
    }
    assert failed == {(1, 0.5, 0.25): 1, (3, 2, 0.5): 3}
    succeeded = [t for t in result.trials if t.status is TrialStatus.SUCCEEDED]
    assert len(succeeded) == 18
    for trial in succeeded:
        p = trial.parameters
        expected = number(p["i"]) * number(p["scale"]) + number(p["lr"])
        assert trial.objective == pytest.approx(expected)
        assert trial.metrics == {"loss": trial.objective}
    unlucky = next(t for t in result.trials if t.exit_code == 1)
    assert "RuntimeError: unlucky point" in Path(unlucky.log_path or "").read_text()
    assert result.best_trial is not None
    assert result.best_trial.parameters == {"opt": "adam", "scale": 0.5, "lr": 0.25, "i": 0}
    assert result.best_trial.metrics == {"loss": 0.25}

    assert tuner.load("picky", db=db) == result


def test_load_of_an_unknown_experiment_says_so(db: str) -> None:
    with pytest.raises(tuner.ExperimentNotFoundError, match="nothing"):
        tuner.load("nothing", db=db)


EQUIVALENT_YAML = """
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: equivalent}
spec:
  objective: {type: maximize, goal: 0.99999, objectiveMetricName: accuracy,
              additionalMetricNames: [loss]}
  algorithm:
    algorithmName: random
    algorithmSettings: [{name: random_state, value: "3"}]
  parallelTrialCount: 2
  maxTrialCount: 4
  maxFailedTrialCount: 1
  resumePolicy: LongRunning
  parameters:
    - {name: lr, parameterType: double,
       feasibleSpace: {min: "0.0001", max: "0.1", distribution: logUniform}}
    - {name: layers, parameterType: int, feasibleSpace: {min: "1", max: "4"}}
    - {name: opt, parameterType: categorical, feasibleSpace: {list: [sgd, adam]}}
    - {name: bs, parameterType: discrete, feasibleSpace: {list: ["16", "32"]}}
  trialTemplate:
    primaryContainerName: training-container
    trialParameters:
      - {name: lr, reference: lr}
      - {name: layers, reference: layers}
      - {name: opt, reference: opt}
      - {name: bs, reference: bs}
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: training-container
                image: python:3.11-slim
                command: [python, trial.py, "--lr=${trialParameters.lr}",
                          "--layers=${trialParameters.layers}", "--opt=${trialParameters.opt}",
                          "--bs=${trialParameters.bs}"]
"""

TRIAL = """
import sys
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:])
print(f"loss={float(opts['lr']) * int(opts['layers'])}")
print(f"accuracy={1 - float(opts['lr'])}")
"""


def test_python_and_yaml_store_the_same_experiment(tmp_path: Path, suggestion_address: str) -> None:
    (tmp_path / "trial.py").write_text(TRIAL)
    (tmp_path / "experiment.yaml").write_text(EQUIVALENT_YAML)
    python_db, yaml_db = (f"sqlite:///{tmp_path / name}.db" for name in ("python", "yaml"))
    experiment = Experiment(
        "equivalent",
        parameters={
            "lr": Double(1e-4, 1e-1, log=True),
            "layers": Int(1, 4),
            "opt": Categorical(["sgd", "adam"]),
            "bs": Discrete([16, 32]),
        },
        objective="accuracy",
        goal_type="maximize",
        goal=0.99999,  # out of reach: 1 - lr <= 0.9999
        additional_metrics=["loss"],
        algorithm="random",
        algorithm_settings={"random_state": 3},
        max_trials=4,
        parallel_trials=2,
        max_failed_trials=1,
        command=[
            "python",
            "trial.py",
            "--lr={lr}",
            "--layers={layers}",
            "--opt={opt}",
            "--bs={bs}",
        ],
        image="python:3.11-slim",
    )
    options: dict[str, Any] = {"progress": False, "suggestion_address": suggestion_address}
    result = experiment.run(db=python_db, working_dir=tmp_path, **options)
    cli = run_yaml(tmp_path, yaml_db, suggestion_address)
    assert cli.returncode == 0, cli.stderr

    with Store.open(python_db) as python_store, Store.open(yaml_db) as yaml_store:
        stored = python_store.get_experiment("equivalent").spec
        assert stored == yaml_store.get_experiment("equivalent").spec
        assert len(yaml_store.list_trials("equivalent")) == 4
    assert result.succeeded and len(result.trials) == 4
    assert result.best_trial is not None
    assert result.best_trial.metrics["accuracy"] == pytest.approx(
        1 - number(result.best_trial.parameters["lr"])
    )

    # Finished: running it again returns what is stored and starts nothing.
    assert experiment.run(db=python_db, working_dir=tmp_path, **options) == result


def test_the_yaml_of_a_function_experiment_runs_with_tuner_run(
    tmp_path: Path, suggestion_address: str
) -> None:
    experiment = Experiment(
        "from-python",
        parameters={"x": Double(-2.0, 2.0), "y": Int(0, 3)},
        objective="loss",
        goal_type="minimize",
        algorithm="random",
        max_trials=3,
        objective_fn=bowl,
    )
    experiment.to_yaml(tmp_path / "experiment.yaml")
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    cli = run_yaml(tmp_path, db, suggestion_address)
    assert cli.returncode == 0, cli.stderr + cli.stdout
    result = tuner.load("from-python", db=db)
    assert [t.status for t in result.trials] == [TrialStatus.SUCCEEDED] * 3
    for trial in result.trials:
        x, y = number(trial.parameters["x"]), number(trial.parameters["y"])
        assert trial.objective == pytest.approx((x - 1) ** 2 + y)


def test_an_experiment_the_store_cannot_take_is_refused_before_running(
    tmp_path: Path, db: str, suggestion_address: str
) -> None:
    def build(algorithm: str) -> Experiment:
        return Experiment(
            "changing",
            parameters={"x": Double(-2.0, 2.0), "y": Int(0, 3)},
            objective="loss",
            goal_type="minimize",
            algorithm=algorithm,
            max_trials=1,
            parallel_trials=1,
            objective_fn=bowl,
        )

    options: dict[str, Any] = {"progress": False, "suggestion_address": suggestion_address}
    build("random").run(db=db, run_dir=tmp_path / "runs", **options)
    refusal = "algorithm: stored 'random', given 'tpe'"
    with pytest.raises(tuner.InvalidExperimentError, match=refusal):
        build("tpe").run(db=db, run_dir=tmp_path / "runs", **options)
    with pytest.raises(tuner.InvalidExperimentError, match="'nowhere' is not a known executor"):
        build("random").run(db=db, executor="nowhere", **options)


def pushes(params: dict[str, Any]) -> dict[str, float]:
    """Reports three intermediate values with steps, then returns the final one."""
    import tuner

    for step in range(3):
        tuner.report_metrics({"loss": params["x"] + 3 - step}, step=step)
    return {"loss": params["x"] + 10}


def test_under_push_intermediate_reports_and_the_returned_value_are_stored(
    tmp_path: Path, db: str, suggestion_address: str
) -> None:
    experiment = Experiment(
        "pushes",
        parameters={"x": Double(0.0, 1.0)},
        objective="loss",
        goal_type="minimize",
        metric_strategies={"loss": "latest"},
        max_trials=1,
        parallel_trials=1,
        objective_fn=pushes,
        metrics_collector="Push",
    )
    result = experiment.run(
        db=db, progress=False, run_dir=tmp_path / "runs", suggestion_address=suggestion_address
    )
    (trial,) = result.trials
    x = number(trial.parameters["x"])
    assert trial.status is TrialStatus.SUCCEEDED
    assert trial.objective == pytest.approx(x + 10)  # the returned value is the latest
    with Store.open(db) as store:
        reports = [(o.step, o.value) for o in store.get_observations(trial.name)]
    assert reports[:3] == [
        (0, pytest.approx(x + 3)),
        (1, pytest.approx(x + 2)),
        (2, pytest.approx(x + 1)),
    ]
    assert reports[3][1] == pytest.approx(x + 10)


# Prints 3,000 reports of loss, the smallest in the middle.
CHATTY = (
    "import sys; [print('loss=' + str(abs(i - 1234) + float(sys.argv[1]))) for i in range(3000)]"
)


def test_a_run_with_a_cap_stores_that_many_reports_and_the_exact_objective(
    tmp_path: Path, suggestion_address: str
) -> None:
    db = f"sqlite:///{tmp_path / 'capped.db'}"
    experiment = Experiment(
        "chatty",
        parameters={"x": Discrete([0.5])},
        objective="loss",
        goal_type="minimize",
        command=[sys.executable, "-c", CHATTY, "{x}"],
        max_trials=1,
        max_observations_per_metric=100,
    )

    result = experiment.run(
        db=db, progress=False, run_dir=tmp_path / "runs", suggestion_address=suggestion_address
    )

    (trial,) = result.trials
    assert trial.objective == 0.5
    with Store.open(db) as store:
        stored = store.get_observations(trial.name)
    assert 50 <= len(stored) <= 103
    assert (stored[-1].step, stored[-1].value) == (2999, 1765.5)
