"""Building Experiments in Python: the Katib document they produce, errors named by the
Python arguments, the YAML round trip, and the functions refused as objectives."""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tuner import Categorical, Discrete, Double, Experiment, Int
from tuner.spec import SpecError, load_file

LOCK = threading.Lock()


def objective(params: dict[str, Any]) -> float:
    """A module-level function: the kind of objective that can travel to a trial."""
    return (params["lr"] - 0.01) ** 2 + params["layers"]


def build(**overrides: Any) -> Experiment:
    arguments: dict[str, Any] = {
        "parameters": {
            "lr": Double(1e-4, 1e-1, log=True),
            "layers": Int(1, 4),
            "opt": Categorical(["sgd", "adam"]),
            "bs": Discrete([16, 32]),
        },
        "objective": "accuracy",
        "goal_type": "maximize",
        "algorithm": "tpe",
        "algorithm_settings": {"random_state": 3},
        "max_trials": 6,
        "parallel_trials": 2,
        "objective_fn": objective,
    }
    arguments.update(overrides)
    return Experiment(arguments.pop("name", "built"), **arguments)


def messages(**overrides: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        build(**overrides)
    return [str(issue) for issue in caught.value.issues]


def container(experiment: Experiment) -> dict[str, Any]:
    job = experiment.to_dict()["spec"]["trialTemplate"]["trialSpec"]
    return job["spec"]["template"]["spec"]["containers"][0]


def test_parameters_become_katib_parameters_with_numbers_as_strings() -> None:
    spec = build().to_dict()["spec"]
    assert spec["parameters"] == [
        {
            "name": "lr",
            "parameterType": "double",
            "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
        },
        {
            "name": "layers",
            "parameterType": "int",
            "feasibleSpace": {"min": "1", "max": "4", "step": "1"},
        },
        {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
        {"name": "bs", "parameterType": "discrete", "feasibleSpace": {"list": ["16", "32"]}},
    ]
    assert spec["objective"]["type"] == "maximize"
    assert spec["algorithm"]["algorithmSettings"] == [{"name": "random_state", "value": "3"}]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (6, 2)


def test_command_placeholders_become_trial_parameters() -> None:
    experiment = build(
        objective_fn=None,
        command=["python", "train.py", "--lr={lr}", "--layers", "{layers}", "{opt}/{bs}", "{{x}}"],
    )
    template = experiment.to_dict()["spec"]["trialTemplate"]
    assert container(experiment)["command"] == [
        "python",
        "train.py",
        "--lr=${trialParameters.lr}",
        "--layers",
        "${trialParameters.layers}",
        "${trialParameters.opt}/${trialParameters.bs}",
        "{x}",
    ]
    assert template["trialParameters"] == [
        {"name": n, "reference": n} for n in ("lr", "layers", "opt", "bs")
    ]


def test_function_objective_travels_in_the_trial_command() -> None:
    args = container(build())["args"]
    assert container(build())["command"] == ["python", "-m", "tuner.api._fn_runner"]
    assert args[args.index("--function") + 1] == "objective"
    assert args[args.index("--metric") + 1] == "accuracy"
    assert "def objective(params" in args[args.index("--source") + 1]
    assert [p["name"] for p in json.loads(args[args.index("--space") + 1])] == [
        "lr",
        "layers",
        "opt",
        "bs",
    ]


def test_errors_name_the_python_arguments() -> None:
    found = messages(
        # Int(1.5, ...) is what the check is for: a float where an int belongs.
        parameters={"lr": Double(5, 1), "layers": Int(1.5, 4)},  # type: ignore[arg-type]
        max_trials=0,
        goal_type="max",
    )
    assert found == ["parameters['layers'].min: 1.5 is not an integer"]
    found = messages(parameters={"lr": Double(5, 1)}, max_trials=0, goal_type="max")
    assert sorted(found) == [
        "goal_type: input should be 'minimize' or 'maximize', got 'max'",
        "max_trials: 0 is less than 1",
        "parameters['lr'].min: 5.0 is greater than max 1.0",
    ]


def test_katib_names_in_messages_become_argument_names() -> None:
    assert messages(max_trials=1) == ["parallel_trials: 2 is greater than max_trials 1"]
    assert messages(additional_metrics=["accuracy"]) == [
        "additional_metrics[0]: 'accuracy' repeats objective"
    ]
    assert messages(metric_strategies={"accuracy": "avg"}) == [
        "metric_strategies['accuracy']: input should be 'min', 'max' or 'latest', got 'avg'"
    ]


def test_command_errors_point_at_the_argument() -> None:
    found = messages(
        objective_fn=None,
        parameters={"lr": Double(0.1, 1), "unused": Int(1, 2)},
        command=["python", "t.py", "{lr}", "{nope}", "${trialParameters.lr}", "{"],
    )
    assert found[0].startswith("command[3]: {nope} names no parameter (parameters: 'lr', 'unused')")
    assert "write {lr} in Python" in found[1] and found[1].startswith("command[4]")
    assert found[2].startswith("command[5]: '{': a lone '{'")
    assert found[3] == "parameters['unused']: not used in command; pass it to the trial as {unused}"


def test_wrong_value_types_are_refused() -> None:
    wrong: list[Any] = ["a", 1]
    assert messages(parameters={"opt": Categorical(wrong)})[0].startswith(
        "parameters['opt'].values[1]: 1 is not a string"
    )
    assert messages(parameters={"lr": (0.1, 1.0)})[0].startswith(
        "parameters['lr']: (0.1, 1.0) is not a parameter; use Double"
    )
    assert messages(command=["python", "t.py"])[0].startswith(
        "command: give exactly one of command=[...] and objective_fn=function"
    )


def test_to_yaml_then_from_yaml_gives_the_same_experiment(tmp_path: Path) -> None:
    for experiment in (
        build(),
        build(objective_fn=None, command=["python", "t.py", "{lr}", "{layers}", "{opt}", "{bs}"]),
    ):
        path = tmp_path / f"{experiment.name}.yaml"
        experiment.to_yaml(path)
        again = Experiment.from_yaml(path)
        assert again.to_dict() == experiment.to_dict()
        assert [e.to_dict() for e in load_file(path)] == [experiment.to_dict()]


def test_from_yaml_refuses_a_file_with_two_experiments(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(build(name="one").to_yaml() + "---\n" + build(name="two").to_yaml())
    with pytest.raises(SpecError, match="holds 2 Experiments; from_yaml reads one"):
        Experiment.from_yaml(path)


def make_closure() -> Any:
    scale = 2.0

    def closure(params: dict[str, Any]) -> float:
        return params["lr"] * scale

    return closure


def make_counter() -> Any:
    calls = 0

    def counter(params: dict[str, Any]) -> float:
        nonlocal calls
        calls += 1
        return float(calls)

    return counter


def decorated(params: dict[str, Any]) -> float:
    return 1.0


@functools.wraps(decorated)
def wrapper(params: dict[str, Any]) -> float:
    return decorated(params)


def uses_lock(params: dict[str, Any]) -> float:
    with LOCK:
        return 1.0


def two_arguments(params: dict[str, Any], data: list[float]) -> float:
    return 1.0


class Model:
    pass


def uses_class(params: dict[str, Any]) -> float:
    return float(bool(Model()))


def interactive() -> Any:
    namespace: dict[str, Any] = {}
    exec("def typed_in(params):\n    return 1.0\n", namespace)  # what a REPL session leaves
    return namespace["typed_in"]


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda params: 1.0, "<lambda>: a lambda cannot travel to a trial"),
        (make_closure(), "make_closure.<locals>.closure is a closure: it uses scale"),
        (make_counter(), "make_counter.<locals>.counter is a closure: it uses calls"),
        (interactive(), "typed_in: its source code cannot be found"),
        (wrapper, "decorated is wrapped by a decorator; pass the undecorated function"),
        (functools.partial(two_arguments, data=[]), "is not a plain function (a def statement)"),
        (uses_lock, "uses the module-level 'LOCK' (lock), which cannot travel to a trial"),
        (uses_class, "uses the module-level 'Model' (type), which cannot travel to a trial"),
    ],
)
def test_functions_without_portable_source_build_but_have_no_yaml(
    function: Any, message: str
) -> None:
    experiment = build(objective_fn=function)  # local runs pickle it
    with pytest.raises(SpecError) as caught:
        experiment.to_yaml()
    (found,) = (str(issue) for issue in caught.value.issues)
    assert found.startswith("objective_fn: ")
    assert message in found
    assert "Experiment.run() with the local executor pickles it instead" in found


def test_an_objective_taking_two_required_arguments_is_refused() -> None:
    (found,) = messages(objective_fn=two_arguments)
    assert found.startswith("objective_fn: ")
    assert "the objective is called with one argument, the parameters dict" in found


def test_parallel_trials_defaults_to_at_most_max_trials() -> None:
    spec = build(max_trials=2, parallel_trials=None).to_dict()["spec"]
    assert (spec["parallelTrialCount"], spec["maxTrialCount"]) == (2, 2)
    spec = build(max_trials=12, parallel_trials=None).to_dict()["spec"]
    assert spec["parallelTrialCount"] == 3


def test_a_big_module_constant_is_refused() -> None:
    global BIG
    BIG = list(range(5000))

    def uses_big(params: dict[str, Any]) -> float:
        return float(len(BIG))

    uses_big.__qualname__ = "uses_big"  # no closure: BIG is a module global
    with pytest.raises(SpecError) as caught:
        build(objective_fn=uses_big).to_yaml()
    (found,) = (str(issue) for issue in caught.value.issues)
    assert "uses the module-level 'BIG'" in found and "load or build it inside" in found


BIG: list[int] = []


def test_resources_per_trial_become_the_containers_limits() -> None:
    built = build(resources_per_trial={"gpu": 1, "cpu": 2, "memory": "4Gi"})
    assert container(built)["resources"] == {
        "limits": {"nvidia.com/gpu": 1, "cpu": "2", "memory": "4Gi"}
    }


def test_unusable_resources_per_trial_are_named() -> None:
    assert sorted(messages(resources_per_trial={"gpus": 1, "gpu": 0.5})) == [
        "resources_per_trial['gpu']: 0.5 is not a whole number of GPUs",
        "resources_per_trial['gpus']: is not a resource; use one of gpu, nvidia.com/gpu,"
        " amd.com/gpu, cpu, memory",
    ]


def test_a_cap_on_stored_reports_becomes_the_experiments_annotation(tmp_path: Path) -> None:
    experiment = build(max_observations_per_metric=500)

    annotations = experiment.to_dict()["metadata"]["annotations"]
    assert annotations == {"tuner.kubeflow.org/max-observations-per-metric": "500"}
    assert experiment.spec.max_observations_per_metric == 500
    experiment.to_yaml(tmp_path / "capped.yaml")
    assert Experiment.from_yaml(tmp_path / "capped.yaml").spec.max_observations_per_metric == 500
    assert "annotations" not in build().to_dict()["metadata"]


@pytest.mark.parametrize("cap", [0, -3, 2.5, True, "100"])
def test_a_cap_on_stored_reports_that_is_not_a_positive_integer_is_refused(cap: object) -> None:
    (message,) = messages(max_observations_per_metric=cap)
    assert message.startswith(f"max_observations_per_metric: {cap!r} is not a positive integer")
