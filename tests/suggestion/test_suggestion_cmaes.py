"""CMA-ES restarts at the algorithm layer: long runs stay finite and never repeat a point."""

from __future__ import annotations

import pytest

from suggestion.algorithms import TrialState, TrialView, get
from tuner.space import Direction, Parameter, SearchSpace

SPACE = SearchSpace(
    (
        Parameter.from_wire("x", "double", min="-5", max="5"),
        Parameter.from_wire("y", "int", min="-50", max="50"),
    )
)


def converge(strategy: str, n_trials: int = 900) -> tuple[object, list[TrialView]]:
    cls = get("cmaes")
    algorithm = cls(
        SPACE,
        Direction.MINIMIZE,
        cls.parse([("random_state", "1"), ("restart_strategy", strategy)]),
    )
    trials: list[TrialView] = []
    while len(trials) < n_trials:
        for point in algorithm.suggest(trials, 6):
            x, y = float(point["x"]), float(point["y"])
            value = (x - 1) ** 2 + (y - 7) ** 2 / 100
            trials.append(TrialView(f"t{len(trials)}", point, TrialState.COMPLETED, value))
    return algorithm, trials


@pytest.mark.parametrize(("strategy", "grows"), [("none", False), ("ipop", True), ("bipop", None)])
def test_converged_runs_restart_and_never_repeat(strategy: str, grows: bool | None) -> None:
    algorithm, trials = converge(strategy)
    keys = [(t.assignment["x"], t.assignment["y"]) for t in trials]
    assert len(set(keys)) == len(keys)
    assert all(SPACE.contains(t.assignment) for t in trials)
    assert min(t.value for t in trials if t.value is not None) < 1e-3
    run = algorithm._run  # type: ignore[attr-defined]
    assert run.restarts >= 1
    if grows is not None:
        assert (run.optimizer.population_size > run.default_popsize) is grows
