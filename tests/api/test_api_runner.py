"""The trial side of function objectives: the rendered trial command, run as a real process,
rebuilds the function from its source and prints its metrics as ``name=value`` lines."""

from __future__ import annotations

import json
import os.path
import subprocess
import sys
from os.path import basename
from typing import Any

from tuner import Categorical, Discrete, Double, Experiment, Int
from tuner.space import Value
from tuner.spec import render_trial

OFFSET = 3
LABELS = {"bowl": [1, 2], "flat": (0.5,)}


def helper(x: float) -> float:
    return x * OFFSET


def report_types(params: dict[str, Any], prefix: str = basename("/a/types")) -> dict[str, float]:
    """Prints what it received and uses every kind of module global the rule allows."""
    print(json.dumps({name: [type(v).__name__, v] for name, v in params.items()}))
    print(prefix, os.path.join("a", "b"), LABELS["flat"][0])
    return {"loss": helper(params["x"]), "size": params["bs"]}


def returns_float(params: dict[str, Any]) -> float:
    return params["x"] / 2


def returns_text(params: dict[str, Any]) -> str:
    return "high"


def returns_none(params: dict[str, Any]) -> None:
    return None


def raises(params: dict[str, Any]) -> float:
    raise ValueError(f"x={params['x']} is unlucky")


PARAMETERS: dict[str, Double | Int | Discrete | Categorical] = {
    "x": Double(-1.0, 1.0),
    "n": Int(1, 4),
    "opt": Categorical(["sgd", "--adam"]),
    "bs": Discrete([16, 0.5]),
}


def run_trial(function: Any, values: dict[str, Value]) -> subprocess.CompletedProcess[str]:
    experiment = Experiment(
        "runner",
        parameters=PARAMETERS,
        objective="loss",
        goal_type="minimize",
        additional_metrics=["size"],
        objective_fn=function,
    )
    argv = render_trial(experiment.spec, "runner-1", values).argv
    assert argv[0] == "python"
    return subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60, check=False
    )


def test_parameters_arrive_with_their_types() -> None:
    done = run_trial(report_types, {"x": 0.25, "n": 3, "opt": "--adam", "bs": 16})
    assert done.returncode == 0, done.stderr
    received, globals_line, *metrics = done.stdout.splitlines()
    assert json.loads(received) == {
        "x": ["float", 0.25],
        "n": ["int", 3],
        "opt": ["str", "--adam"],
        "bs": ["int", 16],
    }
    assert globals_line == "types a/b 0.5"
    assert metrics == ["loss=0.75", "size=16.0"]


def test_a_discrete_float_entry_arrives_as_a_float() -> None:
    done = run_trial(report_types, {"x": -1.0, "n": 1, "opt": "sgd", "bs": 0.5})
    assert json.loads(done.stdout.splitlines()[0])["bs"] == ["float", 0.5]


def test_a_number_returned_is_the_objective() -> None:
    done = run_trial(returns_float, {"x": 0.5, "n": 1, "opt": "sgd", "bs": 16})
    assert (done.returncode, done.stdout) == (0, "loss=0.25\n")


def test_an_exception_fails_the_process_with_the_functions_traceback() -> None:
    done = run_trial(raises, {"x": 0.5, "n": 1, "opt": "sgd", "bs": 16})
    assert done.returncode == 1
    assert done.stdout == ""
    assert "raise ValueError(f\"x={params['x']} is unlucky\")" in done.stderr
    assert done.stderr.rstrip().endswith("ValueError: x=0.5 is unlucky")


def test_a_return_that_is_not_a_metric_fails_with_a_message() -> None:
    done = run_trial(returns_text, {"x": 0.5, "n": 1, "opt": "sgd", "bs": 16})
    assert done.returncode == 1
    assert "returns_text returned str 'high'; return a number (the objective 'loss')" in (
        done.stderr
    )


def test_none_prints_no_metric_and_says_so() -> None:
    done = run_trial(returns_none, {"x": 0.5, "n": 1, "opt": "sgd", "bs": 16})
    assert (done.returncode, done.stdout) == (0, "")
    assert "returns_none returned None, so no metric was printed" in done.stderr


def test_a_value_outside_the_space_is_a_usage_error() -> None:
    experiment = Experiment(
        "runner",
        parameters={"opt": Categorical(["sgd"])},
        objective="loss",
        goal_type="minimize",
        objective_fn=returns_float,
    )
    argv = render_trial(experiment.spec, "runner-1", {"opt": "sgd"}).argv
    argv[argv.index("sgd", argv.index("--value"))] = "adam"
    done = subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "'adam' is not in feasibleSpace.list" in done.stderr
