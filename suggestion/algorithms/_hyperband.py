"""Hyperband as Katib runs it: brackets of successive halving over a resource parameter,
with the algorithm's whole state carried in the settings it returns.

Katib's service (``pkg/suggestion/v1beta1/hyperband``) keeps no state of its own: each reply
carries ``eta, s_max, r_l, b_l, r, n, current_s, current_i, resource_name,
evaluating_trials`` in ``GetSuggestionsReply.algorithm``, the controller stores them and
sends them back as the experiment's settings. This module reads and writes the same
settings with Katib's arithmetic (`Schedule`), so a restarted server, or Katib's own image,
continues the same bracket. Where it differs from Katib's is in docs/algorithms.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from suggestion.algorithms._base import (
    Algorithm,
    SettingsError,
    SpaceNotSupportedError,
    TrialState,
    TrialView,
)
from suggestion.algorithms._settings import RANDOM_STATE, RuleViolationError, SettingSpec
from tuner.space import Assignment, Direction, ParameterType, SearchSpace

_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def _number(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError as e:
        raise RuleViolationError("is not a number") from e
    if not math.isfinite(value):
        raise RuleViolationError("is not a finite number")
    return value


def _eta(text: str) -> float:
    value = _number(text)
    if not value.is_integer() or value < 2:
        raise RuleViolationError("is not an integer >= 2 (the halving rate)")
    return value


def _r_l(text: str) -> float:
    value = _number(text)
    if value < 1:
        raise RuleViolationError("is not a number >= 1 (the largest resource of a trial)")
    return value


def _katib_int(text: str) -> int:
    """Katib reads its state integers as ``int(float(value))``."""
    return int(_number(text))


def _name(text: str) -> str:
    if not text:
        raise RuleViolationError("is empty; name the resource parameter")
    return text


def s_max_of(r_l: float, eta: float) -> int:
    """Katib's ``s_max``: the number of halvings, ``int(log(r_l) / log(eta))``."""
    return int(math.log(r_l) / math.log(eta))


def bracket_size(s_max: int, eta: float, s: int) -> int:
    """Katib's ``n`` of bracket ``s``: ``ceil((s_max + 1) * eta**s / (s + 1))``."""
    return int(math.ceil(float(s_max + 1) * (float(eta**s) / float(s + 1))))


def bracket_resource(r_l: float, eta: float, s: int) -> float:
    """Katib's ``r`` of bracket ``s``: ``r_l * eta**-s``."""
    return r_l * eta ** (-s)


@dataclass(frozen=True)
class Schedule:
    """Katib's ``HyperBandParam``: where the experiment is in its brackets.

    ``current_s`` counts brackets down from ``s_max`` to 0 (-1: all done), ``current_i`` is
    the rung within the bracket, ``evaluating_trials`` the size of the rung whose results
    the next call promotes from (0: the next call starts a bracket).
    """

    eta: float
    s_max: int
    r_l: float
    b_l: float
    r: float
    n: int
    current_s: int
    current_i: int
    resource_name: str
    evaluating_trials: int

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Schedule:
        """Katib's ``HyperBandParam.convert``: unset or negative state takes its start value,
        except ``current_s`` -1, the end."""

        def given(name: str) -> Any:
            value = settings[name]
            return value if value is not None and value >= 0 else None

        eta = float(settings["eta"])
        r_l = float(settings["r_l"])
        s_max = given("s_max") if given("s_max") is not None else s_max_of(r_l, eta)
        current_s = settings["current_s"]
        if current_s is None or current_s < -1:
            current_s = s_max
        n, r = given("n"), given("r")
        if current_s >= 0:  # Katib computes no bracket once the run has ended
            n = n if n is not None else bracket_size(s_max, eta, current_s)
            r = r if r is not None else bracket_resource(r_l, eta, current_s)
        return cls(
            eta=eta,
            s_max=s_max,
            r_l=r_l,
            b_l=given("b_l") if given("b_l") is not None else (s_max + 1) * r_l,
            r=r if r is not None else -1,
            n=n if n is not None else -1,
            current_s=current_s,
            current_i=given("current_i") or 0,
            resource_name=settings["resource_name"],
            evaluating_trials=given("evaluating_trials") or 0,
        )

    def settings(self) -> tuple[tuple[str, str], ...]:
        """Katib's ``HyperBandParam.generate``: the state in Katib's names and formats."""
        return (
            ("eta", str(self.eta)),
            ("s_max", str(self.s_max)),
            ("r_l", str(self.r_l)),
            ("b_l", str(self.b_l)),
            ("r", str(self.r)),
            ("n", str(self.n)),
            ("current_s", str(self.current_s)),
            ("current_i", str(self.current_i)),
            ("resource_name", self.resource_name),
            ("evaluating_trials", str(self.evaluating_trials)),
        )

    @property
    def finished(self) -> bool:
        return self.current_s < 0

    def next_bracket(self) -> Schedule:
        """Katib's ``_new_hbParameters``: the next (smaller) bracket, or the end."""
        s = self.current_s - 1
        if s < 0:
            return dataclasses.replace(self, current_s=s, current_i=0)
        return dataclasses.replace(
            self,
            current_s=s,
            current_i=0,
            n=bracket_size(self.s_max, self.eta, s),
            r=bracket_resource(self.r_l, self.eta, s),
        )

    def after(self, issued: int) -> Schedule:
        """Katib's end of ``_make_bracket``: a rung below the bracket's top waits for its
        ``issued`` trials; the top rung (or an empty one) ends the bracket."""
        if self.current_i < self.current_s and issued:
            return dataclasses.replace(self, evaluating_trials=issued)
        return dataclasses.replace(self, evaluating_trials=0).next_bracket()


def resources(r_l: float, eta: float, s_max: int) -> list[int]:
    """Every resource value the schedule assigns: bracket ``s`` starts at ``int(r)`` and
    rung ``i`` gets ``int(int(r) * eta**i)`` (Katib reads ``r`` back as an integer)."""
    out = set()
    for s in range(s_max + 1):
        start = int(bracket_resource(r_l, eta, s))
        out.add(start)
        out.update(int(start * eta**i) for i in range(1, s + 1))
    return sorted(out)


class BudgetError(SettingsError):
    """Settings whose brackets do not fit the experiment's ``parallelTrialCount``."""

    def __init__(self, parallel: int, needed: int, r_l: float, eta: float) -> None:
        self.setting, self.value = "parallelTrialCount", str(parallel)
        self.rule = f"must be at least {needed}"
        Exception.__init__(
            self,
            f"spec.parallelTrialCount: {parallel} is less than {needed}, the largest hyperband"
            f" bracket for r_l {r_l:g} and eta {eta:g} (eta ** s_max, Katib's rule); raise"
            " parallelTrialCount or lower r_l",
        )


class Hyperband(Algorithm):
    """Katib's hyperband: bracket ``s`` (from ``s_max`` down to 0) starts ``n`` random trials
    with resource ``r``; each later rung promotes the best ``ceil(n_i / eta)`` of the rung
    before, once all of it finished, with ``eta`` times the resource.

    While a rung still runs a call returns nothing and the experiment waits: that short
    reply is not the end (`exhausted` says so); the end is the call after the last bracket.
    """

    name = "hyperband"
    settings_spec = (
        SettingSpec("resource_name", _name),
        SettingSpec("eta", _eta, 3.0),
        SettingSpec("r_l", _r_l),
        # The state Katib's service returns and reads back (unset: the start of the run).
        SettingSpec("s_max", _katib_int),
        SettingSpec("b_l", _number),
        SettingSpec("r", _katib_int),
        SettingSpec("n", _katib_int),
        SettingSpec("current_s", _katib_int),
        SettingSpec("current_i", _katib_int),
        SettingSpec("evaluating_trials", _katib_int),
        RANDOM_STATE,
    )
    fill_with_random = False
    general_purpose = False

    @classmethod
    def parse(cls, settings: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        parsed = super().parse(settings)
        for required in ("r_l", "resource_name"):
            if parsed[required] is None:
                raise SettingsError(
                    required, "", "is not set; hyperband needs r_l and resource_name"
                )
        return parsed

    @classmethod
    def check_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> None:
        name = settings["resource_name"]
        if name not in space.names:
            raise SpaceNotSupportedError(
                None,
                f"the resource_name setting {name!r} is not a parameter (parameters:"
                f" {', '.join(space.names)}); name the parameter that takes the resource",
            )
        parameter = space[name]
        if parameter.type not in (ParameterType.INT, ParameterType.DOUBLE):
            raise SpaceNotSupportedError(
                name,
                f"hyperband's resource parameter must be int or double, not"
                f" {parameter.type.value}; it takes the resource values the brackets compute",
            )

    @classmethod
    def check_experiment(cls, settings: Mapping[str, Any], parallel_trial_count: int) -> None:
        eta, r_l = float(settings["eta"]), float(settings["r_l"])
        needed = int(eta) ** s_max_of(r_l, eta)  # eta is integral: exact, never overflows
        if parallel_trial_count < needed:
            raise BudgetError(parallel_trial_count, needed, r_l, eta)

    @classmethod
    def request_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> SearchSpace:
        # Katib overwrites the resource parameter whatever its feasibleSpace (its example
        # has num-epochs in [1, 1] and assigns 2): widen the bounds to what is assigned.
        schedule = Schedule.from_settings(settings)
        values = resources(schedule.r_l, schedule.eta, schedule.s_max)
        parameters = []
        for p in space.parameters:
            if p.name == schedule.resource_name and p.min is not None and p.max is not None:
                p = dataclasses.replace(p, min=min(p.min, values[0]), max=max(p.max, values[-1]))
            parameters.append(p)
        return dataclasses.replace(space, parameters=tuple(parameters))

    def __init__(self, space: SearchSpace, goal: Direction, settings: Mapping[str, Any]) -> None:
        super().__init__(space, goal, settings)
        self._schedule = Schedule.from_settings(settings)
        self._next = self._schedule
        self._finished = False

    def suggest(
        self,
        trials: Sequence[TrialView],
        count: int,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Assignment]:
        # Always from the settings of the request, never from an earlier call: the state
        # lives in the settings the controller sends back.
        schedule = self._schedule
        self._finished = schedule.finished
        self._next = schedule
        if count <= 0 or schedule.finished:
            return []
        if schedule.evaluating_trials == 0:
            chosen = self._start_bracket(schedule, trials, count)
            self._next = schedule.after(len(chosen))
            return chosen
        rung = _latest(trials, schedule.evaluating_trials)
        if any(t.state is TrialState.PENDING for t in rung):
            return []  # the rung still runs: wait, state unchanged
        n_i = math.ceil(schedule.n * schedule.eta ** (-schedule.current_i))
        top = int(math.ceil(n_i / schedule.eta))
        promoted = dataclasses.replace(schedule, current_i=schedule.current_i + 1)
        resource = int(int(promoted.r) * promoted.eta**promoted.current_i)
        finished = [t for t in rung if t.state is TrialState.COMPLETED and t.value is not None]
        finished.sort(key=lambda t: t.value, reverse=self.goal is Direction.MAXIMIZE)  # type: ignore[arg-type, return-value]
        chosen = [self._with_resource(t.assignment, resource) for t in finished[: min(top, count)]]
        self._next = promoted.after(len(chosen))
        return chosen

    def _start_bracket(
        self, schedule: Schedule, trials: Sequence[TrialView], count: int
    ) -> list[Assignment]:
        rng = self.rng_for(len(trials))
        resource = int(schedule.r)
        wanted = min(schedule.n, count)
        proposals = [self._with_resource(self.points.random(rng), resource) for _ in range(wanted)]
        used = self.points.used_keys(t.assignment for t in trials)
        return self.points.complete(proposals, wanted, used, rng, fill=False)

    def _with_resource(self, assignment: Assignment, resource: int) -> Assignment:
        name = self._schedule.resource_name
        parameter = self.space[name]
        value = float(resource) if parameter.type is ParameterType.DOUBLE else resource
        return {**assignment, name: value}

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        return self.suggest(trials, count)  # pragma: no cover - suggest is overridden

    def state(self) -> tuple[tuple[str, str], ...] | None:
        return self._next.settings()

    def exhausted(self, returned: int, count: int) -> bool:
        return self._finished


def _latest(trials: Sequence[TrialView], count: int) -> list[TrialView]:
    """The ``count`` most recently started trials (Katib sorts by start time); trials not
    started yet are the most recent, and request order breaks ties."""
    order = sorted(
        range(len(trials)),
        key=lambda i: (trials[i].started_at is None, trials[i].started_at or _EPOCH, i),
    )
    return [trials[i] for i in order[-count:]] if count > 0 else []
