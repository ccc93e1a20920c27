"""Sample efficiency, marked ``quality``: on a 2-D quadratic with 40 trials, each model-based
algorithm's median best value over fixed seeds beats random search's (over real gRPC)."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

pytestmark = pytest.mark.quality

SEEDS = range(3)
TRIALS = 40
BATCH = 1

SETTINGS = {
    "random": {},
    "tpe": {},
    "multivariate-tpe": {},
    "cmaes": {},
    # Katib's defaults but the cheaper acquisition optimiser, to keep the test in seconds.
    "bayesianoptimization": {"acq_optimizer": "sampling"},
}


def quadratic(point: dict[str, Any]) -> float:
    return (point["x"] - 1.3) ** 2 + (point["y"] + 0.7) ** 2


def best_values(algorithm: str, kit: Any, run: Any, suggestions: Any) -> list[float]:
    bests = []
    for seed in SEEDS:
        experiment = kit.experiment(
            algorithm,
            [
                kit.param("x", "double", min="-5", max="5"),
                kit.param("y", "double", min="-5", max="5"),
            ],
            settings=dict(SETTINGS[algorithm], random_state=str(seed)),
        )
        driver = run(suggestions, experiment, quadratic)
        while len(driver.trials) < TRIALS:
            driver.ask(BATCH)
        bests.append(min(driver.values()))
    return bests


@pytest.fixture(scope="module")
def random_median(kit: Any, run: Any, suggestions: Any) -> float:
    return statistics.median(best_values("random", kit, run, suggestions))


@pytest.mark.parametrize("algorithm", ["tpe", "multivariate-tpe", "bayesianoptimization", "cmaes"])
def test_beats_random_search_on_a_quadratic(
    algorithm: str, random_median: float, kit: Any, run: Any, suggestions: Any
) -> None:
    median = statistics.median(best_values(algorithm, kit, run, suggestions))
    print(algorithm, median, random_median)
    assert median < random_median, (algorithm, median, random_median)
