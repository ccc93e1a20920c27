"""Bayesian optimisation's GP path: Katib's default settings answer deterministically, cold
as warm, with eight distinct model points per call; every algorithm gives 8 distinct of 8."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from suggestion import algorithms
from suggestion.algorithms import TrialState, TrialView
from tuner.space import Direction, Parameter, SearchSpace

GP_SETTINGS = [
    {"random_state": "5"},  # Katib's defaults: GP, gp_hedge, acq_optimizer auto (lbfgs)
    {"random_state": "5", "acq_func": "EI", "acq_optimizer": "sampling"},
    {"random_state": "5", "acq_func": "LCB"},
    {"random_state": "5", "acq_func": "PI", "n_initial_points": "3"},
    {"random_state": "5", "base_estimator": "RF"},
]
EIGHT = {
    "random": {"random_state": "2"},
    "grid": {},
    "sobol": {"random_state": "2"},
    "tpe": {"n_startup_trials": "4", "random_state": "2"},
    "multivariate-tpe": {"n_startup_trials": "4", "random_state": "2"},
    "cmaes": {"random_state": "2"},
    "bayesianoptimization": {"n_initial_points": "4", "random_state": "2"},
}


def space(kit: Any, *, stepped: bool = False) -> list[Any]:
    step = "0.05" if stepped else ""  # grid needs a step on every double
    return [
        kit.param("lr", "double", min="1e-4", max="1", step=step, distribution="logUniform"),
        kit.param("units", "int", min="8", max="256"),
        kit.param("drop", "double", min="0", max="0.5", step="0.05"),
        kit.param("act", "categorical", values=["relu", "tanh", "gelu"]),
    ]


def objective(p: dict[str, Any]) -> float:
    return float(
        (np.log10(p["lr"]) + 2) ** 2
        + ((p["units"] - 100) / 100) ** 2
        + (p["drop"] - 0.2) ** 2
        + (p["act"] != "tanh")
    )


@pytest.mark.parametrize(
    "settings", GP_SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items())
)
def test_bayesian_optimisation_answers_cold_as_warm(
    settings: dict[str, str], kit: Any, run: Any, suggestions: Any, request: Any
) -> None:
    experiment = kit.experiment(
        "bayesianoptimization", space(kit), settings=settings, name=f"{request.node.name}-w"
    )
    warm = run(suggestions, experiment, objective)
    for count in (4, 4, 3):
        warm.ask(count)
    warm.ask(2, pending=True)
    cold_experiment = type(experiment)()
    cold_experiment.CopyFrom(experiment)
    cold_experiment.name = f"{request.node.name}-c"
    warm_reply = suggestions.GetSuggestions(kit.request(experiment, warm.trials, 4))
    cold_reply = suggestions.GetSuggestions(kit.request(cold_experiment, warm.trials, 4))
    assert kit.assignments(warm_reply) == kit.assignments(cold_reply)
    again = suggestions.GetSuggestions(kit.request(cold_experiment, warm.trials, 4))
    assert kit.assignments(again) != [] and len(kit.assignments(again)) == 4


@pytest.mark.parametrize("algorithm", sorted(EIGHT))
def test_eight_per_call_are_eight_distinct_new_points(
    algorithm: str, kit: Any, run: Any, suggestions: Any
) -> None:
    experiment = kit.experiment(
        algorithm, space(kit, stepped=algorithm == "grid"), settings=EIGHT[algorithm]
    )
    driver = run(suggestions, experiment, objective)
    driver.ask(8)
    driver.ask(3, pending=True)
    reply = driver.ask(8)
    assert len(reply) == 8
    keys = driver.keys()
    assert len(set(keys)) == len(keys) == 19


def test_the_constant_liar_spreads_a_batch_without_random_filling() -> None:
    names = ("a", "b", "c")
    domain = SearchSpace(tuple(Parameter.from_wire(n, "double", min="0", max="1") for n in names))
    rng = np.random.default_rng(0)
    trials = [
        TrialView(
            f"t{i}",
            dict(zip(names, map(float, x), strict=True)),
            TrialState.COMPLETED,
            float(np.sum((x - 0.4) ** 2)),
        )
        for i, x in enumerate(rng.random((30, 3)))
    ]
    cls = algorithms.get("bayesianoptimization")
    algorithm = cls(domain, Direction.MINIMIZE, cls.parse([("random_state", "1")]))
    proposals = algorithm._propose(trials, 8)  # the model's own points, before any filling
    assert len({tuple(p[n] for n in names) for p in proposals}) == 8
