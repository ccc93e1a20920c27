"""Bayesian optimisation with Katib's settings and defaults.

``base_estimator=GP`` (the default) runs our own GP path (`_gp_proposer`): scikit-optimize's
model and acquisition, fitted once per call and answering cold as warm. RF, ET and GBRT run
scikit-optimize's `Optimizer`. Unlike Katib (which forces a log-uniform prior on every
double), each parameter keeps its own distribution: uniform -> ``prior="uniform"``,
logUniform -> ``prior="log-uniform"``; normal and logNormal are refused. On the
scikit-optimize path a warm call tells the optimizer only the trials completed since the
last call; running trials are told as "constant liar" points (the best value so far) on a
copy, so new points keep away from them.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from skopt import Optimizer
from skopt.learning import GradientBoostingQuantileRegressor
from skopt.space import Categorical, Dimension, Integer, Real
from threadpoolctl import ThreadpoolController

from suggestion.algorithms import _gp_proposer
from suggestion.algorithms._base import (
    Algorithm,
    SettingsError,
    SpaceNotSupportedError,
    TrialState,
    TrialView,
)
from suggestion.algorithms._settings import (
    RANDOM_STATE,
    RuleViolationError,
    SettingSpec,
    choice,
    integer,
)
from suggestion.algorithms._unit import Coordinate
from tuner.space import Assignment, Direction, Distribution, SearchSpace, Value


class _GBRTQuantiles(GradientBoostingQuantileRegressor):
    """scikit-optimize 0.10.2's GBRT surrogate, repaired for current scikit-learn and numpy.

    0.10.2 is the last release. Its class lists ``BaseEstimator`` before ``RegressorMixin``,
    so scikit-learn >= 1.6 (tags API) no longer sees a regressor and `Optimizer` refuses
    "GBRT"; and its ``predict(return_std=True)`` calls ``np.in1d``, removed in numpy 2.4.
    This subclass fixes both and is used instead of the "GBRT" string.
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        return tags

    def predict(self, X: Any, return_std: bool = False, return_quantiles: bool = False) -> Any:
        if return_std and not return_quantiles:
            by_quantile = dict(zip(self.quantiles, self.regressors_, strict=True))
            low, mid, high = (by_quantile[q].predict(X) for q in (0.16, 0.5, 0.84))
            return mid, (high - low) / 2.0
        return super().predict(X, return_std=False, return_quantiles=return_quantiles)


def _acq_func(text: str) -> str:
    if text in ("EIps", "PIps"):
        raise RuleViolationError(
            "needs each trial's evaluation time as a second objective, which trials do not"
            " report; use gp_hedge, EI, LCB or PI"
        )
    return choice("gp_hedge", "EI", "LCB", "PI")(text)


class BayesianOptimization(Algorithm):
    """scikit-optimize's `Optimizer`.

    Settings (Katib's): ``base_estimator`` GP|RF|ET|GBRT (default GP), ``n_initial_points``
    (default 10), ``acq_func`` gp_hedge|EI|LCB|PI (default gp_hedge), ``acq_optimizer``
    auto|sampling|lbfgs (default auto; lbfgs needs GP), ``random_state``.
    """

    name = "bayesianoptimization"
    settings_spec = (
        SettingSpec("base_estimator", choice("GP", "RF", "ET", "GBRT"), "GP"),
        SettingSpec("n_initial_points", integer(minimum=0), 10),
        SettingSpec("acq_func", _acq_func, "gp_hedge"),
        SettingSpec("acq_optimizer", choice("auto", "sampling", "lbfgs"), "auto"),
        RANDOM_STATE,
    )

    @classmethod
    def parse(cls, settings: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        parsed = super().parse(settings)
        if parsed["acq_optimizer"] == "lbfgs" and parsed["base_estimator"] != "GP":
            raise SettingsError(
                "acq_optimizer",
                "lbfgs",
                f"needs base_estimator GP (got {parsed['base_estimator']}, which has no"
                " gradients); use auto or sampling",
            )
        return parsed

    @classmethod
    def check_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> None:
        for p in space.parameters:
            if p.distribution in (Distribution.NORMAL, Distribution.LOG_NORMAL):
                raise SpaceNotSupportedError(
                    p.name,
                    f"distribution {p.distribution.value} is not supported by"
                    f" {cls.name} (scikit-optimize has uniform and log-uniform priors"
                    " only); use uniform or logUniform, or the random or sobol algorithm",
                )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        coords = self.points.coordinates
        # Single-valued parameters are constants, not dimensions (skopt refuses low == high).
        self._constants = {c.name: c.value_at(0) for c in coords if c.size == 1}
        self._modelled = tuple(c for c in coords if c.name not in self._constants)
        self._optimizer: Optimizer | None = None
        self._told: set[str] = set()
        self._encoding = _gp_proposer.UnitEncoding(self._modelled)

    def _new_optimizer(self) -> Optimizer:
        estimator: Any = self.settings["base_estimator"]
        if estimator == "GBRT":
            estimator = _GBRTQuantiles(
                base_estimator=GradientBoostingRegressor(n_estimators=30, loss="quantile"),
                random_state=self.seed_for(0, salt=3),
            )
        return Optimizer(
            [_dimension(c) for c in self._modelled],
            base_estimator=estimator,
            n_initial_points=self.settings["n_initial_points"],
            acq_func=self.settings["acq_func"],
            acq_optimizer=self.settings["acq_optimizer"],
            random_state=self.seed_for(0, salt=4),
        )

    def _x(self, assignment: Assignment) -> list[Value]:
        x: list[Value] = []
        for c in self._modelled:
            value = c.canonical(assignment[c.name])
            x.append(value if c.is_list else min(max(value, c.lo), c.hi))
        return x

    def _y(self, value: float) -> float:
        return -value if self.goal is Direction.MAXIMIZE else value

    def _update(self, trials: Sequence[TrialView]) -> Optimizer:
        completed = [t for t in trials if t.state is TrialState.COMPLETED]
        names = {t.name for t in completed}
        if self._optimizer is None or not self._told <= names:
            self._optimizer, self._told = self._new_optimizer(), set()
        new = [t for t in completed if t.name not in self._told]
        if new:
            self._optimizer.tell(
                [self._x(t.assignment) for t in new],
                [self._y(t.value) for t in new],  # type: ignore[arg-type]
            )
            self._told |= {t.name for t in new}
        return self._optimizer

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        if not self._modelled:
            return [dict(self._constants)]
        # The matrices are tiny (one row per trial): multi-threaded BLAS only adds overhead
        # (2-3x slower fits measured on 2 cores), and requests already run in parallel.
        with _threadpools().limit(limits=1), warnings.catch_warnings():
            # scikit-optimize warns whenever its next point was already evaluated; `suggest`
            # replaces such repeats anyway. (catch_warnings is process-wide: a race between
            # threads can at worst leave this one narrow filter installed.)
            warnings.filterwarnings("ignore", "The objective has been evaluated", UserWarning)
            if self.settings["base_estimator"] == "GP":
                return self._propose_gp(trials, count)
            return self._propose_limited(trials, count)

    def _propose_gp(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        completed = [
            (t.assignment, self._y(t.value))  # type: ignore[arg-type]
            for t in trials
            if t.state is TrialState.COMPLETED
        ]
        pending = [t.assignment for t in trials if t.state is TrialState.PENDING]
        # As scikit-optimize: random points until n_initial_points were told, lies included.
        initial = max(0, self.settings["n_initial_points"] - len(completed) - len(pending))
        modelled = count - min(initial, count)
        if not completed or modelled <= 0:
            return []  # `suggest` fills with random points, honouring the distributions
        chosen = _gp_proposer.propose(
            self._encoding,
            completed,
            pending,
            modelled,
            acq_func=self.settings["acq_func"],
            acq_optimizer=self.settings["acq_optimizer"],
            rng=self.rng_for(len(trials), salt=5),
            check=self.checkpoint,
        )
        return [{**self._constants, **point} for point in chosen]

    def _propose_limited(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        optimizer = self._update(trials)
        self.checkpoint()
        if not optimizer.yi:
            return []  # nothing to model yet: `suggest` fills with random points
        pending = [t for t in trials if t.state is TrialState.PENDING]
        seed = self.seed_for(len(trials))
        if pending:
            optimizer = optimizer.copy(random_state=seed)
            lie = min(optimizer.yi)
            optimizer.tell([self._x(t.assignment) for t in pending], [lie] * len(pending))
        else:
            optimizer.rng = np.random.RandomState(seed)
        xs = optimizer.ask(n_points=count, strategy="cl_min") if count > 1 else [optimizer.ask()]
        return [self._assignment(x) for x in xs]

    def _assignment(self, x: Sequence[Any]) -> Assignment:
        point: Assignment = dict(self._constants)
        for c, raw in zip(self._modelled, x, strict=True):
            point[c.name] = _plain(raw) if c.is_list else c.snap(float(raw))
        return point


@functools.cache
def _threadpools() -> ThreadpoolController:
    # Finding the BLAS libraries scans every loaded module: do it once, not per call.
    return ThreadpoolController()


def _dimension(c: Coordinate) -> Dimension:
    if c.is_list:
        return Categorical(list(c.values), name=c.name)
    prior = "log-uniform" if c.distribution is Distribution.LOG_UNIFORM else "uniform"
    top = c.value_at(c.size - 1) if c.size is not None else c.hi
    if c.is_int:
        return Integer(int(c.lo), int(top), prior=prior, name=c.name)
    return Real(c.lo, float(top), prior=prior, name=c.name)


def _plain(raw: Any) -> Value:
    """numpy scalars (np.str_, np.int64...) from scikit-optimize as plain Python values."""
    return raw.item() if isinstance(raw, np.generic) else raw
