"""The inspection commands (`get`, `describe`, `logs`, `best`, errors) run as real subprocesses
over a real SQLite store built with the store API: table cells, exact JSON/YAML documents."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuner.cli import build_parser
from tuner.spec import Experiment
from tuner.store import (
    ExperimentStatus,
    MetricSummary,
    Observation,
    Store,
    TrialRecord,
    TrialStatus,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)
STATUSES = [s.value for s in TrialStatus]
# What `describe` and `get -o json` show as stored with the experiment.
ANNOTATIONS = {"mnist": {"tuner.kubeflow.org/max-observations-per-metric": "500"}}
EXPERIMENTS = [
    ("mnist", "maximize", "accuracy"),
    ("quad", "minimize", "loss"),
    ("empty", "minimize", "loss"),
]


def experiment_spec(name: str, goal_type: str, metric: str) -> dict[str, Any]:
    """The spec as the controller stores it: Katib camelCase with defaults applied."""
    params = [
        {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.001", "max": "0.1"}},
        {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "4"}},
        {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
    ]
    container = {
        "name": "main",
        "image": "python:3.11",
        "command": [
            "python",
            "train.py",
            *(f"--{p['name']}=${{trialParameters.{p['name']}}}" for p in params),
        ],
    }
    document = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "objective": {
                "type": goal_type,
                "objectiveMetricName": metric,
                "additionalMetricNames": ["loss"] if metric != "loss" else [],
            },
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "7"}],
            },
            "parallelTrialCount": 2,
            "maxTrialCount": 6,
            "parameters": params,
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": p["name"], "reference": p["name"]} for p in params],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}
                    },
                },
            },
        },
    }
    return Experiment.model_validate(document).to_dict()["spec"]


def add_trial(
    store: Store,
    experiment: str,
    name: str,
    params: dict[str, str],
    status: TrialStatus,
    objective: float | None = None,
    observations: tuple[tuple[str, float, int], ...] = (),
    **finish: Any,
) -> None:
    """A trial taken through the store's life cycle to `status`, at fixed times."""
    store.create_trials(experiment, [(name, params)])
    if status is TrialStatus.CREATED:
        return
    store.update_trial(
        name, status=TrialStatus.RUNNING, started_at=T0, log_path=finish.pop("log_path", None)
    )
    store.add_observations(
        name,
        [
            Observation(name, metric, value, step=step, timestamp=T0 + timedelta(seconds=step))
            for metric, value, step in observations
        ],
    )
    if status is TrialStatus.RUNNING:
        return
    summary = {}
    for metric in dict.fromkeys(m for m, _, _ in observations):
        values = [v for m, v, _ in observations if m == metric]
        summary[metric] = MetricSummary(min(values), max(values), values[-1])
    store.finish_trial(
        name, status, objective, summary, completed_at=T0 + timedelta(minutes=1), **finish
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """mnist (maximize accuracy: 2 Succeeded, 1 Failed, 1 Running), quad (minimize loss),
    empty (no trials). Built once: every test here only reads it."""
    tmp = tmp_path_factory.mktemp("inspect")
    log = tmp / "mnist-2.log"
    log.write_bytes(b"epoch 1\naccuracy=0.5\nepoch 2\naccuracy=0.81 \xc3\xa9\n")
    url = f"sqlite:///{tmp / 'tuner.db'}"
    params = lambda lr, layers, opt: {"lr": lr, "layers": layers, "opt": opt}  # noqa: E731
    with Store.open(url) as store:
        for name, goal, metric in EXPERIMENTS:
            store.create_experiment(
                name, "default", experiment_spec(name, goal, metric), ANNOTATIONS.get(name)
            )
        store.set_experiment_status(
            "mnist", ExperimentStatus.RUNNING, "ExperimentRunning", "Experiment is running"
        )
        mnist, quad, done, failed = "mnist", "quad", TrialStatus.SUCCEEDED, TrialStatus.FAILED
        accuracy = (("accuracy", 0.5, 1), ("accuracy", 0.81, 2), ("loss", 0.4, 2))
        add_trial(
            store,
            mnist,
            "mnist-2",
            params("0.01", "2", "sgd"),
            done,
            0.81,
            accuracy,
            exit_code=0,
            log_path=str(log),
        )
        add_trial(
            store,
            mnist,
            "mnist-10",
            params("0.05", "3", "adam"),
            done,
            0.93,
            (("accuracy", 0.93, 1),),
            exit_code=0,
        )
        add_trial(
            store,
            mnist,
            "mnist-3",
            params("0.02", "1", "adam"),
            failed,
            exit_code=3,
            message="the trial exited with code 3",
        )
        add_trial(store, mnist, "mnist-4", params("0.03", "4", "sgd"), TrialStatus.RUNNING)
        add_trial(store, quad, "quad-a", params("0.01", "1", "sgd"), done, 0.5, (("loss", 0.5, 1),))
        add_trial(store, quad, "quad-b", params("0.02", "2", "sgd"), done, 0.2, (("loss", 0.2, 1),))
        add_trial(store, quad, "quad-c", params("0.03", "3", "sgd"), TrialStatus.CREATED)
    return url


def tuner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def ok(*args: str) -> str:
    result = tuner(*args)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # no colour codes when piped
    return result.stdout


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines() if line.strip()]


def iso(moment: datetime | None) -> str | None:
    return (
        None
        if moment is None
        else moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    )


def stored(db: str) -> tuple[Store, dict[str, TrialRecord]]:
    store = Store.open(db)
    return store, {t.name: t for e in ("mnist", "quad") for t in store.list_trials(e)}


def trial_doc(trial: TrialRecord, params: dict[str, Any]) -> dict[str, Any]:
    metrics = {
        n: {"min": m.min, "max": m.max, "latest": m.latest}
        for n, m in trial.metrics_summary.items()
    }
    return {
        "name": trial.name,
        "experiment": trial.experiment_name,
        "status": trial.status.value,
        "parameters": params,
        "objectiveValue": trial.objective_value,
        "metrics": metrics,
        "exitCode": trial.exit_code,
        "message": trial.message,
        "logPath": trial.log_path,
        "createdAt": iso(trial.created_at),
        "startedAt": iso(trial.started_at),
        "completedAt": iso(trial.completed_at),
    }


MNIST_PARAMS = {
    "mnist-2": {"lr": 0.01, "layers": 2, "opt": "sgd"},
    "mnist-10": {"lr": 0.05, "layers": 3, "opt": "adam"},
    "mnist-3": {"lr": 0.02, "layers": 1, "opt": "adam"},
    "mnist-4": {"lr": 0.03, "layers": 4, "opt": "sgd"},
}


def test_get_experiments_table_shows_status_trials_best_and_age(db: str) -> None:
    table = rows(ok("get", "experiments", "--db", db))
    assert table[0] == ["NAME", "STATUS", "REASON", "TRIALS", "BEST", "AGE"]
    assert table[1][:5] == ["mnist", "Running", "ExperimentRunning", "2/4", "accuracy=0.93"]
    assert table[2][:4] == ["quad", "Created", "2/3", "loss=0.2"]
    assert table[3][:3] == ["empty", "Created", "0/0"]


def test_get_experiments_json_and_yaml_documents(db: str) -> None:
    with Store.open(db) as store:
        records = store.list_experiments()
    expected = []
    for record, goal, metric, counts, best, value in zip(
        records,
        ["maximize", "minimize", "minimize"],
        ["accuracy", "loss", "loss"],
        [(2, 4), (2, 3), (0, 0)],
        ["mnist-10", "quad-b", None],
        [0.93, 0.2, None],
        strict=True,
    ):
        expected.append(
            {
                "name": record.name,
                "namespace": "default",
                "annotations": ANNOTATIONS.get(record.name, {}),
                "status": record.status.value,
                "reason": record.reason,
                "objective": {"type": goal, "metricName": metric, "goal": None},
                "trials": {"succeeded": counts[0], "total": counts[1]},
                "bestTrial": best,
                "bestObjectiveValue": value,
                "createdAt": iso(record.created_at),
                "startedAt": iso(record.started_at),
                "completedAt": None,
            }
        )
    assert json.loads(ok("get", "experiments", "--db", db, "-o", "json")) == expected
    assert yaml.safe_load(ok("get", "experiments", "--db", db, "-o", "yaml")) == expected


def test_get_trials_table_has_objective_and_parameter_columns(db: str) -> None:
    table = rows(ok("get", "trials", "mnist", "--db", db))
    assert table[0] == ["NAME", "STATUS", "ACCURACY", "LR", "LAYERS", "OPT", "AGE"]
    assert [r[:6] for r in table[1:3]] == [
        ["mnist-2", "Succeeded", "0.81", "0.01", "2", "sgd"],
        ["mnist-10", "Succeeded", "0.93", "0.05", "3", "adam"],
    ]
    assert table[3][:5] == ["mnist-3", "Failed", "0.02", "1", "adam"]  # no objective value
    assert table[4][:2] == ["mnist-4", "Running"]


def test_get_trials_json_has_typed_parameters(db: str) -> None:
    store, trials = stored(db)
    store.close()
    documents = json.loads(ok("get", "trials", "mnist", "--db", db, "-o", "json"))
    assert documents == [trial_doc(trials[n], MNIST_PARAMS[n]) for n in MNIST_PARAMS]
    assert isinstance(documents[0]["parameters"]["layers"], int)


@pytest.mark.parametrize(
    ("experiment", "order"),
    [
        ("mnist", ["mnist-10", "mnist-2", "mnist-3", "mnist-4"]),  # maximize: highest first
        ("quad", ["quad-b", "quad-a", "quad-c"]),  # minimize: lowest first
    ],
)
def test_sort_by_objective_puts_the_best_first_by_goal_type(
    db: str, experiment: str, order: list[str]
) -> None:
    out = ok("get", "trials", experiment, "--db", db, "--sort-by", "objective", "-o", "json")
    assert [t["name"] for t in json.loads(out)] == order


def test_sort_by_name_is_natural_and_status_filter_ignores_case(db: str) -> None:
    out = ok(
        "get",
        "trials",
        "mnist",
        "--db",
        db,
        "--sort-by",
        "name",
        "--status",
        "succeeded",
        "--status",
        "FAILED,running",
    )
    assert [r[0] for r in rows(out)[1:]] == ["mnist-2", "mnist-3", "mnist-4", "mnist-10"]


def test_unknown_status_exits_2_listing_the_valid_ones(db: str) -> None:
    result = tuner("get", "trials", "mnist", "--db", db, "--status", "Done")
    assert result.returncode == 2
    assert "'Done' is not a trial status" in result.stderr
    assert ", ".join(STATUSES) in result.stderr


def test_describe_experiment_table(db: str) -> None:
    out = ok("describe", "experiment", "mnist", "--db", db)
    lines = [" ".join(line.split()) for line in out.splitlines()]
    for expected in [
        "Name: mnist",
        "Annotations: tuner.kubeflow.org/max-observations-per-metric=500",
        "Status: Running",
        "Reason: ExperimentRunning",
        "Message: Experiment is running",
        "Objective: maximize accuracy; also collected: loss",
        "Algorithm: random (random_state=7)",
        "Budget: parallel 2, max trials 6, max failed unlimited",
        "Parameters: NAME TYPE FEASIBLE SPACE",
        "lr double [0.001, 0.1]",
        "layers int [1, 4] step 1",
        "opt categorical sgd, adam",
        "Trials: 4 (Running 1, Succeeded 2, Failed 1)",
        "Best trial: mnist-10 (accuracy=0.93)",
        "Best parameters: lr: 0.05",
    ]:
        assert expected in lines, (expected, out)


def test_describe_experiment_json(db: str) -> None:
    with Store.open(db) as store:
        record = store.get_experiment("mnist")
        best = store.best_trial("mnist")
    assert best is not None
    document = json.loads(ok("describe", "experiment", "mnist", "--db", db, "-o", "json"))
    assert document == {
        "name": "mnist",
        "namespace": "default",
        "annotations": ANNOTATIONS["mnist"],
        "status": "Running",
        "reason": "ExperimentRunning",
        "message": "Experiment is running",
        "createdAt": iso(record.created_at),
        "startedAt": iso(record.started_at),
        "completedAt": None,
        "updatedAt": iso(record.updated_at),
        "lease": {"owner": None, "expiresAt": None, "live": False},
        "objective": {
            "type": "maximize",
            "metricName": "accuracy",
            "goal": None,
            "additionalMetricNames": ["loss"],
            "additionalObjectives": [],
        },
        "algorithm": {"name": "random", "settings": {"random_state": "7"}},
        "earlyStopping": None,
        "parallelTrialCount": 2,
        "maxTrialCount": 6,
        "maxFailedTrialCount": None,
        "parameters": [
            {"name": "lr", "type": "double", "feasibleSpace": {"min": "0.001", "max": "0.1"}},
            {
                "name": "layers",
                "type": "int",
                "feasibleSpace": {"min": "1", "max": "4", "step": "1"},
            },
            {"name": "opt", "type": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
        ],
        "trialCounts": {
            "Created": 0,
            "Running": 1,
            "Succeeded": 2,
            "Failed": 1,
            "Killed": 0,
            "EarlyStopped": 0,
            "MetricsUnavailable": 0,
            "total": 4,
        },
        "bestTrial": {
            "name": "mnist-10",
            "parameters": MNIST_PARAMS["mnist-10"],
            "objectiveValue": 0.93,
            "metrics": {"accuracy": {"min": 0.93, "max": 0.93, "latest": 0.93}},
        },
        "spec": record.spec,
    }


def test_describe_trial_table(db: str) -> None:
    out = ok("describe", "trial", "mnist-2", "--db", db)
    lines = [" ".join(line.split()) for line in out.splitlines()]
    for expected in [
        "Name: mnist-2",
        "Experiment: mnist",
        "Status: Succeeded",
        "Objective: accuracy=0.81",
        "Parameters: lr: 0.01",
        "layers: 2",
        "Metrics: NAME MIN MAX LATEST",
        "accuracy 0.5 0.81 0.81",
        "Metrics history: TIMESTAMP METRIC STEP VALUE",
        "2024-05-01T10:00:01Z accuracy 1 0.5",
        "2024-05-01T10:00:02Z loss 2 0.4",
        "Exit code: 0",
        f"Log: {Path(db.removeprefix('sqlite:///')).parent / 'mnist-2.log'}",
        "Started: 2024-05-01T10:00:00Z",
    ]:
        assert any(line == expected or line.startswith(expected + " (") for line in lines), (
            expected,
            out,
        )


def test_describe_trial_json_has_the_metrics_history(db: str) -> None:
    store, trials = stored(db)
    store.close()
    expected = trial_doc(trials["mnist-2"], MNIST_PARAMS["mnist-2"])
    expected.update(
        objectiveMetricName="accuracy",
        executor={"kind": None, "reference": None},
        observations=[
            {"metricName": m, "value": v, "step": s, "timestamp": iso(T0 + timedelta(seconds=s))}
            for m, v, s in (("accuracy", 0.5, 1), ("accuracy", 0.81, 2), ("loss", 0.4, 2))
        ],
    )
    out = ok("describe", "trial", "mnist-2", "--db", db, "-o", "json")
    assert json.loads(out) == expected


def test_logs_prints_the_log_file_byte_for_byte(db: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "logs", "mnist-2", "--db", db],
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"epoch 1\naccuracy=0.5\nepoch 2\naccuracy=0.81 \xc3\xa9\n"


def test_best_prints_typed_parameters(db: str) -> None:
    best = json.loads(ok("best", "mnist", "--db", db))
    assert best == MNIST_PARAMS["mnist-10"]
    assert [type(v) for v in best.values()] == [float, int, str]


def test_best_without_a_best_trial_exits_1(db: str) -> None:
    result = tuner("best", "empty", "--db", db)
    assert result.returncode == 1
    assert result.stdout == ""
    assert 'experiment "empty" has no best trial yet' in result.stderr


@pytest.mark.parametrize("command", [["get", "trials"], ["delete", "experiment"]])
def test_unknown_experiment_exits_1_naming_the_database(db: str, command: list[str]) -> None:
    result = tuner(*command, "nope", "--db", db)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: experiment \"nope\" not found in {db}; see 'tuner get experiments --db {db}'"
    )


def test_unknown_trial_exits_1(db: str) -> None:
    result = tuner("describe", "trial", "nope-1", "--db", db)
    assert result.returncode == 1
    assert f'error: trial "nope-1" not found in {db}' in result.stderr


@pytest.mark.parametrize(
    "command",
    [["get", "experiments"], ["delete", "experiment", "x"]],
)
def test_missing_database_exits_1_and_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    result = tuner(*command, "--db", f"sqlite:///{tmp_path / 'typo.db'}")
    assert result.returncode == 1
    assert f"the file {tmp_path / 'typo.db'} does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_inspection_command_and_flag_has_help() -> None:
    parser = build_parser()
    top = next(a for a in parser._actions if a.dest == "command")
    for name in ("get", "describe", "logs", "best", "delete"):
        command = top.choices[name]  # type: ignore[index]
        assert command.description, name
        kinds = [a for a in command._actions if a.dest == "kind"]
        leaves = list(kinds[0].choices.values()) if kinds else [command]
        for leaf in leaves:
            for action in leaf._actions:
                assert action.help, (leaf.prog, action.dest)
            assert any(a.dest == "db" for a in leaf._actions), leaf.prog
