"""Katib's hyperopt setting names for ``tpe`` and ``random`` (issue 11, item 5): Katib's default
configuration serves both with hyperopt, whose settings are ``gamma``, ``prior_weight``,
``n_EI_candidates`` and ``random_state``. Over real gRPC: accepted with Katib's validator's
rules, refused outside them naming the setting, and each one changes what tpe proposes."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tuner.protos import api_pb2

HYPEROPT_TPE = {
    "gamma": "0.25",
    "prior_weight": "1.0",
    "n_EI_candidates": "24",
    "random_state": "0",
}

# Katib's hyperopt validator: gamma in (0, 1), prior_weight > 0, n_EI_candidates > 0,
# random_state >= 0; anything else is an unknown setting.
REFUSED = [
    ("tpe", "gamma", "0", "open interval (0, 1)"),
    ("tpe", "gamma", "1", "open interval (0, 1)"),
    ("tpe", "gamma", "a quarter", "open interval (0, 1)"),
    ("tpe", "prior_weight", "0", "number > 0"),
    ("tpe", "n_EI_candidates", "0", "integer >= 1"),
    ("tpe", "random_state", "-1", "integer >= 0"),
    ("random", "gamma", "0.25", "not a setting of random"),
    ("multivariate-tpe", "gamma", "0.25", "not a setting of multivariate-tpe"),
]


def params(kit: Any) -> list[api_pb2.ParameterSpec]:
    return [
        kit.param("x", "double", min="-3", max="3"),
        kit.param("y", "double", min="-3", max="3"),
    ]


def validate(suggestions: Any, experiment: api_pb2.Experiment) -> None:
    suggestions.ValidateAlgorithmSettings(
        api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment)
    )


def proposals(kit: Any, run: Any, suggestions: Any, settings: dict[str, str]) -> list[Any]:
    """Twelve tpe proposals, one at a time, on a bowl, with a fixed seed and 4 random ones."""
    experiment = kit.experiment(
        "tpe", params(kit), settings={"random_state": "7", "n_startup_trials": "4", **settings}
    )
    validate(suggestions, experiment)
    driver = run(suggestions, experiment, lambda p: p["x"] ** 2 + p["y"] ** 2)
    for _ in range(12):
        assert len(driver.ask(1)) == 1
    return driver.keys()


def test_katibs_hyperopt_settings_of_tpe_and_random_are_accepted(
    kit: Any, run: Any, suggestions: Any
) -> None:
    for algorithm, settings in (("tpe", HYPEROPT_TPE), ("random", {"random_state": "3"})):
        experiment = kit.experiment(algorithm, params(kit), settings=settings)
        validate(suggestions, experiment)
        driver = run(suggestions, experiment, lambda p: p["x"] ** 2)
        for _ in range(3):
            assert len(driver.ask(2)) == 2


@pytest.mark.parametrize(("algorithm", "setting", "value", "rule"), REFUSED)
def test_values_katibs_validator_refuses_are_invalid_arguments(
    kit: Any, suggestions: Any, algorithm: str, setting: str, value: str, rule: str
) -> None:
    experiment = kit.experiment(algorithm, params(kit), settings={setting: value})
    with pytest.raises(grpc.RpcError) as caught:
        validate(suggestions, experiment)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"'{setting}': {value!r} " in caught.value.details()
    assert rule in caught.value.details()


def test_both_names_of_the_candidate_count_are_refused_together(kit: Any, suggestions: Any) -> None:
    settings = {"n_EI_candidates": "8", "n_ei_candidates": "8"}
    with pytest.raises(grpc.RpcError) as caught:
        validate(suggestions, kit.experiment("tpe", params(kit), settings=settings))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "hyperopt's name of n_ei_candidates" in caught.value.details()


def test_n_ei_candidates_by_hyperopts_name_is_optunas_setting(
    kit: Any, run: Any, suggestions: Any
) -> None:
    hyperopt = proposals(kit, run, suggestions, {"n_EI_candidates": "2"})
    optuna = proposals(kit, run, suggestions, {"n_ei_candidates": "2"})
    default = proposals(kit, run, suggestions, {})
    assert hyperopt == optuna
    assert hyperopt[:4] == default[:4]  # the random start is the seed's
    assert hyperopt[4:] != default[4:]  # 2 candidates instead of 24


@pytest.mark.parametrize("setting", [{"gamma": "0.9"}, {"prior_weight": "50"}])
def test_gamma_and_prior_weight_change_what_tpe_proposes(
    kit: Any, run: Any, suggestions: Any, setting: dict[str, str]
) -> None:
    given = proposals(kit, run, suggestions, setting)
    default = proposals(kit, run, suggestions, {})
    assert given[:4] == default[:4]
    assert given[4:] != default[4:]
