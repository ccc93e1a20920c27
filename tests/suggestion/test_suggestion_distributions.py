"""Distributions at the algorithm layer (no gRPC): which algorithms honour which, and the
refusal, naming the parameter, of those they cannot honour."""

from __future__ import annotations

import statistics

import pytest

from suggestion.algorithms import SpaceNotSupportedError, TrialState, TrialView, get
from tuner.space import Direction, Parameter, SearchSpace


def space(*parameters: Parameter) -> SearchSpace:
    return SearchSpace(tuple(parameters))


def first_points(name: str, s: SearchSpace, count: int, **settings: str) -> list[dict]:
    cls = get(name)
    parsed = cls.parse([("random_state", "7"), *settings.items()])
    cls.check_space(s, parsed)
    return cls(s, Direction.MINIMIZE, parsed).suggest([], count)


LR = Parameter.from_wire("lr", "double", min="1e-4", max="1", distribution="logUniform")
X = Parameter.from_wire("x", "double", min="0", max="1")
STARTUP = {
    "tpe": {"n_startup_trials": "20"},
    "multivariate-tpe": {"n_startup_trials": "20"},
    "bayesianoptimization": {"n_initial_points": "20"},
}


@pytest.mark.parametrize(
    "name", ["random", "sobol", "tpe", "multivariate-tpe", "cmaes", "bayesianoptimization"]
)
def test_log_uniform_is_honoured(name: str) -> None:
    points = first_points(name, space(LR, X), 16, **STARTUP.get(name, {}))
    assert len(points) == 16
    assert all(1e-4 <= p["lr"] <= 1 for p in points)
    assert statistics.median(p["lr"] for p in points) < 0.1  # uniform: about 0.5


@pytest.mark.parametrize("name", ["random", "sobol"])
@pytest.mark.parametrize(
    ("kind", "low", "high", "middle"),
    [("double", "0", "6", (2, 4)), ("int", "0", "60", (20, 40))],
)
def test_normal_is_honoured_within_bounds(
    name: str, kind: str, low: str, high: str, middle: tuple[int, int]
) -> None:
    p = Parameter.from_wire("v", kind, min=low, max=high, distribution="normal")
    points = first_points(name, space(p), 40)
    values = [pt["v"] for pt in points]
    assert all(p.contains(v) for v in values)
    # mean -/+ 1 deviation holds about 68% of a normal, a third of a uniform.
    assert sum(middle[0] <= v <= middle[1] for v in values) / len(values) > 0.5


@pytest.mark.parametrize("name", ["random", "sobol"])
def test_log_normal_is_honoured(name: str) -> None:
    p = Parameter.from_wire("v", "double", min="1e-4", max="1", distribution="logNormal")
    values = [pt["v"] for pt in first_points(name, space(p), 40)]
    assert all(1e-4 <= v <= 1 for v in values)
    assert 1e-3 < statistics.median(values) < 1e-1


@pytest.mark.parametrize("name", ["tpe", "multivariate-tpe", "cmaes", "bayesianoptimization"])
@pytest.mark.parametrize("distribution", ["normal", "logNormal"])
def test_model_based_algorithms_refuse_normal_priors_naming_the_parameter(
    name: str, distribution: str
) -> None:
    s = space(
        X, Parameter.from_wire("momentum", "double", min="0.1", max="1", distribution=distribution)
    )
    cls = get(name)
    with pytest.raises(SpaceNotSupportedError) as caught:
        cls.check_space(s, cls.parse([]))
    assert caught.value.parameter == "momentum"
    assert distribution in str(caught.value)


def test_grid_accepts_every_distribution_and_enumerates_the_same_points() -> None:
    plain = Parameter.from_wire("v", "double", min="0.5", max="2", step="0.5")
    logged = Parameter.from_wire(
        "v", "double", min="0.5", max="2", step="0.5", distribution="logUniform"
    )
    assert first_points("grid", space(plain), 10) == first_points("grid", space(logged), 10)
    assert [p["v"] for p in first_points("grid", space(plain), 10)] == [0.5, 1.0, 1.5, 2.0]


def test_stepped_log_parameters_land_on_the_step_grid() -> None:
    p = Parameter.from_wire("v", "int", min="1", max="1000", step="3", distribution="logUniform")
    for name in ("random", "tpe", "bayesianoptimization", "cmaes"):
        s = space(p, X)
        points = first_points(name, s, 8)
        assert all(p.contains(pt["v"]) for pt in points), name


def test_completed_trials_outside_the_modelled_priors_are_still_understood() -> None:
    # A trial at the lower bound of a log scale must be accepted by the models.
    s = space(LR, X)
    trials = [
        TrialView("a", {"lr": 1e-4, "x": 0.0}, TrialState.COMPLETED, 1.0),
        TrialView("b", {"lr": 1.0, "x": 1.0}, TrialState.COMPLETED, 2.0),
    ]
    for name in ("tpe", "multivariate-tpe", "bayesianoptimization", "cmaes"):
        cls = get(name)
        parsed = cls.parse([("random_state", "1")])
        points = cls(s, Direction.MINIMIZE, parsed).suggest(trials, 2)
        assert len(points) == 2, name
