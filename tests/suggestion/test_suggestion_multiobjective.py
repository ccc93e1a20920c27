"""Several objectives over Katib's wire API: the further objectives travel as tuner's one
algorithm setting, the server confirms reading them, decodes one value per objective, and
refuses them for an algorithm of one objective; nsga2 answers from the request alone."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest

from suggestion.algorithms import TrialState, TrialView, get
from suggestion.service import TrialDecoder
from tuner.protos import api_pb2
from tuner.space import (
    OBJECTIVES_METADATA,
    OBJECTIVES_SETTING,
    Direction,
    Parameter,
    SearchSpace,
    format_objectives,
    non_dominated,
)

LATENCY = (OBJECTIVES_SETTING, format_objectives([("latency", Direction.MINIMIZE)]))


def two_objective_experiment(kit: Any, algorithm: str, *settings: tuple[str, str]) -> Any:
    return kit.experiment(
        algorithm,
        [kit.param(n, "double", min="0", max="1") for n in ("x", "y")],
        settings=[*settings, LATENCY],
    )


@pytest.mark.parametrize("algorithm", ["random", "nsga2", "tpe", "multivariate-tpe"])
def test_validate_confirms_it_read_every_objective(
    algorithm: str, kit: Any, suggestions: Any
) -> None:
    request = api_pb2.ValidateAlgorithmSettingsRequest(
        experiment=two_objective_experiment(kit, algorithm)
    )
    _, call = suggestions.ValidateAlgorithmSettings.with_call(request)
    assert dict(call.trailing_metadata())[OBJECTIVES_METADATA] == "2"


@pytest.mark.parametrize("algorithm", ["grid", "sobol", "cmaes", "bayesianoptimization"])
def test_an_algorithm_of_one_objective_refuses_several_naming_itself(
    algorithm: str, kit: Any, suggestions: Any
) -> None:
    experiment = two_objective_experiment(kit, algorithm)
    for call in (
        lambda: suggestions.ValidateAlgorithmSettings(
            api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment)
        ),
        lambda: suggestions.GetSuggestions(kit.request(experiment, [], 1)),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"algorithm '{algorithm}' optimises a single objective" in e.value.details()
        assert "nsga2" in e.value.details()


def test_a_malformed_objectives_setting_is_refused_naming_it(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment(
        "random",
        [kit.param("x", "double", min="0", max="1")],
        settings=[(OBJECTIVES_SETTING, '[{"metricName": "latency", "type": "fastest"}]')],
    )
    with pytest.raises(grpc.RpcError) as e:
        suggestions.GetSuggestions(kit.request(experiment, [], 1))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert OBJECTIVES_SETTING in e.value.details()


def metrics_trial(name: str, **metrics: float) -> api_pb2.Trial:
    return api_pb2.Trial(
        name=name,
        spec=api_pb2.TrialSpec(
            parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(
                assignments=[api_pb2.ParameterAssignment(name="x", value="0.5")]
            )
        ),
        status=api_pb2.TrialStatus(
            condition=api_pb2.TrialStatus.SUCCEEDED,
            observation=api_pb2.Observation(
                metrics=[api_pb2.Metric(name=k, value=repr(v)) for k, v in metrics.items()]
            ),
        ),
    )


def test_each_objective_is_read_by_name_and_all_are_needed() -> None:
    space = SearchSpace((Parameter.from_wire("x", "double", min="0", max="1"),))
    decoder = TrialDecoder(space, ("loss", "latency"))
    both, one = decoder.decode(
        [
            metrics_trial("both", latency=3.0, accuracy=0.9, loss=1.5),
            metrics_trial("one", loss=1.0),
        ]
    )
    assert (both.state, both.value, both.values) == (TrialState.COMPLETED, 1.5, (1.5, 3.0))
    assert (one.state, one.values) == (TrialState.FAILED, ())


def zdt1(x: np.ndarray) -> tuple[float, float]:
    g = 1 + 9 * float(np.mean(x[1:]))
    return float(x[0]), g * (1 - (float(x[0]) / g) ** 0.5)


@pytest.mark.parametrize(
    ("algorithm", "settings"),
    [
        ("nsga2", [("population_size", "4")]),
        ("tpe", [("n_startup_trials", "5")]),
        ("multivariate-tpe", [("n_startup_trials", "5")]),
    ],
)
def test_a_multi_objective_request_is_answered_the_same_cold_and_warm(
    algorithm: str, settings: list[tuple[str, str]]
) -> None:
    space = SearchSpace(
        tuple(Parameter.from_wire(f"x{i}", "double", min="0", max="1") for i in range(3))
    )
    cls = get(algorithm)
    parsed = cls.parse([*settings, ("random_state", "11")])
    goals = (Direction.MINIMIZE, Direction.MINIMIZE)
    warm = cls(space, goals, parsed)
    trials: list[TrialView] = []
    for _ in range(5):  # beyond the first generations, so parents and children are used
        for assignment in warm.suggest(trials, 3):
            values = zdt1(np.array([assignment[n] for n in space.names]))
            trials.append(
                TrialView(f"t{len(trials)}", assignment, TrialState.COMPLETED, values=values)
            )
    assert cls(space, goals, parsed).suggest(trials, 3) == warm.suggest(trials, 3)


def test_non_dominated_honours_each_direction() -> None:
    points = [(1.0, 1.0), (2.0, 2.0), (0.0, 3.0), (2.0, 0.5), (1.0, 1.0), (float("nan"), 0.0)]
    assert non_dominated(points, [Direction.MINIMIZE, Direction.MINIMIZE]) == [0, 2, 3, 4]
    assert non_dominated(points, [Direction.MAXIMIZE, Direction.MINIMIZE]) == [3]
