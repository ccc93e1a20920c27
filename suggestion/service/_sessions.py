"""Per-experiment algorithm sessions: a bounded LRU cache and one lock per experiment.

A session is an algorithm instance for one (experiment, algorithm, settings, space, goal);
a warm call reuses it, a cold one builds it from the request alone. The session also
remembers the points it handed out that have not yet come back as trials, and passes them
to the algorithm as pending: that is what keeps concurrent or back-to-back calls (whose
requests cannot list each other's results yet) from repeating a point. No gRPC in here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from suggestion import algorithms
from suggestion.algorithms import (
    Algorithm,
    CancelledError,
    Proposal,
    TrialState,
    TrialTable,
    TrialView,
)
from tuner.space import Assignment, Direction, SearchSpace

ISSUED_LIMIT = 10_000
"""Handed-out points remembered per experiment until they come back as trials."""

MAX_SUGGESTIONS_PER_REQUEST = 1_000
"""Largest ``current_request_number`` served; larger requests are refused, not truncated."""

_LOCK_POLL_SECONDS = 0.05


class RequestLimitError(ValueError):
    """A request asking for more work than the server does in one call (INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class SuggestionRequest:
    """Everything an algorithm may use; the experiment name only selects the session."""

    experiment: str
    algorithm: str
    settings: tuple[tuple[str, str], ...]
    space: SearchSpace
    goal: Direction
    trials: Sequence[TrialView]
    count: int
    should_stop: Callable[[], bool] | None = None
    """Polled while waiting and computing; True makes the call raise `CancelledError`."""
    goals: tuple[Direction, ...] = ()
    """One direction per objective when there are several (``goal`` is the first)."""

    @property
    def directions(self) -> tuple[Direction, ...]:
        return self.goals or (self.goal,)


@dataclass(frozen=True)
class SuggestionResult:
    assignments: list[Assignment]
    exhausted: bool
    """True when no more points will come (for most algorithms: fewer than requested)."""
    state: tuple[tuple[str, str], ...] | None = None
    """The algorithm settings to return with the reply (`Algorithm.state`)."""
    labels: list[Mapping[str, str]] = field(default_factory=list)
    """The labels of each new trial, parallel to ``assignments`` (empty: none)."""


@dataclass
class _Session:
    key: tuple[object, ...]
    algorithm: Algorithm
    # canonical point key (with the labels, for algorithms whose trials repeat points)
    # -> (serial number, proposal), oldest first
    issued: OrderedDict[tuple[object, ...], tuple[int, Proposal]] = field(
        default_factory=OrderedDict
    )
    serial: int = 0
    # The name of the first trial a request of this run carried: a request without it is
    # another run of an experiment of the same name (deleted and created again).
    first_trial: str | None = None

    def same_run(self, trials: Sequence[TrialView]) -> bool:
        """Whether a request with ``trials`` continues this session's run: it carries the
        run's first trial, or the run has no trial yet (a controller may ask twice before
        it creates any: the points issued meanwhile stay pending)."""
        names = trials.names if isinstance(trials, TrialTable) else [t.name for t in trials]
        if self.first_trial is None:
            if names:
                self.first_trial = names[0]
            return True
        return self.first_trial in names


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    session: _Session | None = None


def build(
    name: str,
    settings: Sequence[tuple[str, str]],
    space: SearchSpace,
    goal: Direction | Sequence[Direction],
) -> Algorithm:
    """Look up, parse, check and construct; raises the algorithm errors unchanged.
    ``goal``: one direction, or one per objective."""
    goals = (goal,) if isinstance(goal, Direction) else tuple(goal)
    cls = algorithms.get(name)
    _check_objectives(cls, len(goals))
    parsed = cls.parse(settings)
    cls.check_space(space, parsed)
    return cls(space, goals[0] if len(goals) == 1 else goals, parsed)


def validate(
    name: str,
    settings: Sequence[tuple[str, str]],
    space: SearchSpace,
    parallel_trial_count: int | None = None,
    objectives: int = 1,
) -> None:
    cls = algorithms.get(name)
    _check_objectives(cls, objectives)
    parsed = cls.parse(settings)
    cls.check_space(space, parsed)
    if parallel_trial_count is not None:
        cls.check_experiment(parsed, parallel_trial_count)


def request_space(
    name: str, settings: Sequence[tuple[str, str]], space: SearchSpace
) -> SearchSpace:
    """The space a request's trials are checked against (`Algorithm.request_space`)."""
    cls = algorithms.get(name)
    return cls.request_space(space, cls.parse(settings))


def _check_objectives(cls: type[Algorithm], count: int) -> None:
    if count > 1 and not cls.multi_objective:
        cls.check_objectives(count, algorithms.multi_objective_names())


class SuggestionEngine:
    """Serves suggestions for many experiments; thread-safe.

    Calls for one experiment are serialised; different experiments run concurrently. At
    most ``max_experiments`` sessions are kept, least recently used evicted first.
    """

    def __init__(
        self,
        max_experiments: int = 256,
        *,
        max_count: int = MAX_SUGGESTIONS_PER_REQUEST,
    ) -> None:
        self.max_experiments = max_experiments
        self.max_count = max_count
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._guard = threading.Lock()
        self._closed = threading.Event()

    def close(self) -> None:
        """Make every running and later call stop at its next check (server shutdown)."""
        self._closed.set()

    @contextmanager
    def _slot(self, experiment: str, should_stop: Callable[[], bool]) -> Iterator[_Slot]:
        with self._guard:
            slot = self._slots.get(experiment)
            if slot is None:
                slot = self._slots[experiment] = _Slot()
            self._slots.move_to_end(experiment)
            self._evict()
        # Wait in short steps: a caller that gives up while another call for the same
        # experiment computes must not keep waiting (and holding a server thread).
        while not slot.lock.acquire(timeout=_LOCK_POLL_SECONDS):
            if should_stop():
                raise CancelledError("the call was cancelled while waiting for the experiment")
        try:
            yield slot
        finally:
            slot.lock.release()

    def _evict(self) -> None:
        excess = len(self._slots) - self.max_experiments
        for name in list(self._slots)[:-1]:
            if excess <= 0:
                break
            # A slot whose lock is held is in use: evicting it would let a second request
            # for that experiment run beside the first.
            if not self._slots[name].lock.locked():
                del self._slots[name]
                excess -= 1

    def suggest(self, request: SuggestionRequest) -> SuggestionResult:
        """Raises RequestLimitError (count above the cap), `CancelledError`, and the algorithm
        errors of `build`.

        A count above what a finite space holds is served, not refused: the reply holds the
        unused points and reports exhaustion (controllers ask for their free parallel slots,
        which may exceed a small grid); the work stays bounded by the space.
        """
        if request.count > self.max_count:
            raise RequestLimitError(
                f"current_request_number: {request.count} is above the limit of"
                f" {self.max_count} suggestions per request; ask in smaller batches"
            )
        caller_stop = request.should_stop

        def should_stop() -> bool:
            return self._closed.is_set() or (caller_stop is not None and caller_stop())

        # Settings in another order are the same settings: no reason to rebuild the session.
        goals = request.directions
        key = (request.algorithm, tuple(sorted(request.settings)), request.space, goals)
        with self._slot(request.experiment, should_stop) as slot:
            if (
                slot.session is None
                or slot.session.key != key
                or not slot.session.same_run(request.trials)
            ):
                algorithm = build(request.algorithm, request.settings, request.space, goals)
                slot.session = _Session(key, algorithm)
            session = slot.session
            algorithm = session.algorithm

            def issued_key(assignment: Assignment, labels: Mapping[str, str]) -> tuple[object, ...]:
                point = algorithm.points.key(assignment)
                return (point, *sorted(labels.items())) if algorithm.repeats_points else point

            trials = request.trials
            returned: Collection[tuple[object, ...]]
            if algorithm.repeats_points:
                returned = {issued_key(t.assignment, t.labels) for t in trials}
            else:
                returned = algorithm.points.trial_key_set(trials)
            for point_key in [k for k in session.issued if k in returned]:
                del session.issued[point_key]
            pending = [
                TrialView(
                    f"tuner-issued-{serial}", p.assignment, TrialState.PENDING, labels=p.labels
                )
                for serial, p in session.issued.values()
            ]
            if isinstance(trials, TrialTable):
                every: Sequence[TrialView] = trials.extended(pending)
            else:
                every = [*trials, *pending]
            chosen = algorithm.propose_trials(every, request.count, should_stop=should_stop)
            for proposal in chosen:
                session.serial += 1
                session.issued[issued_key(proposal.assignment, proposal.labels)] = (
                    session.serial,
                    proposal,
                )
            while len(session.issued) > ISSUED_LIMIT:
                session.issued.popitem(last=False)
            return SuggestionResult(
                [p.assignment for p in chosen],
                exhausted=session.algorithm.exhausted(len(chosen), request.count),
                state=session.algorithm.state(),
                labels=[p.labels for p in chosen],
            )
