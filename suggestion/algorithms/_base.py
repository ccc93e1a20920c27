"""The `Algorithm` contract, the domain types it reads and writes, and its errors.

Algorithms know nothing of gRPC or protobuf: they get a `SearchSpace`, a `Direction`, parsed
settings and `TrialView`s, and return typed `Assignment`s (OSS Vizier's designer split).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np

from suggestion.algorithms import _points
from suggestion.algorithms._settings import SettingSpec, parse_settings
from tuner.errors import TunerError
from tuner.space import Assignment, Direction, SearchSpace


class AlgorithmError(TunerError):
    """Base of every error an algorithm raises on purpose; anything else is a bug."""


class SettingsError(AlgorithmError):
    """An algorithm setting that is unknown, malformed or out of range (not worth retrying)."""

    def __init__(self, setting: str, value: str, rule: str) -> None:
        self.setting = setting
        self.value = value
        self.rule = rule
        # Cut: a status message travels in a gRPC header, which holds 16 KB at most.
        super().__init__(f"algorithm setting {_cut(setting)}: {_cut(value)} {rule}")


class SpaceNotSupportedError(AlgorithmError):
    """A parameter (type, distribution or shape) the algorithm cannot honour."""

    def __init__(self, parameter: str | None, rule: str) -> None:
        self.parameter = parameter
        self.rule = rule
        where = f"parameter {parameter!r}: " if parameter is not None else "search space: "
        super().__init__(where + rule)


class ObjectivesNotSupportedError(AlgorithmError):
    """Several objectives for an algorithm that optimises one (not worth retrying)."""

    def __init__(self, algorithm: str, count: int, able: Sequence[str]) -> None:
        self.algorithm = algorithm
        self.count = count
        super().__init__(
            f"algorithm {_cut(algorithm)} optimises a single objective, and the experiment has"
            f" {count} (spec.objective.additionalObjectives); use one of {', '.join(able)},"
            " or drop additionalObjectives"
        )


class CancelledError(AlgorithmError):
    """The caller stopped waiting (cancelled call, expired deadline, server shutdown)."""


class UnknownAlgorithmError(AlgorithmError):
    """No algorithm is registered under the requested name."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"unknown algorithm {_cut(name)}; known algorithms: {', '.join(self.known)}"
        )


def _cut(text: str, limit: int = 80) -> str:
    """``repr`` of a (possibly huge) client-sent text, cut to about ``limit`` characters."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class TrialState(enum.Enum):
    """What an algorithm needs to know about a trial's lifecycle."""

    PENDING = "pending"  # created or running: its point is taken, its value unknown
    COMPLETED = "completed"  # finished with an objective value
    FAILED = "failed"  # finished without a usable value: its point is taken, nothing learned


@dataclass(frozen=True)
class TrialView:
    """One trial as an algorithm sees it; ``value`` is set exactly when COMPLETED.

    ``value`` is the first objective's; ``values`` holds every objective's value in the
    order of the algorithm's ``goals`` (set exactly when COMPLETED; a multi-objective trial
    is COMPLETED only with all of them). Left empty, it is ``(value,)``."""

    name: str
    assignment: Assignment
    state: TrialState
    value: float | None = None
    completed_at: datetime | None = None
    started_at: datetime | None = None
    values: tuple[float, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    """The trial's labels (Katib's ``Trial.spec.labels``), as an algorithm set them."""

    def __post_init__(self) -> None:
        if not self.values and self.value is not None:
            object.__setattr__(self, "values", (self.value,))


@dataclass(frozen=True)
class Proposal:
    """One new trial: its assignment and the labels it is to carry (Katib's
    ``GetSuggestionsReply.ParameterAssignments.labels``; empty for most algorithms)."""

    assignment: Assignment
    labels: Mapping[str, str] = field(default_factory=dict)


class Algorithm(abc.ABC):
    """Proposes parameter sets for one experiment.

    Call order. The service calls `parse(settings)` (class method: parse and validate the
    raw name/value settings once, raising `SettingsError`), then `check_space(space,
    settings)` (raising `SpaceNotSupportedError` for any parameter the algorithm cannot
    honour), then constructs one instance per (experiment, settings, space, goal) and calls
    `suggest(trials, count)` any number of times. Each call passes *all* trials of the
    experiment, running ones included; an instance may keep what it learned from earlier
    calls (that is what makes a warm call cost O(new trials)), but a fresh instance given the
    same trials must answer correctly (a restarted server has nothing else).

    Output. `suggest` returns at most `count` assignments, each inside the space, none
    equal to a trial's assignment or to another returned one. It returns fewer than `count`
    only when no unused point is left (grid exhausted, or a finite space used up); the caller
    reports that as exhaustion. With a fixed ``random_state`` the answer is a deterministic
    function of the sequence of calls.

    Thread-safety. An instance is not thread-safe: the service serialises the calls for one
    experiment. Different instances may run concurrently; implementations keep no mutable
    module-level state.

    Objectives. ``goal`` is one `Direction`, or one per objective for an algorithm whose
    `multi_objective` is True (`check_objectives` refuses the others); completed trials then
    carry one value per objective in ``TrialView.values``.

    Exceptions. `parse` raises `SettingsError`, `check_space` raises
    `SpaceNotSupportedError`, `check_objectives` raises `ObjectivesNotSupportedError`;
    `suggest` raises `CancelledError` once its ``should_stop`` callable answers True (checked
    between steps of the work), and nothing else on purpose (its input was validated), so
    any other exception from it is a bug, reported as an internal error.
    """

    name: ClassVar[str]
    """The Katib algorithm name this class is registered under."""

    settings_spec: ClassVar[tuple[SettingSpec, ...]] = ()
    """Katib's setting names for this algorithm with their parsers and defaults."""

    fill_with_random: ClassVar[bool] = True
    """Replace proposals that repeat a used point by random unused points."""

    general_purpose: ClassVar[bool] = True
    """Works with defaults for its settings on any space. False for an algorithm that needs
    settings naming parts of the space (hyperband's ``resource_name``): the general test
    suites, which cannot supply them, skip it and its own tests cover the contract."""
    multi_objective: ClassVar[bool] = False
    """Serves experiments with several objectives (each trial's ``values``, ``goals``)."""
    repeats_points: ClassVar[bool] = False
    """Its trials may share a parameter set, told apart by their labels (pbt: the parent
    checkpoint); `suggest` then returns repeats, and the service tracks handed-out trials
    by assignment and labels."""

    @classmethod
    def parse(cls, settings: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        """Parse raw settings into typed values with defaults; SettingsError when invalid."""
        return parse_settings(cls.name, cls.settings_spec, settings, SettingsError)

    @classmethod
    def check_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> None:
        """Raise SpaceNotSupportedError naming the first parameter this algorithm cannot honour."""
        return  # the default algorithm honours every parameter

    @classmethod
    def check_experiment(cls, settings: Mapping[str, Any], parallel_trial_count: int) -> None:
        """Raise SettingsError when the settings do not fit the experiment's budget
        (hyperband: ``parallelTrialCount`` must hold its largest bracket); validation only."""
        return

    @classmethod
    def request_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> SearchSpace:
        """The space the request's trials are checked against: ``space`` unless the
        algorithm itself assigns values outside it (hyperband's resource parameter)."""
        return space

    @classmethod
    def check_objectives(cls, count: int, able: Sequence[str]) -> None:
        """Raise ObjectivesNotSupportedError for several objectives unless `multi_objective`;
        ``able``: the algorithms that serve them, for the message."""
        if count > 1 and not cls.multi_objective:
            raise ObjectivesNotSupportedError(cls.name, count, able)

    def __init__(
        self,
        space: SearchSpace,
        goal: Direction | Sequence[Direction],
        settings: Mapping[str, Any],
    ) -> None:
        self.space = space
        # One direction per objective; `goal` is the first (the only one for most algorithms).
        self.goals: tuple[Direction, ...] = (goal,) if isinstance(goal, Direction) else tuple(goal)
        self.goal = self.goals[0]
        self.settings = settings
        self.seed: int = (
            int(settings["random_state"])
            if settings.get("random_state") is not None
            else int(np.random.SeedSequence().generate_state(1)[0])
        )
        self.points = _points.PointSet(space)
        self._should_stop: Callable[[], bool] = _never

    def suggest(
        self,
        trials: Sequence[TrialView],
        count: int,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Assignment]:
        """Up to ``count`` new, distinct, unused assignments (see the class docstring).

        ``should_stop`` is polled between steps; once it answers True the call raises
        `CancelledError` (the instance stays usable).
        """
        if count <= 0:
            return []
        self._should_stop = should_stop or _never
        try:
            used = self.points.trial_key_set(trials).copy()  # `complete` adds to it
            proposals = self._propose(trials, count)
            self.checkpoint()
            n = len(trials)
            return self.points.complete(
                proposals, count, used, lambda: self.rng_for(n, salt=1), fill=self.fill_with_random
            )
        finally:
            self._should_stop = _never

    def state(self) -> tuple[tuple[str, str], ...] | None:
        """Settings to return with the last `suggest`'s reply (Katib's
        ``GetSuggestionsReply.algorithm``), None for none. A controller stores them and
        sends them back, overriding the experiment's settings, on its next request: an
        algorithm that keeps its state there continues after a restart of the server."""
        return None

    def exhausted(self, returned: int, count: int) -> bool:
        """Whether a reply of ``returned`` points for ``count`` asked means the end: by
        default when it is short. An algorithm that waits for running trials (a short reply
        now, more later) answers from its own state."""
        return returned < count

    def propose_trials(
        self,
        trials: Sequence[TrialView],
        count: int,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Proposal]:
        """`suggest` with the labels of each new trial; the service calls this one."""
        return [Proposal(a) for a in self.suggest(trials, count, should_stop=should_stop)]

    def checkpoint(self) -> None:
        """Raise `CancelledError` if the caller no longer waits; long `_propose`s call it often."""
        if self._should_stop():
            raise CancelledError("the call was cancelled or its deadline passed; work stopped")

    @abc.abstractmethod
    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        """The algorithm's own ``count`` proposals; repeats are replaced by `suggest`."""

    def rng_for(self, n_trials: int, salt: int = 0) -> np.random.Generator:
        """A generator determined by the seed, the number of trials and a salt.

        Deriving it from the request (not from how many calls this instance served) makes a
        restarted server draw the same numbers as one that never stopped.
        """
        # What default_rng makes of a SeedSequence, without its argument dispatch.
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([self.seed, n_trials, salt]))
        )

    def seed_for(self, n_trials: int, salt: int = 0) -> int:
        """Like `rng_for`, as a 32-bit seed for libraries that take an int."""
        return int(np.random.SeedSequence([self.seed, n_trials, salt]).generate_state(1)[0])


def _never() -> bool:
    return False
