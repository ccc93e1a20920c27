"""The experiment page's charts as plotly figure JSON, drawn by `optuna.visualization` over an
in-memory Optuna study made from the stored trials (own plotly code nowhere: where a figure
needs tuner's view, e.g. early-stopped trials counting as results, the study is built so).

Figures that cannot be drawn yet (too few finished trials, one parameter) come back as
`Unavailable` with the reason, which the page shows in place of the chart.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tuner.dashboard._data import ExperimentView
from tuner.space import Parameter, ParameterType
from tuner.store import Observation, TrialRecord, TrialStatus

log = logging.getLogger(__name__)

CONTOUR_PARAMS = 3
"""Contour plots are drawn for at most this many parameters (a matrix of n*(n-1) plots)."""

CHART_TRIALS = 2_000
"""Charts other than the optimisation history draw at most this many trials (evenly spaced in
creation order, the best one always among them): Optuna's parallel coordinates and timeline
take half a minute for 10,000 trials, and a browser chokes on their megabytes of points."""

IMPORTANCE_TRIALS = 500
"""fANOVA's forest is fitted on at most this many finished trials (minutes for 10,000)."""

INTERMEDIATE_TRIALS = 100
"""Intermediate values are read for at most this many trials, the most recent ones, so a page
of a 10,000-trial experiment does not read 10,000 observation logs."""

FIGURES = (
    "history",
    "importances",
    "parallel",
    "slice",
    "contour",
    "intermediate",
    "timeline",
    "pareto",
)


class Unavailable(Exception):
    """A figure that cannot be drawn from the data there is; the message says why."""


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "minimize" | "maximize"


def objectives(view: ExperimentView) -> list[Objective]:
    """The experiment's objectives: Katib's one, then tuner's ``additionalObjectives``; the
    Pareto front is drawn when there are several."""
    stored = view.record.objectives
    if len(stored) < 2:
        return [Objective(view.metric_name, view.goal_type)]
    return [Objective(name, direction.value) for name, direction in stored]


def distribution(parameter: Parameter) -> BaseDistribution:
    """Optuna's distribution for a tuner parameter (steps dropped: plots do not need them)."""
    if parameter.type is ParameterType.CATEGORICAL:
        return CategoricalDistribution(list(parameter.values))
    if parameter.type is ParameterType.DISCRETE:
        numbers = [float(v) for v in parameter.values]
        return FloatDistribution(min(numbers), max(numbers))
    low, high = parameter.min, parameter.max
    assert low is not None and high is not None
    if parameter.type is ParameterType.INT:
        return IntDistribution(int(low), int(high), log=parameter.is_log)
    return FloatDistribution(float(low), float(high), log=parameter.is_log)


def _naive(moment: datetime | None) -> datetime | None:
    # Optuna compares trial times with its own naive local `datetime.now()`.
    return None if moment is None else moment.astimezone().replace(tzinfo=None)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _state(trial: TrialRecord, values: list[float] | None, timeline: bool) -> TrialState:
    status = trial.status
    if status is TrialStatus.CREATED:
        return TrialState.WAITING
    if status is TrialStatus.RUNNING:
        return TrialState.RUNNING
    if status is TrialStatus.EARLY_STOPPED and timeline:
        return TrialState.PRUNED
    if status.counts_for_best() and values is not None:
        return TrialState.COMPLETE
    return TrialState.FAIL


_EPOCH = datetime(1970, 1, 1)


class _SharedTrial(FrozenTrial):
    """A FrozenTrial whose copies share its dicts. Optuna's in-memory storage deep-copies each
    trial it is given and each one its `get_trials` returns (6 of the 12 s that 10,000 trials
    took); nothing here or in `optuna.visualization` changes a trial once it is built."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedTrial:
        return copy.copy(self)


class StudyBuilder:
    """Turns stored trials into Optuna `FrozenTrial`s of an in-memory study."""

    def __init__(self, view: ExperimentView, trials: Sequence[TrialRecord]) -> None:
        self.view = view
        self.trials = list(trials)
        self.distributions = {n: distribution(p) for n, p in view.parameters.items()}
        self.skipped = 0

    def study(
        self,
        goals: Sequence[Objective],
        *,
        timeline: bool = False,
        intermediate: dict[str, list[Observation]] | None = None,
    ) -> optuna.Study:
        directions = [
            StudyDirection.MAXIMIZE if g.direction == "maximize" else StudyDirection.MINIMIZE
            for g in goals
        ]
        study = optuna.create_study(directions=directions)
        frozen = []
        for trial in self.trials:
            made = self._frozen(trial, goals, timeline, (intermediate or {}).get(trial.name))
            if made is None:
                self.skipped += 1
            else:
                frozen.append(made)
        study.add_trials(frozen)
        return study

    def _values(self, trial: TrialRecord, goals: Sequence[Objective]) -> list[float] | None:
        values = []
        for goal in goals:
            if goal.name == self.view.metric_name:
                value = trial.objective_value
            else:
                summary = trial.metrics_summary.get(goal.name)
                value = None
                if summary is not None:
                    value = summary.min if goal.direction == "minimize" else summary.max
            if not _finite(value):
                return None
            assert value is not None
            values.append(value)
        return values

    def _frozen(
        self,
        trial: TrialRecord,
        goals: Sequence[Objective],
        timeline: bool,
        observations: list[Observation] | None,
    ) -> FrozenTrial | None:
        values = self._values(trial, goals)
        state = _state(trial, values, timeline)
        params: dict[str, Any] = {}
        distributions: dict[str, BaseDistribution] = {}
        typed = self.view.typed(trial.parameters)
        for name, dist in self.distributions.items():
            if name not in typed:
                continue
            value = typed[name]
            if isinstance(dist, FloatDistribution) and isinstance(value, int):
                value = float(value)
            if not dist._contains(dist.to_internal_repr(value)):
                return None
            params[name] = value
            distributions[name] = dist
        steps: dict[int, float] = {}
        for index, obs in enumerate(observations or ()):
            if obs.metric_name == self.view.metric_name and math.isfinite(obs.value):
                steps[obs.step if obs.step is not None else index] = obs.value
        start = _naive(trial.started_at)
        if state is not TrialState.WAITING and start is None:
            start = _naive(trial.created_at) or _EPOCH
        end = None
        if state.is_finished():
            # create_trial would stamp "now"; the stored times are what the timeline is about.
            end = _naive(trial.completed_at) or start
            if end is not None and start is not None and end < start:
                end = start
        # Built directly rather than by create_trial: the checks above are those of
        # FrozenTrial._validate, which add_trials runs once more.
        return _SharedTrial(
            number=-1,
            trial_id=-1,
            state=state,
            value=None,
            values=values if state is TrialState.COMPLETE else None,
            datetime_start=start if state is not TrialState.WAITING else None,
            datetime_complete=end,
            params=params,
            distributions=distributions,
            user_attrs={"name": trial.name},
            system_attrs={},
            intermediate_values=steps,
        )


Figure = Callable[["Figures"], Any]


def spread(trials: Sequence[TrialRecord], limit: int, keep: str | None) -> list[TrialRecord]:
    """At most `limit` of `trials`, evenly spaced in creation order, with the trial named
    `keep` (the best one) always in."""
    if len(trials) <= limit:
        return list(trials)
    step = len(trials) / limit
    picked = {int(i * step) for i in range(limit)}
    best = next((i for i, t in enumerate(trials) if t.name == keep), None)
    if best is not None and best not in picked:
        picked.discard(max(picked))
        picked.add(best)
    return [trials[i] for i in sorted(picked)]


class Figures:
    """The charts of one experiment at one moment; each is built on first use."""

    def __init__(
        self,
        view: ExperimentView,
        trials: Sequence[TrialRecord],
        observations: Callable[[str], list[Observation]],
        goals: Sequence[Objective] | None = None,
    ) -> None:
        self.view = view
        self.goals = list(goals) if goals is not None else objectives(view)
        self.trials = list(trials)
        self._observations = observations
        self._builder = StudyBuilder(view, self.trials)
        self._study: optuna.Study | None = None
        best = view.record.best_trial_name
        self.sampled = spread(self.trials, CHART_TRIALS, best)
        self._sample_study: optuna.Study | None = None
        # The page asks for its charts at once; a study is built by the first that needs it.
        self._lock = threading.RLock()

    def note(self, kind: str) -> str | None:
        """What a chart leaves out, for its caption; None when it shows every trial."""
        if kind == "importances" and len(self.sampled) > IMPORTANCE_TRIALS:
            return f"fitted on {IMPORTANCE_TRIALS:,} of {len(self.trials):,} trials"
        if kind in _SAMPLED and len(self.sampled) < len(self.trials):
            return f"{len(self.sampled):,} of {len(self.trials):,} trials, evenly spaced"
        if kind == "intermediate" and len(self.trials) > INTERMEDIATE_TRIALS:
            return f"the {INTERMEDIATE_TRIALS} most recent trials"
        return None

    @property
    def sample_study(self) -> optuna.Study:
        """Study of the sampled trials (the whole study when nothing was left out)."""
        if len(self.sampled) == len(self.trials):
            return self.study
        with self._lock:
            if self._sample_study is None:
                self._sample_study = StudyBuilder(self.view, self.sampled).study(self.goals[:1])
            return self._sample_study

    @property
    def study(self) -> optuna.Study:
        """Single-objective study of the first objective (most charts are about it)."""
        with self._lock:
            if self._study is None:
                self._study = self._builder.study(self.goals[:1])
            return self._study

    def figure(self, kind: str) -> Any:
        """The plotly figure `kind` (one of FIGURES); raises `Unavailable` or `KeyError`."""
        build = _BUILDERS[kind]
        try:
            return build(self)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            # Optuna refuses some data (e.g. too few trials for fANOVA): say so on the page.
            raise Unavailable(str(e)) from e

    def complete(self, at_least: int = 1, *, sampled: bool = True) -> optuna.Study:
        study = self.sample_study if sampled else self.study
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < at_least:
            raise Unavailable(
                f"needs {at_least} finished trial(s) with a value of"
                f" {self.view.metric_name}; {len(done)} so far"
            )
        return study

    def params(self) -> list[str]:
        names = [n for n in self.view.parameters if n in self._builder.distributions]
        if not names:
            raise Unavailable("the experiment's spec declares no parameter tuner can read")
        return names


def _history(f: Figures) -> Any:
    # Own plotly code over columnar arrays, not plot_optimization_history: the figure needs
    # no study, and Optuna's builds it from per-trial objects and plotly-validated lists
    # (5 s of 10,000 trials' first chart).
    import numpy as np
    import plotly.graph_objects as go

    goal = f.goals[0]
    numbers: list[int] = []
    values: list[float] = []
    for number, trial in enumerate(f.trials):
        got = f._builder._values(trial, [goal])
        if got is not None and trial.status.counts_for_best():
            numbers.append(number)
            values.append(got[0])
    if not values:
        raise Unavailable(
            f"needs 1 finished trial(s) with a value of {f.view.metric_name}; 0 so far"
        )
    x = np.asarray(numbers, dtype=np.int64)
    y = np.asarray(values, dtype=np.float64)
    best = np.maximum.accumulate(y) if goal.direction == "maximize" else np.minimum.accumulate(y)
    figure = go.Figure(
        [
            go.Scatter(x=x.tolist(), y=values, mode="markers", name=goal.name),
            go.Scatter(x=x.tolist(), y=best.tolist(), mode="lines", name="Best Value"),
        ]
    )
    figure.update_layout(
        title="Optimization History Plot",
        xaxis={"title": {"text": "Trial"}},
        yaxis={"title": {"text": goal.name}},
    )
    return figure


def _importances(f: Figures) -> Any:
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import plot_param_importances

    f.complete(2)
    f.params()
    study = f.sample_study
    if len(f.sampled) > IMPORTANCE_TRIALS:
        fitted = spread(f.sampled, IMPORTANCE_TRIALS, f.view.record.best_trial_name)
        study = StudyBuilder(f.view, fitted).study(f.goals[:1])
    # Fewer trees than Optuna's default 64, for the same reason.
    evaluator = FanovaImportanceEvaluator(n_trees=16, seed=0)
    return plot_param_importances(study, evaluator=evaluator, target_name=f.view.metric_name)


def _parallel(f: Figures) -> Any:
    from optuna.visualization import plot_parallel_coordinate

    return plot_parallel_coordinate(f.complete(), params=f.params(), target_name=f.view.metric_name)


def _slice(f: Figures) -> Any:
    from optuna.visualization import plot_slice

    return plot_slice(f.complete(), params=f.params(), target_name=f.view.metric_name)


def _contour(f: Figures) -> Any:
    from optuna.visualization import plot_contour

    study = f.complete(2)
    params = f.params()
    if len(params) < 2:
        raise Unavailable("a contour plot needs two parameters; the experiment has one")
    return plot_contour(study, params=params[:CONTOUR_PARAMS], target_name=f.view.metric_name)


def _intermediate(f: Figures) -> Any:
    from optuna.visualization import plot_intermediate_values

    recent = [t for t in f.trials if t.status is not TrialStatus.CREATED][-INTERMEDIATE_TRIALS:]
    logs = {t.name: f._observations(t.name) for t in recent}
    study = StudyBuilder(f.view, recent).study(f.goals[:1], timeline=True, intermediate=logs)
    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        raise Unavailable(f"no trial has reported {f.view.metric_name} yet (observation logs)")
    return plot_intermediate_values(study)


def _timeline(f: Figures) -> Any:
    from optuna.visualization import plot_timeline

    study = StudyBuilder(f.view, f.sampled).study(f.goals[:1], timeline=True)
    if not any(t.datetime_start for t in study.get_trials(deepcopy=False)):
        raise Unavailable("no trial has started yet")
    return plot_timeline(study)


def _pareto(f: Figures) -> Any:
    from optuna.visualization import plot_pareto_front

    if len(f.goals) < 2:
        raise Unavailable("the experiment has one objective; a Pareto front needs several")
    study = StudyBuilder(f.view, f.sampled).study(f.goals)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise Unavailable("no finished trial has a value of every objective yet")
    return plot_pareto_front(study, target_names=[g.name for g in f.goals])


_SAMPLED = ("parallel", "slice", "contour", "timeline", "pareto")

_BUILDERS: dict[str, Figure] = {
    "history": _history,
    "importances": _importances,
    "parallel": _parallel,
    "slice": _slice,
    "contour": _contour,
    "intermediate": _intermediate,
    "timeline": _timeline,
    "pareto": _pareto,
}
