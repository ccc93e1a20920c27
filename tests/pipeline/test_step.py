"""The step itself: the container component's exact command run here, and refused input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp import compiler

from tuner.pipeline import TuningFailedError, run_tuning, tune_container_component
from tuner.pipeline.step import EXIT_FAILED, EXIT_INVALID
from tuner.spec import loads
from tuner.store import Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OUTPUTS = ("best_parameters", "best_parameters_json", "best_objective", "experiment_name")


def quick_experiment(trial_code: str | None = None) -> str:
    """The quickstart with two trials, runnable from any directory; `trial_code` replaces the
    trial script by `python -c trial_code`."""
    experiment = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec = experiment["spec"]
    spec.update(maxTrialCount=2, parallelTrialCount=2, maxFailedTrialCount=1)
    spec["objective"].pop("goal")
    [container] = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"]
    container["workingDir"] = str(EXAMPLES)
    if trial_code is not None:
        # The parameter arguments stay (ignored): an Experiment must use every trial parameter.
        options = container["command"][2:]
        container["command"] = [sys.executable, "-c", trial_code, *options]
    return yaml.safe_dump(experiment)


def container_argv(experiment: str, db_url: str, out: Path) -> list[str]:
    """The compiled container component's argv, placeholders filled as KFP's launcher would."""
    out.mkdir()
    compiler.Compiler().compile(tune_container_component(), str(out / "component.yaml"))
    ir = yaml.safe_load((out / "component.yaml").read_text())
    container = ir["deploymentSpec"]["executors"]["exec-tune-op-container"]["container"]
    inputs = {
        "experiment": experiment,
        "db_url": db_url,
        "executor": "local",
        "timeout_seconds": "0",
    }
    filled = []
    for placeholder in [*container["command"], *container["args"]]:
        for name, value in inputs.items():
            placeholder = placeholder.replace(f"{{{{$.inputs.parameters['{name}']}}}}", value)
        for name in (*OUTPUTS, "result"):
            kind = "artifacts" if name == "result" else "parameters"
            suffix = "path" if name == "result" else "output_file"
            placeholder = placeholder.replace(
                f"{{{{$.outputs.{kind}['{name}'].{suffix}}}}}", str(out / name)
            )
        filled.append(placeholder)
    assert filled[0] == "python"
    return [sys.executable, *filled[1:]]


def test_container_command_writes_every_output(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tuner.db'}"
    experiment = quick_experiment()
    argv = container_argv(experiment, db_url, tmp_path / "out")
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr

    out = tmp_path / "out"
    with Store.open(db_url) as store:
        best = store.best_trial("quickstart")
    assert best is not None
    parameters = json.loads((out / "best_parameters_json").read_text())
    assert parameters == loads(experiment)[0].search_space().parse(best.parameters)
    assert json.loads((out / "best_parameters").read_text()) == parameters
    assert float((out / "best_objective").read_text()) == best.objective_value
    assert (out / "experiment_name").read_text() == "quickstart"
    assert json.loads((out / "result").read_text())["bestTrial"]["name"] == best.name


def test_container_command_exits_1_with_the_reason_when_the_experiment_fails(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'tuner.db'}"
    argv = container_argv(quick_experiment("import sys; sys.exit(4)"), db_url, tmp_path / "out")
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120)

    assert completed.returncode == EXIT_FAILED
    with Store.open(db_url) as store:
        experiment = store.get_experiment("quickstart")
    assert f"experiment 'quickstart' Failed: {experiment.reason}" in completed.stderr
    assert not (tmp_path / "out" / "best_parameters_json").exists()


def test_invalid_experiment_is_refused_with_every_issue_before_running() -> None:
    experiment = yaml.safe_load(quick_experiment())
    experiment["spec"]["maxTrialCount"] = 0
    experiment["spec"]["parameters"][1]["feasibleSpace"]["min"] = "9"
    with pytest.raises(TuningFailedError) as caught:
        run_tuning(yaml.safe_dump(experiment))
    assert caught.value.exit_code == EXIT_INVALID
    assert "spec.maxTrialCount" in str(caught.value)
    assert "spec.parameters[1].feasibleSpace" in str(caught.value)


def test_text_with_two_experiments_is_refused() -> None:
    with pytest.raises(TuningFailedError, match="2 Experiments") as caught:
        # Two names: the same name twice is refused as such (issue 17) before the count.
        second = quick_experiment().replace("name: quickstart\n", "name: quickstart-2\n")
        run_tuning(quick_experiment() + "---\n" + second)
    assert caught.value.exit_code == EXIT_INVALID


def test_timeout_stops_tuner_run_and_its_trials(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tuner.db'}"
    sleeping = quick_experiment("import time; time.sleep(600)")
    with pytest.raises(TuningFailedError, match="did not finish within timeout_seconds=2"):
        run_tuning(sleeping, db_url=db_url, timeout_seconds=2)
    with Store.open(db_url) as store:
        started = any(e.name == "quickstart" for e in store.list_experiments())
        trials = store.list_trials("quickstart") if started else []
    # Trials that had started when the time ran out were stopped and recorded, not left running.
    assert all(trial.status.is_finished() for trial in trials)


def test_refusal_by_tuner_run_is_quoted_in_the_error() -> None:
    experiment = yaml.safe_load(quick_experiment())
    experiment["spec"]["algorithm"]["algorithmSettings"] = [
        {"name": "random_state", "value": "abc"}
    ]
    with pytest.raises(TuningFailedError) as caught:
        run_tuning(yaml.safe_dump(experiment))
    assert caught.value.exit_code == EXIT_INVALID
    assert "algorithm setting 'random_state': 'abc'" in str(caught.value)


def test_trial_logs_outlive_the_step_in_its_result(tmp_path: Path) -> None:
    failing = (
        "import sys; print('loading postgresql://me:hunter2@db/x', file=sys.stderr);"
        " sys.exit('FileNotFoundError: /data/train.csv')"
    )
    result = tmp_path / "result.json"
    with pytest.raises(TuningFailedError):
        run_tuning(quick_experiment(failing), output_path=result)
    logs = json.loads(result.read_text())["trialLogs"]
    assert logs and all(log["trial"].startswith("quickstart-") for log in logs)
    # maxFailedTrialCount 1: the other trial may be killed before it prints anything.
    assert any("FileNotFoundError: /data/train.csv" in log["log"] for log in logs)
    assert any("postgresql://me:***@db/x" in log["log"] for log in logs)
    assert not any("hunter2" in log["log"] for log in logs)
