"""Every registered algorithm over real gRPC, for each parameter type and distribution:
replies hold the requested number of distinct, feasible points that repeat no trial, and a
parameter the algorithm cannot honour is refused as INVALID_ARGUMENT naming it.

The algorithms come from the registry (`suggestion.algorithms.names()`): a new algorithm is
tested without editing this file. The tables below only make known ones cheaper (SETTINGS)
and pin down what each is expected to accept (ACCEPTS); a new one may accept or refuse."""

from __future__ import annotations

import statistics
from typing import Any

import grpc
import pytest

from suggestion.algorithms import get, names

CHEAP_BO = {"n_initial_points": "3", "acq_optimizer": "sampling", "random_state": "1"}
SETTINGS: dict[str, dict[str, str]] = {
    "random": {"random_state": "1"},
    "grid": {},
    "sobol": {},
    "tpe": {"n_startup_trials": "3", "random_state": "1"},
    "multivariate-tpe": {"n_startup_trials": "3", "random_state": "1"},
    "cmaes": {"random_state": "1"},
    "bayesianoptimization": CHEAP_BO,
    "pbt": {"suggestion_trial_dir": "/ckpt", "n_population": "5", "truncation_threshold": "0.2"},
}

# name -> (type, feasible space); "dist" entries need the wire distribution field.
PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    "double": ("double", {"min": "-2", "max": "3"}),
    "double-step": ("double", {"min": "0.1", "max": "0.9", "step": "0.2"}),
    "double-log": ("double", {"min": "1e-4", "max": "1", "distribution": "logUniform"}),
    "double-log-step": (
        "double",
        {"min": "0.5", "max": "8", "step": "0.5", "distribution": "logUniform"},
    ),
    "double-normal": ("double", {"min": "-1", "max": "1", "distribution": "normal"}),
    "double-lognormal": ("double", {"min": "0.01", "max": "100", "distribution": "logNormal"}),
    "int": ("int", {"min": "-3", "max": "40"}),
    "int-step": ("int", {"min": "0", "max": "60", "step": "5"}),
    "int-log": ("int", {"min": "1", "max": "1024", "distribution": "logUniform"}),
    "int-normal": ("int", {"min": "0", "max": "60", "distribution": "normal"}),
    "discrete": ("discrete", {"values": ["1", "2.5", "4", "8", "16", "32", "64"]}),
    "categorical": ("categorical", {"values": ["adam", "sgd", "rmsprop", "ftrl", "lamb"]}),
}

GRIDDED = [
    "double-step",
    "double-log-step",
    "int",
    "int-step",
    "int-log",
    "int-normal",
    "discrete",
    "categorical",
]
MODELLED = [
    "double",
    "double-step",
    "double-log",
    "double-log-step",
    "int",
    "int-step",
    "int-log",
    "discrete",
    "categorical",
]
ACCEPTS: dict[str, list[str]] = {
    "random": list(PARAMETERS),
    "sobol": list(PARAMETERS),
    "grid": GRIDDED,
    "tpe": MODELLED,
    "multivariate-tpe": MODELLED,
    "bayesianoptimization": MODELLED,
    "cmaes": MODELLED,
}
CASES = [(a, p) for a in names() if get(a).general_purpose for p in PARAMETERS]


def objective(point: dict[str, Any]) -> float:
    return sum(float(v) ** 2 if not isinstance(v, str) else float(len(v)) for v in point.values())


@pytest.mark.parametrize(("algorithm", "parameter"), CASES)
def test_replies_are_feasible_distinct_and_new(
    algorithm: str, parameter: str, kit: Any, run: Any, suggestions: Any
) -> None:
    kind, fs = PARAMETERS[parameter]
    # A second parameter: CMA-ES needs two numeric dimensions, and small grids (5 points)
    # would otherwise be exhausted by the requests below.
    params = [kit.param("p", kind, **fs), kit.param("x", "int", min="0", max="9")]
    if algorithm == "cmaes" and kind in ("discrete", "categorical"):
        params.append(kit.param("y", "double", min="0", max="1"))
    experiment = kit.experiment(algorithm, params, settings=SETTINGS.get(algorithm, {}))
    driver = run(suggestions, experiment, objective)
    expected = ACCEPTS[algorithm].count(parameter) > 0 if algorithm in ACCEPTS else None

    try:
        first = driver.ask(3)
    except grpc.RpcError as e:
        assert expected is not True, f"{algorithm} refused {parameter}: {e.details()}"
        assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
        if expected is False:
            assert "'p'" in (e.details() or ""), e.details()
        return
    assert expected is not False, f"{algorithm} accepted {parameter}, which it cannot honour"
    for count, reply in ((3, first), (3, None), (2, None)):
        reply = reply if reply is not None else driver.ask(count)
        assert len(reply) == count
        for assignment in reply:
            assert driver.space.contains(driver.space.parse(assignment)), assignment
    keys = driver.keys()
    # pbt's trials may share a parameter set (they differ by parent checkpoint).
    assert len(set(keys)) == len(keys) or get(algorithm).repeats_points


@pytest.mark.parametrize(
    "algorithm", ["random", "sobol", "tpe", "multivariate-tpe", "cmaes", "bayesianoptimization"]
)
def test_log_uniform_parameters_are_sampled_on_a_log_scale(
    algorithm: str, kit: Any, suggestions: Any
) -> None:
    # The first points of every algorithm are spread by its prior; on [1e-4, 1] a log scale
    # puts their median near 1e-2, a uniform one near 0.5.
    settings = (
        dict(SETTINGS[algorithm], n_startup_trials="20")
        if "tpe" in algorithm
        else (
            dict(SETTINGS[algorithm], n_initial_points="20")
            if algorithm == "bayesianoptimization"
            else SETTINGS[algorithm]
        )
    )
    experiment = kit.experiment(
        algorithm,
        [
            kit.param("lr", "double", min="1e-4", max="1", distribution="logUniform"),
            kit.param("x", "double", min="0", max="1"),
        ],
        settings=settings,
    )
    reply = kit.assignments(suggestions.GetSuggestions(kit.request(experiment, [], 16)))
    assert statistics.median(float(a["lr"]) for a in reply) < 0.1


@pytest.mark.parametrize("algorithm", ["random", "sobol"])
def test_normal_parameters_concentrate_around_the_middle(
    algorithm: str, kit: Any, suggestions: Any
) -> None:
    # normal on [0, 6] has mean 3 and deviation 1: about 68% within [2, 4] (uniform: 33%).
    experiment = kit.experiment(
        algorithm,
        [kit.param("v", "double", min="0", max="6", distribution="normal")],
        settings=SETTINGS[algorithm],
    )
    reply = kit.assignments(suggestions.GetSuggestions(kit.request(experiment, [], 32)))
    values = [float(a["v"]) for a in reply]
    assert all(0 <= v <= 6 for v in values)
    assert sum(2 <= v <= 4 for v in values) / len(values) > 0.5


@pytest.mark.parametrize("algorithm", ["random", "sobol"])
def test_log_normal_parameters_concentrate_around_the_geometric_middle(
    algorithm: str, kit: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(
        algorithm,
        [kit.param("v", "double", min="0.0001", max="1", distribution="logNormal")],
        settings=SETTINGS[algorithm],
    )
    reply = kit.assignments(suggestions.GetSuggestions(kit.request(experiment, [], 32)))
    values = [float(a["v"]) for a in reply]
    assert 1e-3 < statistics.median(values) < 1e-1
    assert sum(1e-3 <= v <= 1e-1 for v in values) / len(values) > 0.5


@pytest.mark.parametrize("algorithm", ["tpe", "cmaes", "bayesianoptimization"])
def test_the_goal_sets_the_direction(algorithm: str, kit: Any, run: Any, suggestions: Any) -> None:
    # The same objective maximised and minimised: the later points must be better for the
    # goal asked for, so the two runs end up apart.
    def late_median(goal: str) -> float:
        experiment = kit.experiment(
            algorithm,
            [kit.param(n, "double", min="-5", max="5") for n in ("x", "y")],
            settings=SETTINGS[algorithm],
            goal=goal,
        )
        driver = run(suggestions, experiment, lambda p: -((p["x"] - 2) ** 2) - (p["y"] - 2) ** 2)
        # CMA-ES moves one generation (6 points here) at a time: give it more rounds.
        for _ in range(12 if algorithm == "cmaes" else 8):
            driver.ask(2)
        return statistics.median(driver.values()[-8:])

    assert late_median("maximize") > late_median("minimize")
