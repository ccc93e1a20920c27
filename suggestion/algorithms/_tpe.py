"""TPE and multivariate TPE: Optuna's TPESampler, run by `_parzen` or through a study.

For one objective past the start-up trials, `_parzen` (Optuna's algorithm on one array of
the trials) answers; otherwise Optuna's sampler on an in-memory study. The study mirrors
the request's trials (completed ones with their value, running ones as RUNNING so the
constant liar keeps new points away from them). A warm call only adds the trials it has
not seen and updates the ones whose state changed. Points asked for a reply are marked
FAIL afterwards: the next request brings them back as real trials under their own names,
and TPE ignores failed trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers._tpe.sampler import (
    _split_trials,
    default_gamma,
    default_gamma_multiobjective,
)
from optuna.trial import TrialState as OptunaState
from optuna.trial import create_trial

from suggestion.algorithms import _parzen, _parzen_estimator
from suggestion.algorithms._base import (
    Algorithm,
    SettingsError,
    SpaceNotSupportedError,
    TrialState,
    TrialView,
)
from suggestion.algorithms._points import Key
from suggestion.algorithms._settings import (
    RANDOM_STATE,
    RuleViolationError,
    SettingSpec,
    integer,
    positive_float,
)
from suggestion.algorithms._table import TrialTable
from suggestion.algorithms._unit import Coordinate
from tuner.space import Assignment, Direction, Distribution, SearchSpace

_HONOURED = (Distribution.UNIFORM, Distribution.LOG_UNIFORM)

# hyperopt's cap on the number of "good" trials (its ``linear_forgetting``, 25).
_HYPEROPT_MAX_GOOD = 25


def _open_unit_interval(text: str) -> float:
    rule = "is not a number in the open interval (0, 1)"
    try:
        value = float(text.strip())
    except ValueError as e:
        raise RuleViolationError(rule) from e
    if not 0 < value < 1:
        raise RuleViolationError(rule)
    return value


class _HyperoptGamma:
    """hyperopt's split of ``n`` completed trials into good and bad, as Optuna's ``gamma``:
    ``min(ceil(gamma * sqrt(n)), 25)`` good ones (picklable, unlike a lambda)."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma

    def __call__(self, n: int) -> int:
        return min(math.ceil(self.gamma * math.sqrt(n)), _HYPEROPT_MAX_GOOD)


# Katib's default configuration serves tpe with hyperopt, whose settings are these (with
# its validator's rules); Katib YAML written for it runs unchanged.
HYPEROPT_SETTINGS = (
    SettingSpec("gamma", _open_unit_interval, None),
    SettingSpec("prior_weight", positive_float, None),
    SettingSpec("n_EI_candidates", integer(minimum=1), None),
)


def optuna_distribution(c: Coordinate) -> BaseDistribution:
    """The Optuna distribution whose samples, snapped by `Coordinate.snap`, cover ``c``.

    Optuna refuses a log scale with a step, so a stepped log parameter is sampled on its
    continuous log scale and snapped to the grid afterwards.
    """
    if c.is_list:
        return CategoricalDistribution(list(c.values))
    log = c.distribution is Distribution.LOG_UNIFORM
    if c.is_int:
        top = c.value_at(c.size - 1)  # type: ignore[operator]
        step = 1 if log else int(c.step)
        return IntDistribution(int(c.lo), int(top), log=log, step=step)
    if c.size is not None and not log:
        top = float(c.value_at(c.size - 1))
        return FloatDistribution(c.lo, top, step=c.step)
    return FloatDistribution(c.lo, c.hi, log=log)


def _dimension(d: BaseDistribution) -> _parzen_estimator.Dimension:
    if isinstance(d, CategoricalDistribution):
        return _parzen_estimator.Dimension(choices=len(d.choices))
    assert isinstance(d, (FloatDistribution, IntDistribution))
    return _parzen_estimator.Dimension(d.low, d.high, float(d.step or 0.0), d.log)


class _StudyOwnedTrial(optuna.trial.FrozenTrial):
    """A trial built for one study and used nowhere else: the in-memory storage keeps it
    as it is instead of deep-copying it (a third of a cold 1000-trial call was those
    copies). The storage still copies a trial before changing it."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _StudyOwnedTrial:
        return self


class _OneCallTPESampler(optuna.samplers.TPESampler):
    """Optuna's TPESampler for the asks of one call, with the same draws and answers.

    Optuna splits the trials into good and bad and reads their parameters again for every
    parameter of every ask (independent TPE: six splits of all trials per ask for six
    parameters). Within one call the finished trials do not change (only the call's own
    asks are added, as RUNNING), so here they are split and read once per call; each ask
    adds the running trials to the bad side, as Optuna's split does, and all its parameters
    share that split. The Parzen estimators, their draws from the sampler's generator and
    the acquisition are Optuna's own.
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution], **options: Any) -> None:
        super().__init__(**options)
        self._space = dict(distributions)
        self._finished: tuple[list[Any], list[Any], dict[int, list[float]]] | None = None
        self._ask: tuple[int, dict[str, np.ndarray], dict[str, np.ndarray]] | None = None

    def _rows(self, trials: Sequence[Any], study: Any) -> dict[int, list[float]] | None:
        rows = {}
        for t in trials:
            params = self._get_params(t, study)
            if not self._space.keys() <= params.keys():
                return None  # a trial without some parameter: Optuna's own path
            rows[t.number] = [d.to_internal_repr(params[k]) for k, d in self._space.items()]
        return rows

    def _observations(
        self, study: Any, trial: Any
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        if self._ask is not None and self._ask[0] == trial.number:
            return self._ask[1], self._ask[2]
        if not self._constant_liar:
            return None
        states = (OptunaState.COMPLETE, OptunaState.PRUNED, OptunaState.RUNNING)
        trials = study._get_trials(deepcopy=False, states=states, use_cache=False)
        running = [t for t in trials if t.state == OptunaState.RUNNING and t.number != trial.number]
        if self._finished is None:
            finished = [t for t in trials if t.state != OptunaState.RUNNING]
            if self._gamma is None:
                self._gamma = (
                    default_gamma if len(study.directions) <= 1 else default_gamma_multiobjective
                )
            below, above = _split_trials(study, finished, self._gamma(len(finished)))
            rows = self._rows(finished, study)
            if rows is None:
                return None
            self._finished = (below, above, rows)
        below, above, rows = self._finished
        more = self._rows(running, study)
        if more is None:
            return None
        above = sorted([*above, *running], key=lambda t: t.number)
        names = list(self._space)

        def columns(side: list[Any], rows: dict[int, list[float]]) -> dict[str, np.ndarray]:
            table = np.asarray([rows[t.number] for t in side], dtype=float).reshape(
                len(side), len(names)
            )
            return {name: table[:, j] for j, name in enumerate(names)}

        self._ask = (trial.number, columns(below, rows), columns(above, {**rows, **more}))
        return self._ask[1], self._ask[2]

    def _sample(
        self, study: Any, trial: Any, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        observed = (
            self._observations(study, trial) if search_space.keys() <= self._space.keys() else None
        )
        if observed is None:
            return super()._sample(study, trial, search_space)
        below = {k: observed[0][k] for k in search_space}
        above = {k: observed[1][k] for k in search_space}
        options = self._parzen_estimator_parameters
        if study._is_multi_objective():
            weights = np.ones(len(next(iter(below.values()))) if below else 0)
            mpe_below = self._parzen_estimator_cls(below, search_space, options, weights)
        else:
            mpe_below = self._parzen_estimator_cls(below, search_space, options)
        mpe_above = self._parzen_estimator_cls(above, search_space, options)
        samples = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acquisition = self._compute_acquisition_func(samples, mpe_below, mpe_above)
        chosen = optuna.samplers.TPESampler._compare(samples, acquisition)
        return {k: d.to_external_repr(chosen[k]) for k, d in search_space.items()}


class TPE(Algorithm):
    """Optuna's TPESampler (independent), with Katib's settings and constant liar on.

    Settings: ``n_startup_trials`` (default 10), ``n_ei_candidates`` (default 24),
    ``random_state`` (Katib's Optuna names), and Katib's hyperopt names: ``n_EI_candidates``
    (the same as ``n_ei_candidates``; give one of the two), ``gamma`` (0 < gamma < 1:
    hyperopt's split, ``min(ceil(gamma * sqrt(n)), 25)`` of ``n`` completed trials are the
    good ones; unset: Optuna's default split) and ``prior_weight`` (> 0, Optuna's
    ``prior_weight``, default 1.0). Honours uniform and logUniform; normal and logNormal
    are refused. With several objectives the study has one direction per objective and
    Optuna's TPE is its multi-objective variant (MOTPE). With one, once
    ``n_startup_trials`` have completed, `_parzen` gives the study's points (to rounding)
    without the study.
    """

    name = "tpe"
    multivariate = False
    multi_objective = True
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("n_startup_trials", integer(minimum=0), 10),
        SettingSpec("n_ei_candidates", integer(minimum=1), 24),
        RANDOM_STATE,
        *HYPEROPT_SETTINGS,
    )

    @classmethod
    def parse(cls, settings: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        parsed = dict(super().parse(settings))
        if "n_EI_candidates" in parsed:
            given = dict(settings)
            if "n_ei_candidates" in given and "n_EI_candidates" in given:
                raise SettingsError(
                    "n_EI_candidates",
                    given["n_EI_candidates"],
                    "is hyperopt's name of n_ei_candidates, which is also given; set one",
                )
            hyperopt = parsed.pop("n_EI_candidates")
            if hyperopt is not None:
                parsed["n_ei_candidates"] = hyperopt
        return parsed

    @classmethod
    def check_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> None:
        for p in space.parameters:
            if p.distribution is not None and p.distribution not in _HONOURED:
                raise cls.refuse(p.name, p.distribution)

    @classmethod
    def refuse(cls, name: str, distribution: Distribution) -> SpaceNotSupportedError:
        return SpaceNotSupportedError(
            name,
            f"distribution {distribution.value} is not supported by {cls.name} (Optuna"
            " samples uniform or log-uniform only); use uniform or logUniform, or the random"
            " or sobol algorithm",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._distributions = {c.name: optuna_distribution(c) for c in self.points.coordinates}
        self._dimensions = [_dimension(d) for d in self._distributions.values()]
        # How `_row` reads each coordinate, in `_parzen`'s order: the coordinate's index, its
        # choices' indices (categorical) or the bounds a double is kept in (as `_params`).
        self._readers: list[tuple[int, dict[Any, int] | None, tuple[float, float]]] = []
        for k in self._dimension_order():
            c = self.points.coordinates[k]
            d = self._distributions[c.name]
            index = {v: i for i, v in enumerate(c.values)} if c.is_list else None
            clamp = (d.low, d.high) if isinstance(d, FloatDistribution) else (-math.inf, math.inf)
            self._readers.append((k, index, clamp))
        # Built by the first call that needs it: `_parzen` answers most calls without one.
        self._has_study = False

    def _new_study(self) -> None:
        """An empty in-memory study with one direction per objective."""
        self._has_study = True
        self._storage = optuna.storages.InMemoryStorage()
        self._study = optuna.create_study(
            storage=self._storage,
            directions=[goal.value for goal in self.goals],
        )
        self._study_id = self._storage.get_study_id_from_name(self._study.study_name)
        # trial name -> (Optuna trial id, state mirrored so far)
        self._mirrored: dict[str, tuple[int, TrialState]] = {}

    def _system_attrs(self, t: TrialView) -> dict[str, Any]:
        """What a mirrored trial carries for the sampler besides its values (none for TPE)."""
        return {}

    def _sampler(self, n_trials: int) -> optuna.samplers.BaseSampler:
        # A fresh sampler seeded from the request: the draws do not depend on how many
        # calls this instance served, so a restarted server answers the same.
        options: dict[str, Any] = {}
        if self.settings.get("gamma") is not None:
            options["gamma"] = _HyperoptGamma(self.settings["gamma"])
        if self.settings.get("prior_weight") is not None:
            options["prior_weight"] = self.settings["prior_weight"]
        with warnings.catch_warnings():
            # Optuna 4.9 deprecated both (removal planned for 6.0; pyproject keeps < 6):
            # the user asked for them by Katib's names, so no warning on every call.
            warnings.filterwarnings(
                "ignore", r"`(gamma|prior_weight)` has been deprecated", FutureWarning
            )
            return _OneCallTPESampler(
                self._distributions,
                n_startup_trials=self.settings["n_startup_trials"],
                n_ei_candidates=self.settings["n_ei_candidates"],
                seed=self.seed_for(n_trials),
                multivariate=self.multivariate,
                constant_liar=True,
                **options,
            )

    def _sync(self, trials: Sequence[TrialView]) -> None:
        seen: set[str] = set()
        for t in trials:
            seen.add(t.name)
            known = self._mirrored.get(t.name)
            if known is None:
                if t.state is not TrialState.FAILED:
                    self._mirrored[t.name] = (self._add(t), t.state)
            elif known[1] is TrialState.PENDING and t.state is not TrialState.PENDING:
                self._finish(known[0], t)
                self._mirrored[t.name] = (known[0], t.state)
        for name in [n for n in self._mirrored if n not in seen]:
            trial_id, state = self._mirrored.pop(name)
            if state is TrialState.PENDING:
                # A pending trial the controller no longer reports: forget its point.
                self._storage.set_trial_state_values(trial_id, OptunaState.FAIL)

    def _add(self, t: TrialView) -> int:
        params = self._params(t.assignment)
        if t.state is TrialState.COMPLETED:
            frozen = create_trial(
                state=OptunaState.COMPLETE,
                values=list(t.values),
                params=params,
                distributions=dict(self._distributions),
                system_attrs=self._system_attrs(t),
            )
        else:
            frozen = create_trial(
                state=OptunaState.RUNNING,
                params=params,
                distributions=dict(self._distributions),
                system_attrs=self._system_attrs(t),
            )
        frozen.__class__ = _StudyOwnedTrial  # made for the study alone: stored, not copied
        return self._storage.create_new_trial(self._study_id, template_trial=frozen)

    def _finish(self, trial_id: int, t: TrialView) -> None:
        if t.state is TrialState.COMPLETED:
            assert t.values
            self._storage.set_trial_state_values(trial_id, OptunaState.COMPLETE, list(t.values))
        else:
            self._storage.set_trial_state_values(trial_id, OptunaState.FAIL)

    def _params(self, assignment: Assignment) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for c in self.points.coordinates:
            value = c.canonical(assignment[c.name])
            dist = self._distributions[c.name]
            if isinstance(dist, FloatDistribution):
                # A stepped double's grid top can sit a hair under max; keep it inside.
                value = min(max(float(value), dist.low), dist.high)
            params[c.name] = value
        return params

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        fast = self._propose_columnar(trials, count)
        if fast is not None:
            return fast
        if not self._has_study:
            self._new_study()
        self._sync(trials)
        self._study.sampler = self._sampler(len(trials))
        asked = []
        proposals: list[Assignment] = []
        for _ in range(count):
            trial = self._study.ask(fixed_distributions=self._distributions)
            asked.append(trial.number)
            proposals.append(
                {c.name: self._value(c, trial.params[c.name]) for c in self.points.coordinates}
            )
        for number in asked:
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
            self._storage.set_trial_state_values(trial_id, OptunaState.FAIL)
        return proposals

    def _columnar(self) -> bool:
        """Whether `_parzen` answers for this experiment: one objective and no parameter
        with a single value (Optuna samples those apart). Otherwise the study answers."""
        return len(self.goals) == 1 and not any(d.single() for d in self._distributions.values())

    def _propose_columnar(self, trials: Sequence[TrialView], count: int) -> list[Assignment] | None:
        """The same points as the study's asks (to rounding: see `_parzen`), from one array
        of the trials; None where the study must answer (start-up trials, several
        objectives, a non-finite value)."""
        if not self._columnar():
            return None
        if isinstance(trials, TrialTable):
            states, objectives = trials.states, trials.values
        else:
            states, objectives = [t.state for t in trials], [t.values for t in trials]
        kept = [i for i, s in enumerate(states) if s is not TrialState.FAILED]
        pending = np.fromiter(
            (states[i] is TrialState.PENDING for i in kept), dtype=bool, count=len(kept)
        )
        if len(kept) - int(pending.sum()) < max(self.settings["n_startup_trials"], 1):
            return None
        values = np.fromiter(
            (objectives[i][0] if objectives[i] else math.nan for i in kept),
            dtype=float,
            count=len(kept),
        )
        if not np.isfinite(values[~pending]).all():
            return None
        order = self._dimension_order()
        every = self.points.trial_keys(trials)
        rows = self._rows([every[i] for i in kept])
        gamma = self.settings.get("gamma")
        points = _parzen.propose(
            rows,
            np.nan_to_num(values),
            pending,
            [self._dimensions[k] for k in order],
            count=count,
            maximize=self.goal is Direction.MAXIMIZE,
            gamma=_parzen.default_gamma if gamma is None else _HyperoptGamma(gamma),
            multivariate=self.multivariate,
            options=_parzen_estimator.Options(
                n_ei_candidates=self.settings["n_ei_candidates"],
                prior_weight=self.settings.get("prior_weight") or 1.0,
            ),
            rng=np.random.RandomState(self.seed_for(len(trials))),
        )
        coordinates = self.points.coordinates
        proposals = []
        for point in points:
            raw = dict(zip((coordinates[k].name for k in order), point.tolist(), strict=True))
            proposals.append(
                {c.name: self._value(c, self._external(c, raw[c.name])) for c in coordinates}
            )
        return proposals

    def _dimension_order(self) -> list[int]:
        """Coordinate indices in Optuna's sampling order: ask order (the coordinates')
        for independent TPE, sorted by name for multivariate (Optuna's search space)."""
        names = [c.name for c in self.points.coordinates]
        order = list(range(len(names)))
        return sorted(order, key=lambda k: names[k]) if self.multivariate else order

    def _rows(self, keys: Sequence[Key]) -> np.ndarray:
        """The points of keys (canonical values, `PointSet.key`) in `_parzen`'s
        representation (as `_params` gives them to the study), columns in
        `_dimension_order`."""
        order = [k for k, _, _ in self._readers]
        if all(index is None for _, index, _ in self._readers):
            table = np.array(keys, dtype=float).reshape(len(keys), len(order))[:, order]
            low, high = (np.array([r[2][i] for r in self._readers]) for i in (0, 1))
            return np.clip(table, low, high)
        rows = [
            [
                float(index[key[k]]) if index is not None else min(max(float(key[k]), lo), hi)
                for k, index, (lo, hi) in self._readers
            ]
            for key in keys
        ]
        return np.array(rows, dtype=float).reshape(len(keys), len(order))

    @staticmethod
    def _external(c: Coordinate, internal: float) -> Any:
        if c.is_list:
            return c.values[int(internal)]
        return int(internal) if c.is_int else float(internal)

    @staticmethod
    def _value(c: Coordinate, raw: Any) -> Any:
        if c.is_list:
            return raw
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ValueError(f"Optuna proposed {raw!r} for parameter {c.name!r}")
        return c.snap(float(raw))


class MultivariateTPE(TPE):
    """TPE modelling the parameters jointly (``TPESampler(multivariate=True)``)."""

    name = "multivariate-tpe"
    multivariate = True
    # Katib serves multivariate-tpe with Optuna only: its names only.
    settings_spec = tuple(s for s in TPE.settings_spec if s not in HYPEROPT_SETTINGS)
