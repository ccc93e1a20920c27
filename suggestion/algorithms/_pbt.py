"""Population based training (Katib's ``pbt``): generations of trials, each child continuing
from its parent's checkpoint with exploited or explored hyperparameters.

Katib's settings and labels: ``n_population``, ``truncation_threshold``,
``resample_probability``, ``suggestion_trial_dir``; every new trial carries
``pbt.suggestion.katib.kubeflow.org/generation`` and, past generation 0,
``pbt.suggestion.katib.kubeflow.org/parent`` (the trial whose checkpoint it starts from).
Unlike Katib's service, which keeps the population in memory, the population is rebuilt
from the request's trials and their labels on every call, so a restarted server continues it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from suggestion.algorithms._base import Algorithm, Proposal, SettingsError, TrialState, TrialView
from suggestion.algorithms._settings import RANDOM_STATE, RuleViolationError, SettingSpec, integer
from tuner.space import Assignment, Direction, ParameterType, SearchSpace

GENERATION_LABEL = "pbt.suggestion.katib.kubeflow.org/generation"
PARENT_LABEL = "pbt.suggestion.katib.kubeflow.org/parent"
MEMBER_LABEL = "tuner/pbt-member"
"""tuner's own label: the member's index within its generation, shared by its retries."""

REQUIRED = ("suggestion_trial_dir", "n_population", "truncation_threshold")
"""The settings Katib's PBT service refuses to run without."""


def _fraction(text: str) -> float:
    rule = "is not a number between 0 and 1, inclusive"
    try:
        value = float(text.strip())
    except ValueError as e:
        raise RuleViolationError(rule) from e
    if not 0.0 <= value <= 1.0:
        raise RuleViolationError(rule)
    return value


def _absolute_path(text: str) -> str:
    if not text.strip() or not os.path.isabs(text.strip()):
        raise RuleViolationError(
            "is not an absolute path (the directory where each trial finds its checkpoint)"
        )
    return text.strip()


class PopulationBasedTraining(Algorithm):
    """Katib's PBT, restart-safe.

    Generation 0 is ``n_population`` random members. Once a generation has
    ``n_population`` completed members (the first ones to complete form its pool), the next
    generation is bred from that pool: members below the ``truncation_threshold`` quantile
    *exploit* (take the hyperparameters of a random member above the ``1 -
    truncation_threshold`` quantile and continue from their own checkpoint, as Katib does),
    the others *explore* (continue from their own checkpoint with each hyperparameter
    resampled with ``resample_probability``, or, without it, multiplied by 0.8 or 1.2 for
    numbers and moved to a neighbouring entry for lists). While the pool is not complete,
    further requests are served with more members of the current generation (random ones
    in generation 0, more children of the previous pool later), as Katib does. A failed or
    killed member is retried with the same hyperparameters and parent, as Katib does.

    Parameter sets repeat by design (an exploiting child copies another member's), so this
    algorithm does not drop repeats; its trials differ by their parent checkpoint.
    """

    name = "pbt"
    settings_spec = (
        SettingSpec("suggestion_trial_dir", _absolute_path),
        SettingSpec("n_population", integer(minimum=5)),
        SettingSpec("truncation_threshold", _fraction),
        SettingSpec("resample_probability", _fraction),
        RANDOM_STATE,
    )
    repeats_points = True

    @classmethod
    def parse(cls, settings: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        parsed = super().parse(settings)
        given = {name for name, _ in settings}
        missing = [name for name in REQUIRED if name not in given]
        if missing:
            raise SettingsError(
                missing[0],
                "",
                f"is required: pbt needs {', '.join(REQUIRED)} (missing: {', '.join(missing)})",
            )
        return parsed

    def __init__(self, space: SearchSpace, goal: Direction, settings: Mapping[str, Any]) -> None:
        super().__init__(space, goal, settings)
        self.population: int = settings["n_population"]
        self.truncation: float = settings["truncation_threshold"]
        self.resample: float | None = settings["resample_probability"]
        # Katib ranks by the objective scaled to "larger is better".
        self._scale = 1.0 if goal is Direction.MAXIMIZE else -1.0

    def suggest(
        self,
        trials: Sequence[TrialView],
        count: int,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Assignment]:
        return [p.assignment for p in self.propose_trials(trials, count, should_stop=should_stop)]

    def propose_trials(
        self,
        trials: Sequence[TrialView],
        count: int,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Proposal]:
        if count <= 0:
            return []
        self._should_stop = should_stop or (lambda: False)
        try:
            return self._plan(trials, count)
        finally:
            self._should_stop = lambda: False

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        return [p.assignment for p in self._plan(trials, count)]

    # -- the population, rebuilt from the trials -------------------------------------

    def _plan(self, trials: Sequence[TrialView], count: int) -> list[Proposal]:
        members = self._consistent([_Member.of(t, order) for order, t in enumerate(trials)])
        generation = max((m.generation for m in members), default=0)
        out: list[Proposal] = []
        current = [m for m in members if m.generation == generation]
        if len(self._pool(current)) < self.population:
            # Retries first: a member of the current generation whose every attempt failed.
            out.extend(self._retries(current, generation)[:count])
        while len(out) < count:
            self.checkpoint()
            current = [m for m in members if m.generation == generation]
            if len(self._pool(current)) >= self.population:
                generation += 1
                current = []
            index = 1 + max((m.member for m in current), default=-1)
            proposal = self._child(members, generation, index)
            out.append(proposal)
            members.append(
                _Member.of(
                    TrialView("", proposal.assignment, TrialState.PENDING, labels=proposal.labels),
                    len(members),
                )
            )
        return out

    def _consistent(self, members: list[_Member]) -> list[_Member]:
        """The members whose generation could have been bred: generation 0, or a generation
        whose previous one has a complete pool. Others (stale pending proposals of an
        earlier experiment of the same name, trials labelled by someone else) are ignored."""
        kept: list[_Member] = []
        for generation in sorted({m.generation for m in members}):
            if generation > 0:
                previous = [m for m in kept if m.generation == generation - 1]
                if len(self._pool(previous)) < self.population:
                    break
            kept.extend(m for m in members if m.generation == generation)
        return sorted(kept, key=lambda m: m.order)

    def _retries(self, current: list[_Member], generation: int) -> list[Proposal]:
        attempts: dict[int, list[_Member]] = {}
        for m in current:
            attempts.setdefault(m.member, []).append(m)
        return [
            self._proposal(tries[0].assignment, generation, index, tries[0].parent)
            for index, tries in sorted(attempts.items())
            if all(t.state is TrialState.FAILED for t in tries)
        ]

    def _pool(self, generation_members: Sequence[_Member]) -> list[_Member]:
        """The first ``n_population`` completed members, by completion time (then order)."""
        done = [m for m in generation_members if m.state is TrialState.COMPLETED]
        done.sort(key=lambda m: (m.completed_key, m.order))
        return done[: self.population]

    def _child(self, members: list[_Member], generation: int, index: int) -> Proposal:
        """Member ``index`` of ``generation``: random in generation 0, else bred from the
        previous generation's pool in rounds of (at most) ``n_population`` children."""
        if generation == 0:
            rng = self._rng(0, index)
            return self._proposal(self.points.random(rng), 0, index, None)
        pool = self._pool([m for m in members if m.generation == generation - 1])
        values = np.array([self._scale * m.value for m in pool])
        lower, upper = np.quantile(values, (self.truncation, 1.0 - self.truncation))
        bottom = [m for m, v in zip(pool, values, strict=True) if v < lower]
        rest = [m for m, v in zip(pool, values, strict=True) if v >= lower]
        top = [m for m, v in zip(pool, values, strict=True) if v >= upper]
        n_exploit = min(len(bottom), int(self.population * self.truncation))
        n_explore = min(len(rest), self.population - n_exploit)
        round_, position = divmod(index, n_exploit + n_explore)
        rng = self._rng(generation, round_)
        exploit = [bottom[i] for i in rng.permutation(len(bottom))][:n_exploit]
        explore = [rest[i] for i in rng.permutation(len(rest))][:n_explore]
        donors = [top[int(i)] for i in rng.integers(len(top), size=n_exploit)]
        if position < n_exploit:
            # Katib's exploit: the donor's hyperparameters, from the weaker member's checkpoint.
            return self._proposal(
                donors[position].assignment, generation, index, exploit[position].name
            )
        parent = explore[position - n_exploit]
        # Each child's own draws, so that its siblings' do not shift them.
        child_rng = self._rng(generation, round_, 1 + position)
        return self._proposal(
            self._explore(parent.assignment, child_rng), generation, index, parent.name
        )

    def _explore(self, assignment: Assignment, rng: np.random.Generator) -> Assignment:
        out = dict(assignment)
        fresh = self.points.random(rng)
        for p in self.space.parameters:
            if self.resample is not None:
                if rng.random() < self.resample:
                    out[p.name] = fresh[p.name]
            elif p.is_numeric:
                factor = float(rng.choice([0.8, 1.2]))
                value = float(assignment[p.name])
                scaled = int(int(value) * factor) if p.type is ParameterType.INT else value * factor
                out[p.name] = p.nearest(scaled)
            else:
                entries = list(p.values)
                step = int(rng.choice([-1, 1]))
                out[p.name] = entries[(entries.index(assignment[p.name]) + step) % len(entries)]
        return out

    def _rng(self, *path: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, 7, *path]))

    def _proposal(
        self, assignment: Assignment, generation: int, index: int, parent: str | None
    ) -> Proposal:
        labels = {GENERATION_LABEL: str(generation), MEMBER_LABEL: str(index)}
        if parent is not None:
            labels[PARENT_LABEL] = parent
        return Proposal(dict(assignment), labels)


_UNLABELLED = 1_000_000
"""Member indices given to trials without tuner's member label (after every labelled one)."""


@dataclass(frozen=True)
class _Member:
    name: str
    assignment: Assignment
    state: TrialState
    value: float  # the objective when COMPLETED, else NaN
    completed_key: float
    order: int
    generation: int
    member: int
    parent: str | None

    @classmethod
    def of(cls, t: TrialView, order: int) -> _Member:
        return cls(
            name=t.name,
            assignment=t.assignment,
            state=t.state,
            value=t.value if t.value is not None else math.nan,
            completed_key=t.completed_at.timestamp() if t.completed_at else math.inf,
            order=order,
            generation=_label_int(t.labels, GENERATION_LABEL, 0),
            member=_label_int(t.labels, MEMBER_LABEL, _UNLABELLED + order),
            parent=t.labels.get(PARENT_LABEL) or None,
        )


def _label_int(labels: Mapping[str, str], key: str, default: int) -> int:
    try:
        return max(0, int(labels[key]))
    except (KeyError, ValueError):
        return default
