"""tpe and multivariate-tpe split and read the trials once per call instead of once per
parameter and ask: their answers stay exactly those of Optuna's own TPESampler."""

from __future__ import annotations

import random
from typing import Any

import optuna
import pytest

from suggestion.algorithms import TrialState, TrialView, _tpe
from suggestion.service import SuggestionEngine
from suggestion.service._sessions import SuggestionRequest
from tuner.space import Direction, Parameter, SearchSpace

SPACE = SearchSpace(
    (
        Parameter.from_wire("x", "double", min="0", max="1"),
        Parameter.from_wire("lr", "double", min="0.0001", max="1", distribution="logUniform"),
        Parameter.from_wire("n", "int", min="1", max="20"),
        Parameter.from_wire("act", "categorical", values=["relu", "tanh", "gelu"]),
    )
)


def _history(goals: int) -> list[TrialView]:
    rng = random.Random(3)
    trials = []
    for i in range(60):
        x = rng.random()
        point: dict[str, float | int | str] = {
            "x": x,
            "lr": 10 ** rng.uniform(-4, 0),
            "n": rng.randint(1, 20),
            "act": rng.choice(["relu", "tanh", "gelu"]),
        }
        if i % 10 == 9:
            trials.append(TrialView(f"t{i}", point, TrialState.PENDING))
        else:
            values = tuple(rng.random() + x * k for k in range(goals))
            trials.append(TrialView(f"t{i}", point, TrialState.COMPLETED, values[0], values=values))
    return trials


def _answers(algorithm: str, goals: int) -> list[list[dict[str, Any]]]:
    engine = SuggestionEngine()
    trials = _history(goals)
    directions = (Direction.MINIMIZE, Direction.MAXIMIZE)[:goals]
    answers = []
    for call in range(2):  # cold, then warm with the first call's points running
        result = engine.suggest(
            SuggestionRequest(
                experiment="e",
                algorithm=algorithm,
                settings=(("random_state", "7"),),
                space=SPACE,
                goal=directions[0],
                goals=directions,
                trials=trials,
                count=8,
            )
        )
        answers.append([dict(a) for a in result.assignments])
        trials = trials + [
            TrialView(f"c{call}-{j}", a, TrialState.PENDING)
            for j, a in enumerate(result.assignments)
        ]
    return answers


@pytest.mark.parametrize(("algorithm", "goals"), [("tpe", 1), ("multivariate-tpe", 1), ("tpe", 2)])
def test_the_answers_are_those_of_optunas_own_sampler(
    algorithm: str, goals: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = []
    observations = _tpe._OneCallTPESampler._observations

    def spy(self: Any, study: Any, trial: Any) -> Any:
        found = observations(self, study, trial)
        shared.append(found is not None)
        return found

    monkeypatch.setattr(_tpe._OneCallTPESampler, "_observations", spy)
    ours = _answers(algorithm, goals)
    assert shared and all(shared)  # every ask went through the shared split
    monkeypatch.setattr(_tpe._OneCallTPESampler, "_sample", optuna.samplers.TPESampler._sample)
    assert ours == _answers(algorithm, goals)
    for answer in ours:
        assert len({tuple(sorted(a.items())) for a in answer}) == 8
