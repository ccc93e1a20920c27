"""The reference decode of a request's trials: one `api_pb2.Trial` parse per trial, every
field checked with a message naming the trial, the field, the value and the rule.

`TrialDecoder` reads the same trials as columns and must give the same views; it falls back
to this decode for a request of an unusual shape or with a malformed trial.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime

from suggestion.algorithms import TrialState, TrialTable, TrialView
from suggestion.service._convert import STATES, RequestError, objective_value, parse_time
from tuner.protos import api_pb2
from tuner.space import Assignment, ParameterType, SearchSpace, SpaceError, Value

# A plain decimal literal, as tuner.space reads doubles (no sign of whitespace, nan or inf).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _check_name(name: str, i: int, names: set[str]) -> None:
    """Refuse an empty or repeated trial name; add it to ``names``."""
    if not name:
        raise RequestError(f"trials[{i}].name: must not be empty")
    if name in names:
        raise RequestError(f"trials[{i}].name: {name!r} appears twice; trial names are unique")
    names.add(name)


class TrialReader:
    """Decodes trials one at a time for one space and objective metric (or several: one per
    objective, the first one's value is ``TrialView.value``) into a `TrialTable`,
    remembering the wire strings and times it read."""

    MEMO_LIMIT = 200_000
    """Remembered wire strings per parameter and times; beyond it the memo starts over."""

    def __init__(self, space: SearchSpace, metric: str | Sequence[str]) -> None:
        self.space = space
        self.metrics: tuple[str, ...] = (metric,) if isinstance(metric, str) else tuple(metric)
        self.metric = self.metrics[0]
        self._names = set(space.names)
        self._parameters = list(space.names)
        self._values: dict[str, dict[str, tuple[Value, bool]]] = {n: {} for n in space.names}
        # Stepless doubles (random, TPE and BO spaces: every value distinct, a memo only
        # costs) are read inline: a plain decimal literal within [min, max]; anything else
        # takes the general path, which gives the same value or the same error.
        self._bounds: dict[str, tuple[float, float]] = {
            p.name: (p.min, p.max)
            for p in space.parameters
            if p.type is ParameterType.DOUBLE
            and p.step is None
            and p.min is not None
            and p.max is not None
        }
        # Apart from the decoder: the tables it makes keep it to read their times, and a
        # table referring back to the decoder that holds it would be a reference cycle
        # (freed only by the cyclic GC, whose passes over a 1000-trial table cost).
        self._times = _Times(self.MEMO_LIMIT)

    def read_time(self, text: str) -> datetime | None:
        """A time of a trial from its text (checked when decoded)."""
        return self._times.read_time(text)

    def by_trial(self, blobs: Sequence[bytes]) -> TrialTable:
        """The table of ``blobs`` decoded one trial at a time (what a request of an unusual
        shape or with a malformed trial takes; the reference the columns must equal)."""
        names: set[str] = set()
        views = []
        for i, data in enumerate(blobs):
            t = api_pb2.Trial.FromString(data)
            _check_name(t.name, i, names)
            views.append(self._decode(t, f"trials[{i}] ({t.name})"))
        return TrialTable.of(views, self._parameters)

    def _decode(self, t: api_pb2.Trial, where: str) -> TrialView:
        wire = {a.name: a.value for a in t.spec.parameter_assignments.assignments}
        if wire.keys() != self._names:
            try:
                self.space.parse(wire)  # raises naming the unknown or missing parameters
            except SpaceError as e:
                raise RequestError(f"{where}.spec.parameterAssignments: {e}") from e
        assignment: Assignment = {}
        outside: list[str] = []
        bounds = self._bounds
        for p in self.space.parameters:
            text = wire[p.name]
            span = bounds.get(p.name)
            if span is not None and _DECIMAL.fullmatch(text):
                number = float(text)
                if math.isfinite(number) and span[0] <= number <= span[1]:
                    assignment[p.name] = number
                    continue
            memo = self._values[p.name]
            known = memo.get(text)
            if known is None:
                try:
                    parsed = p.parse(text)
                except SpaceError as e:
                    raise RequestError(f"{where}.spec.parameterAssignments: {e}") from e
                if len(memo) > self.MEMO_LIMIT:
                    memo.clear()
                known = memo[text] = (parsed, p.contains(parsed))
            assignment[p.name] = known[0]
            if not known[1]:
                outside.append(p.name)
        if outside:
            raise RequestError(
                f"{where}.spec.parameterAssignments: "
                + ", ".join(f"{n}={wire[n]!r}" for n in outside)
                + " not in the experiment's search space"
            )
        state = STATES.get(t.status.condition, TrialState.PENDING)
        values: tuple[float, ...] = ()
        if state is TrialState.COMPLETED:
            found = [objective_value(t, metric, where) for metric in self.metrics]
            if any(v is None for v in found):
                state = TrialState.FAILED  # finished without a usable value of each objective
            else:
                values = tuple(v for v in found if v is not None)
        status = t.status
        completed_at = self._time(status.completion_time, where, "completionTime")
        started_at = self._time(status.start_time, where, "startTime")
        return TrialView(
            t.name,
            assignment,
            state,
            values[0] if values else None,
            completed_at,
            started_at=started_at,
            values=values,
            labels=dict(t.spec.labels),
        )

    def _time(self, text: str, where: str, field: str) -> datetime | None:
        return self._times.read(text, where, field)


class _Times:
    """`parse_time`, remembering each text read (trials often share their times), up to
    ``limit`` texts before starting over."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: dict[str, tuple[datetime | None]] = {}

    def read(self, text: str, where: str, field: str) -> datetime | None:
        known = self._known.get(text)
        if known is None:
            if len(self._known) > self._limit:
                self._known.clear()
            known = self._known[text] = (parse_time(text, f"{where}.status.{field}"),)
        return known[0]

    def read_time(self, text: str) -> datetime | None:
        """A time of a trial from its text (checked when decoded)."""
        return self.read(text, "trials", "time")
