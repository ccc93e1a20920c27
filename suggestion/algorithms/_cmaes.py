"""CMA-ES over the numeric parameters, with IPOP/BIPOP restarts, rebuilt from the trials.

The `cmaes` library (Optuna's CMA-ES backend) is driven directly. Optuna's CmaEsSampler
keeps its generation state in trial attributes a restarted server cannot recover, and
Optuna 5 ignores ``restart_strategy``. Here the state is a pure function of the completed
trials taken in completion order: every ``popsize`` of them form one generation. A warm
call feeds only the trials completed since the last call; if the order of the completed
trials ever changes, the state is rebuilt from scratch.

A run that has converged (``should_stop``) restarts from a random mean: with the same
population for ``none``, a growing one for ``ipop``, alternating large and small ones for
``bipop``; a converged CMA-ES could otherwise only repeat its point.

The search runs in the unit cube (each numeric parameter mapped to [0, 1], log scale for
logUniform), so ``sigma`` is in those units; Optuna's default is 1/6. Categorical and
discrete parameters are drawn at random, as Optuna's CmaEsSampler does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from cmaes import CMA

from suggestion.algorithms._base import Algorithm, SpaceNotSupportedError, TrialState, TrialView
from suggestion.algorithms._settings import (
    RANDOM_STATE,
    SettingSpec,
    choice,
    positive_float,
)
from tuner.space import Assignment, Direction, Distribution, ParameterType, SearchSpace

_INC_POPSIZE = 2  # population growth factor per restart (the IPOP paper's recommendation)
_NO_TIME = datetime.max.replace(tzinfo=timezone.utc)
_REDRAWS = 16


class _Run:
    """The CMA-ES state replayed from a sequence of evaluated points."""

    def __init__(self, dim: int, sigma: float, strategy: str, seed: int) -> None:
        self.strategy = strategy
        self.sigma0 = sigma
        self.rng = np.random.RandomState(seed)
        self.default_popsize = 4 + math.floor(3 * math.log(dim))
        self.restarts = 0
        # BIPOP bookkeeping: evaluations spent in the large and small population regimes.
        self.large_evals = self.small_evals = 0
        self.regime = "large"
        self.optimizer = self._new(np.full(dim, 0.5), self.default_popsize, sigma)
        self.batch: list[tuple[np.ndarray, float]] = []

    def _new(self, mean: np.ndarray, popsize: int, sigma: float) -> CMA:
        dim = len(mean)
        bounds = np.tile([0.0, 1.0], (dim, 1))
        return CMA(
            mean=mean,
            sigma=sigma,
            bounds=bounds,
            seed=int(self.rng.randint(1, 2**31 - 1)),
            population_size=popsize,
        )

    def feed(self, x: np.ndarray, loss: float) -> None:
        self.batch.append((x, loss))
        if len(self.batch) < self.optimizer.population_size:
            return
        batch, self.batch = self.batch, []
        try:
            # Points that were not drawn from this distribution (a repeat replaced by a
            # random point, trials from before a restart) can blow the update up; such a
            # run is restarted instead of left to produce NaNs.
            with np.errstate(all="ignore"):
                self.optimizer.tell(batch)
                broken = not np.all(np.isfinite(self.optimizer.mean))
                stop = broken or self.optimizer.should_stop()
        except (AssertionError, ValueError, np.linalg.LinAlgError):
            stop = True
        if stop:
            self._restart()

    def _restart(self) -> None:
        old = self.optimizer
        self.restarts += 1
        dim = old.dim
        mean = self.rng.uniform(0.0, 1.0, dim)
        if self.strategy == "none":
            popsize, sigma = self.default_popsize, self.sigma0
        elif self.strategy == "ipop":
            popsize, sigma = old.population_size * _INC_POPSIZE, self.sigma0
        else:
            # BIPOP (Hansen 2009): alternate between growing populations and small ones with
            # a random population size and step, whichever regime has spent less so far.
            spent = old.population_size * old.generation
            if self.regime == "large":
                self.large_evals += spent
            else:
                self.small_evals += spent
            large = self.default_popsize * _INC_POPSIZE ** (self.restarts)
            if self.small_evals < self.large_evals:
                self.regime = "small"
                factor = (large / self.default_popsize) ** (self.rng.uniform() ** 2)
                popsize = max(2, math.floor(self.default_popsize * factor))
                sigma = self.sigma0 * 10 ** (-2 * self.rng.uniform())
            else:
                self.regime = "large"
                popsize, sigma = large, self.sigma0
        self.optimizer = self._new(mean, popsize, sigma)


class CMAES(Algorithm):
    """CMA-ES. Settings (Katib's): ``sigma`` (initial step in unit-cube coordinates, default
    1/6), ``restart_strategy`` none|ipop|bipop (default none: restarts after convergence
    keep the population size), ``random_state``.

    Needs at least two int or double parameters (as in Katib); honours uniform and
    logUniform, refuses normal and logNormal.
    """

    name = "cmaes"
    settings_spec = (
        SettingSpec("sigma", positive_float, 1 / 6),
        SettingSpec(
            "restart_strategy", choice("none", "ipop", "bipop", aliases={"None": "none"}), "none"
        ),
        RANDOM_STATE,
    )

    @classmethod
    def check_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> None:
        numeric = [
            p for p in space.parameters if p.type in (ParameterType.INT, ParameterType.DOUBLE)
        ]
        for p in numeric:
            if p.distribution in (Distribution.NORMAL, Distribution.LOG_NORMAL):
                raise SpaceNotSupportedError(
                    p.name,
                    f"distribution {p.distribution.value} is not supported by cmaes (CMA-ES"
                    " has no prior); use uniform or logUniform, or the random or sobol"
                    " algorithm",
                )
        if len(numeric) < 2:
            raise SpaceNotSupportedError(
                None,
                f"cmaes needs at least two int or double parameters, found {len(numeric)}"
                f" ({', '.join(p.name for p in numeric) or 'none'}); use tpe for smaller"
                " spaces",
            )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._numeric = tuple(c for c in self.points.coordinates if c.is_numeric)
        self._lists = tuple(c for c in self.points.coordinates if c.is_list)
        self._run: _Run | None = None
        self._fed: list[str] = []

    def _new_run(self) -> _Run:
        return _Run(
            len(self._numeric),
            self.settings["sigma"],
            self.settings["restart_strategy"],
            self.seed_for(0, salt=5),
        )

    def _update(self, trials: Sequence[TrialView]) -> _Run:
        completed = [
            (t.completed_at or _NO_TIME, i, t)
            for i, t in enumerate(trials)
            if t.state is TrialState.COMPLETED
        ]
        ordered = [t for _, _, t in sorted(completed, key=lambda e: (e[0], e[1]))]
        names = [t.name for t in ordered]
        if self._run is None or names[: len(self._fed)] != self._fed:
            self._run, self._fed = self._new_run(), []
        for t in ordered[len(self._fed) :]:
            x = np.array([c.encode(t.assignment[c.name]) for c in self._numeric])
            assert t.value is not None
            self._run.feed(x, -t.value if self.goal is Direction.MAXIMIZE else t.value)
            self._fed.append(t.name)
        return self._run

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        run = self._update(trials)
        # Reseeding from the request keeps the draws independent of how many calls this
        # instance served (a restarted server draws the same points).
        run.optimizer.reseed_rng(self.seed_for(len(trials)))
        rng = self.rng_for(len(trials), salt=6)
        used = self.points.used_keys(t.assignment for t in trials)
        proposals: list[Assignment] = []
        for _ in range(count):
            # On a grid several draws can round to one point: draw again before `suggest`
            # falls back to a random point, which would be an outlier for the next update.
            for _attempt in range(_REDRAWS):
                point = self._draw(run, rng)
                key = self.points.key(point)
                if key not in used:
                    break
            used.add(key)
            proposals.append(point)
        return proposals

    def _draw(self, run: _Run, rng: np.random.Generator) -> Assignment:
        x = run.optimizer.ask()
        point: Assignment = {c.name: c.decode(u) for c, u in zip(self._numeric, x, strict=True)}
        for c in self._lists:
            point[c.name] = c.decode(float(rng.random()))
        return point
