"""Settings, spaces and requests the server refuses, and the status codes it uses."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tuner.protos import api_pb2

BAD_SETTINGS = [
    ("random", "random_state", "-3", "integer >= 0"),
    ("random", "seed", "1", "not a setting of random"),
    ("grid", "n_startup_trials", "5", "not a setting of grid"),
    ("sobol", "random_state", "x", "integer"),
    ("tpe", "n_startup_trials", "-1", "integer >= 0"),
    ("tpe", "n_ei_candidates", "many", "integer"),
    ("tpe", "startup_trials", "5", "not a setting of tpe"),
    ("multivariate-tpe", "n_ei_candidates", "0", "integer >= 1"),
    ("cmaes", "sigma", "0", "number > 0"),
    ("cmaes", "restart_strategy", "sometimes", "none, ipop, bipop"),
    ("bayesianoptimization", "base_estimator", "SVM", "GP, RF, ET, GBRT"),
    ("bayesianoptimization", "n_initial_points", "1.5", "integer"),
    ("bayesianoptimization", "acq_func", "EIps", "evaluation time"),
    ("bayesianoptimization", "acq_optimizer", "adam", "auto, sampling, lbfgs"),
]

GOOD_SETTINGS = {
    "random": {"random_state": "10"},
    "grid": {"random_state": "10"},
    "sobol": {"random_state": "10"},
    "tpe": {"n_startup_trials": "5", "n_ei_candidates": "12", "random_state": "10"},
    "multivariate-tpe": {"n_startup_trials": "5", "n_ei_candidates": "12", "random_state": "3"},
    "cmaes": {"sigma": "0.3", "restart_strategy": "bipop", "random_state": "4"},
    "bayesianoptimization": {
        "base_estimator": "GBRT",
        "n_initial_points": "2",
        "acq_func": "EI",
        "acq_optimizer": "sampling",
        "random_state": "5",
    },
}


def two_params(kit: Any) -> list[api_pb2.ParameterSpec]:
    return [
        kit.param("lr", "double", min="0.001", max="0.1", step="0.001"),
        kit.param("layers", "int", min="1", max="5"),
    ]


def refusal(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    return caught.value


@pytest.mark.parametrize(("algorithm", "setting", "value", "rule"), BAD_SETTINGS)
def test_bad_settings_are_invalid_arguments_naming_the_setting(
    algorithm: str, setting: str, value: str, rule: str, kit: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(algorithm, two_params(kit), settings={setting: value})
    for error in (
        refusal(
            suggestions.ValidateAlgorithmSettings,
            api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment),
        ),
        refusal(suggestions.GetSuggestions, kit.request(experiment, [], 1)),
    ):
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert f"'{setting}'" in error.details()
        assert repr(value) in error.details()
        assert rule in error.details()


def test_lbfgs_needs_a_gaussian_process(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment(
        "bayesianoptimization",
        two_params(kit),
        settings={"base_estimator": "RF", "acq_optimizer": "lbfgs"},
    )
    error = refusal(
        suggestions.ValidateAlgorithmSettings,
        api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment),
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'acq_optimizer'" in error.details() and "base_estimator GP" in error.details()


@pytest.mark.parametrize("algorithm", sorted(GOOD_SETTINGS))
def test_katib_settings_are_accepted_and_used(
    algorithm: str, kit: Any, run: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(algorithm, two_params(kit), settings=GOOD_SETTINGS[algorithm])
    suggestions.ValidateAlgorithmSettings(
        api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment)
    )
    driver = run(suggestions, experiment, lambda p: p["lr"] * p["layers"])
    for _ in range(3):
        assert len(driver.ask(2)) == 2


def test_a_setting_given_twice_is_refused(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment(
        "random", two_params(kit), settings=[("random_state", "1"), ("random_state", "2")]
    )
    error = refusal(suggestions.GetSuggestions, kit.request(experiment, [], 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'random_state'" in error.details() and "twice" in error.details()


def test_unknown_algorithm_lists_the_known_ones(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment("hyperopt-anneal", two_params(kit))
    error = refusal(suggestions.GetSuggestions, kit.request(experiment, [], 1))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert "'hyperopt-anneal'" in error.details()
    for known in (
        "bayesianoptimization",
        "cmaes",
        "grid",
        "multivariate-tpe",
        "random",
        "sobol",
        "tpe",
    ):
        assert known in error.details()
    # Katib's controller reads UNIMPLEMENTED from ValidateAlgorithmSettings as "valid".
    error = refusal(
        suggestions.ValidateAlgorithmSettings,
        api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment),
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_grid_refuses_a_double_without_step_naming_it(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment(
        "grid",
        [
            kit.param("dropout", "double", min="0", max="0.5"),
            kit.param("layers", "int", min="1", max="5"),
        ],
    )
    error = refusal(
        suggestions.ValidateAlgorithmSettings,
        api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment),
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'dropout'" in error.details() and "step" in error.details()


def test_cmaes_refuses_fewer_than_two_numeric_parameters(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment(
        "cmaes",
        [
            kit.param("lr", "double", min="0", max="1"),
            kit.param("opt", "categorical", values=["adam", "sgd"]),
        ],
    )
    error = refusal(suggestions.GetSuggestions, kit.request(experiment, [], 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "two int or double parameters" in error.details()


@pytest.mark.parametrize("algorithm", ["tpe", "multivariate-tpe", "cmaes", "bayesianoptimization"])
def test_unsupported_distributions_are_refused_naming_the_parameter(
    algorithm: str, kit: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(
        algorithm,
        [
            kit.param("x", "double", min="0", max="1"),
            kit.param("momentum", "double", min="0.5", max="1", distribution="normal"),
        ],
    )
    error = refusal(
        suggestions.ValidateAlgorithmSettings,
        api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment),
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'momentum'" in error.details() and "normal" in error.details()


def test_a_broken_search_space_names_the_field(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment("random", [kit.param("lr", "double", min="5", max="1")])
    error = refusal(suggestions.GetSuggestions, kit.request(experiment, [], 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "experiment.spec.parameters[0].feasibleSpace.min" in error.details()
    assert "5" in error.details()


def test_a_trial_outside_the_space_is_refused_naming_it(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment("random", two_params(kit))
    trial = kit.trial("stray", {"lr": "0.5", "layers": "2"}, value=1.0)
    error = refusal(suggestions.GetSuggestions, kit.request(experiment, [trial], 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "stray" in error.details() and "lr='0.5'" in error.details()


def test_a_trial_with_a_malformed_value_is_refused(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment("tpe", two_params(kit))
    trial = kit.trial("t1", {"lr": "0.01", "layers": "two"}, value=1.0)
    error = refusal(suggestions.GetSuggestions, kit.request(experiment, [trial], 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "t1" in error.details() and "'two'" in error.details()


def test_an_objective_without_direction_is_refused(kit: Any, suggestions: Any) -> None:
    experiment = kit.experiment("random", two_params(kit))
    experiment.spec.objective.type = api_pb2.UNKNOWN
    error = refusal(suggestions.GetSuggestions, kit.request(experiment, [], 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "experiment.spec.objective.type" in error.details()
