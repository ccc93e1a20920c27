"""tpe and multivariate-tpe: the columnar TPE (`_parzen`) answers as Optuna's TPESampler
driven through a study does (to rounding), and the study path, still used for several
objectives and the start-up trials, splits and reads the trials once per call with answers
exactly those of Optuna's own TPESampler."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import optuna
import pytest

from suggestion.algorithms import TrialState, TrialView, _parzen_estimator, _tpe
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
# Every kind of dimension `_parzen` has: continuous, log, int, categorical, stepped double,
# log int (a stepped log scale).
WIDE = SearchSpace(
    (
        *SPACE.parameters,
        Parameter.from_wire("s", "double", min="0", max="2", step="0.25"),
        Parameter.from_wire("b", "int", min="2", max="64", distribution="logUniform"),
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


def _answers(
    algorithm: str,
    goals: int,
    *,
    space: SearchSpace = SPACE,
    trials: list[TrialView] | None = None,
    settings: tuple[tuple[str, str], ...] = (("random_state", "7"),),
    maximize: bool = False,
) -> list[list[dict[str, Any]]]:
    engine = SuggestionEngine()
    trials = _history(goals) if trials is None else trials
    directions = (Direction.MINIMIZE, Direction.MAXIMIZE)[int(maximize) : int(maximize) + goals]
    answers = []
    for call in range(2):  # cold, then warm with the first call's points running
        result = engine.suggest(
            SuggestionRequest(
                experiment="e",
                algorithm=algorithm,
                settings=settings,
                space=space,
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
    monkeypatch.setattr(_tpe.TPE, "_columnar", lambda self: False)
    ours = _answers(algorithm, goals)
    assert shared and all(shared)  # every ask went through the shared split
    monkeypatch.setattr(_tpe._OneCallTPESampler, "_sample", optuna.samplers.TPESampler._sample)
    assert ours == _answers(algorithm, goals)
    for answer in ours:
        assert len({tuple(sorted(a.items())) for a in answer}) == 8


def _wide_history(n: int) -> list[TrialView]:
    rng = random.Random(n)
    trials = []
    for i in range(n):
        point: dict[str, float | int | str] = {
            "x": rng.random(),
            "lr": 10 ** rng.uniform(-4, 0),
            "n": rng.randint(1, 20),
            "act": rng.choice(["relu", "tanh", "gelu"]),
            "s": rng.randint(0, 8) * 0.25,
            "b": rng.randint(2, 64),
        }
        if i % 10 == 9:
            trials.append(TrialView(f"t{i}", point, TrialState.PENDING))
        elif i % 17 == 5:
            trials.append(TrialView(f"t{i}", point, TrialState.FAILED))
        else:
            value = float(point["x"]) + int(point["n"]) / 20 + rng.random()
            trials.append(TrialView(f"t{i}", point, TrialState.COMPLETED, value))
    return trials


def _same(ours: list[list[dict[str, Any]]], study: list[list[dict[str, Any]]]) -> bool:
    def equal(a: Any, b: Any) -> bool:
        if isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return bool(a == b)

    return len(ours) == len(study) and all(
        len(x) == len(y)
        and all(
            p.keys() == q.keys() and all(equal(p[k], q[k]) for k in q)
            for p, q in zip(x, y, strict=True)
        )
        for x, y in zip(ours, study, strict=True)
    )


@pytest.mark.parametrize("algorithm", ["tpe", "multivariate-tpe"])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("n", [30, 300])
@pytest.mark.parametrize(
    "settings",
    [
        (("random_state", "7"),),
        (("random_state", "3"), ("n_startup_trials", "5"), ("n_ei_candidates", "7")),
    ],
)
def test_the_columnar_tpe_answers_as_the_study_does(
    algorithm: str,
    maximize: bool,
    n: int,
    settings: tuple[tuple[str, str], ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trials = _wide_history(n)
    asks = []

    def no_study(self: Any, study: Any) -> None:
        asks.append(study)

    monkeypatch.setattr(optuna.Study, "ask", no_study)
    ours = _answers(algorithm, 1, space=WIDE, trials=trials, settings=settings, maximize=maximize)
    assert not asks  # the study was never asked
    monkeypatch.undo()
    monkeypatch.setattr(_tpe.TPE, "_columnar", lambda self: False)
    study = _answers(algorithm, 1, space=WIDE, trials=trials, settings=settings, maximize=maximize)
    assert _same(ours, study)
    for answer in ours:
        assert len({tuple(sorted(a.items())) for a in answer}) == 8


@pytest.mark.parametrize("setting", [("gamma", "0.5"), ("prior_weight", "3")])
def test_hyperopts_settings_act_alike_in_the_columnar_tpe(
    setting: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trials = _wide_history(120)
    settings = (("random_state", "5"), setting)
    ours = _answers("tpe", 1, space=WIDE, trials=trials, settings=settings)
    monkeypatch.setattr(_tpe.TPE, "_columnar", lambda self: False)
    assert _same(ours, _answers("tpe", 1, space=WIDE, trials=trials, settings=settings))
    default = _answers("tpe", 1, space=WIDE, trials=trials)
    assert not _same(ours, default)


@pytest.mark.parametrize(("n", "decimals"), [(5, 2), (40, 2), (300, 2), (300, None)])
def test_a_constant_liar_estimator_built_from_the_previous_one_is_the_fresh_one(
    n: int, decimals: int | None
) -> None:
    # `_parzen` builds each ask's bad-side estimator from the previous ask's (the same rows
    # and one more): it must equal the estimator built from all the rows, bit for bit, also
    # where the magic clip's floor moves with the number of rows (n < 98), on a log scale
    # and where rows repeat values (ties in the bandwidths' sort; without them, from
    # n = 98 on, only the new row's neighbours are computed again).
    rng = np.random.default_rng(n)
    dims = [
        _parzen_estimator.Dimension(0.0, 1.0),
        _parzen_estimator.Dimension(1e-4, 1.0, log=True),
        _parzen_estimator.Dimension(0.0, 2.0, step=0.25),
        _parzen_estimator.Dimension(choices=3),
    ]
    first = rng.random(n + 3)
    obs = np.column_stack(
        [
            first if decimals is None else np.round(first, decimals),  # repeated values
            10 ** rng.uniform(-4, 0, n + 3),
            rng.integers(0, 9, n + 3) * 0.25,
            rng.integers(0, 3, n + 3).astype(float),
        ]
    )
    options = _parzen_estimator.Options()
    earlier = _parzen_estimator.Mixture(obs[:n], dims, options)
    for m in range(n + 1, n + 4):
        fresh = _parzen_estimator.Mixture(obs[:m], dims, options)
        built = earlier.grown(obs[m - 1])
        for name in ("weights", "mus", "sigmas", "log_mass", "log_norm", "scale", "shift", "order"):
            assert np.array_equal(getattr(built, name), getattr(fresh, name)), name
        x = fresh.sample(
            rng.integers(0, len(fresh.weights), (len(dims), 24)),
            [rng.random(24) for _ in dims],
        )
        for joint in (False, True):
            assert np.array_equal(built.log_pdf(x, joint=joint), fresh.log_pdf(x, joint=joint))
        earlier = built
