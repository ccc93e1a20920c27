"""The columnar decode of a request's trials: `TrialDecoder` reads their wire bytes a level
of nesting at a time for all trials at once, and takes the trials a request repeats from the
previous request's table."""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence

import numpy as np

from suggestion.algorithms import TrialState, TrialTable, TrialView
from suggestion.service import _texts, _wire
from suggestion.service._convert import STATES, UNAVAILABLE, RequestError
from suggestion.service._trial_reader import TrialReader
from tuner.protos import api_pb2
from tuner.space import Parameter, ParameterType, SearchSpace, SpaceError, Value

_STATE_CODES = {int(code): state for code, state in STATES.items()}
_COMPLETED_CODES = [c for c, s in _STATE_CODES.items() if s is TrialState.COMPLETED]
_LARGEST_CODE = max(_STATE_CODES)
_IS_COMPLETED = np.zeros(_LARGEST_CODE + 1, dtype=bool)
_IS_COMPLETED[_COMPLETED_CODES] = True

SMALL_REQUEST = 16
"""Trials up to which a request with nothing to take from the previous one (a delta, a
first request) is decoded trial by trial: the columns' fixed cost (a few NumPy calls per
level of nesting, ~0.25 ms) is more than a parse per trial (~10 us each) below it."""


def trials(
    messages: Iterable[api_pb2.Trial], space: SearchSpace, metric: str | Sequence[str]
) -> list[TrialView]:
    """Every trial of a request as a `TrialView` (a cold decode: nothing remembered)."""
    return TrialDecoder(space, metric).decode(messages)


class TrialDecoder(TrialReader):
    """Decodes trials for one space and objective metric (or several: one per objective, the
    first one's value is ``TrialView.value``) into a `TrialTable`, remembering what it
    decoded.

    Columnar: the trials' wire bytes are read a level of nesting at a time for all trials
    at once (`_wire`), each parameter's values converted and checked as one column (stepless
    doubles: one regular expression over the column, one float per value, the bounds as
    array comparisons; other parameters: once per distinct wire string), states, objective
    values and times likewise; `TrialView`s are built only when an algorithm reads trials
    one by one. A request of an unusual shape (labels, fields repeated, assignments in
    another order...) or with any malformed trial is decoded trial by trial instead
    (`TrialReader.by_trial`), which gives the same views and refuses malformed trials with
    the same messages (the first bad trial's, naming the field path, value and rule).

    Warm: a request repeats the previous request's trials and adds some (Katib only
    appends); the leading trials whose bytes equal the previous request's are taken as they
    were and only the rest is decoded. Thread-safe enough for concurrent calls of one
    experiment: state is only ever replaced whole.
    """

    def __init__(self, space: SearchSpace, metric: str | Sequence[str]) -> None:
        super().__init__(space, metric)
        self._wire_names = [n.encode() for n in space.names]
        self._wire_metrics = [m.encode() for m in self.metrics]
        self._doubles = frozenset(
            p.name for p in space.parameters if p.type is ParameterType.DOUBLE
        )
        # The previous request's trial bytes and their table.
        self._last: tuple[list[bytes], TrialTable] | None = None

    def decode(
        self, messages: Iterable[api_pb2.Trial], *, remember: bool = True
    ) -> list[TrialView]:
        """The views of ``messages`` (see `table`)."""
        return list(self.table([m.SerializeToString() for m in messages], remember=remember))

    def table(self, blobs: Sequence[bytes], *, remember: bool = True) -> TrialTable:
        """The trials serialised in ``blobs`` (`trial_bytes`); not ``remember``: decode them
        without remembering them (a delta request's trials come once per change)."""
        blobs = list(blobs)
        last = self._last if remember else None
        head = 0
        if last is not None:
            before, known = last
            shared = min(len(before), len(blobs))
            if blobs[:shared] == before[:shared]:
                head = shared
            else:
                while blobs[head] == before[head]:
                    head += 1
        table: TrialTable | None = None
        if head == 0 and len(blobs) <= SMALL_REQUEST:
            # The reference decode, which the columns fall back to anyway for any doubt.
            table = self.by_trial(blobs)
            if remember:
                self._last = (blobs, table)
            return table
        table = self._columnar(blobs[head:])
        if table is not None and last is not None:
            table = last[1].joined(head, table)
        if table is not None and (len(set(table.names)) != len(table) or "" in table.names):
            table = None  # the trial-by-trial decode names the first empty or repeated name
        if table is None:
            table = self.by_trial(blobs)
        if remember:
            self._last = (blobs, table)
        return table

    # -- columns ----------------------------------------------------------------------

    def _columnar(self, blobs: list[bytes]) -> TrialTable | None:
        """The table of ``blobs``, or None for a request to decode trial by trial."""
        n, k = len(blobs), len(self._parameters)
        trial = _wire.explode(blobs, _wire.TRIAL)
        names = _wire.exactly_one(trial["name"], n)
        specs = _wire.exactly_one(trial["spec"], n)
        statuses = _wire.at_most_one(trial["status"], n, b"")
        if names is None or specs is None or statuses is None or not k:
            return None
        spec = _wire.explode(specs, _wire.SPEC)
        groups = _wire.exactly_one(spec["parameter_assignments"], n)
        if groups is None or len(spec["labels"]) != n:  # labels: decoded trial by trial
            return None
        texts = _wire.assigned_values(groups, self._wire_names)
        if texts is None:
            return None
        columns, unread = self._spans(texts, n, k)
        floats = [*columns, *unread]
        for j, p in enumerate(self.space.parameters):
            if p.name in columns or p.name in unread:
                continue
            column = self._column(p, texts[j::k])
            if column is None:
                return None
            columns[p.name] = column
            if p.name in self._doubles and set(map(type, column)) <= {float}:
                floats.append(p.name)
        # in the space's order
        columns = {name: columns[name] for name in self._parameters if name in columns}
        status = self._status(statuses, n)
        if status is None:
            return None
        states, values, completed_at, started_at = status
        return TrialTable(
            list(map(bytes.decode, names)),
            states,
            values,
            columns,
            completed_at,  # type: ignore[arg-type]
            started_at,  # type: ignore[arg-type]
            float_columns=floats,
            read_time=self._times.read_time,
            texts=unread,
            order=self._parameters,
        )

    def _spans(
        self, texts: list[bytes], n: int, k: int
    ) -> tuple[dict[str, list[Value]], dict[str, list[bytes]]]:
        """The columns of the stepless doubles (`_bounds`) whose every text is a finite plain
        decimal within the bounds; the others are left to `_column`. ``texts``: ``n`` trials'
        ``k`` values, trial by trial.

        When their texts' first digits show it (`_texts.surely_inside`), the columns are
        returned unread, as texts (second): `TrialTable` reads them (one `float` each) only when
        asked for their values, which random search never is. Else read all at once (one
        `float` per text, one array)."""
        chosen = [j for j, name in enumerate(self._parameters) if name in self._bounds]
        if not chosen or not n:
            return {}, {}
        flat = texts if len(chosen) == k else [t for j in chosen for t in texts[j::k]]
        spans = np.array([self._bounds[self._parameters[j]] for j in chosen])
        if len(chosen) == k:  # trial by trial: a trial's values are a row
            lows, highs = np.tile(spans[:, 0], n), np.tile(spans[:, 1], n)
        else:  # column after column
            lows, highs = np.repeat(spans[:, 0], n), np.repeat(spans[:, 1], n)
        if _texts.surely_inside(flat, lows, highs):
            return {}, {self._parameters[j]: texts[j::k] for j in chosen}
        decimals = _texts.decimals(flat)
        if decimals is None:
            return {}, {}
        numbers: list[Value]
        numbers, array = decimals  # type: ignore[assignment]  # floats are values
        if len(chosen) == k:
            table = array.reshape(n, k)
            columns = [numbers[j::k] for j in chosen]
        else:
            table = array.reshape(len(chosen), n).T
            columns = [numbers[c * n : (c + 1) * n] for c in range(len(chosen))]
        inside = np.all((table >= spans[:, 0]) & (table <= spans[:, 1]), axis=0)
        return {
            self._parameters[j]: column
            for j, column, ok in zip(chosen, columns, inside.tolist(), strict=True)
            if ok
        }, {}

    def _column(self, p: Parameter, texts: list[bytes]) -> list[Value] | None:
        """A parameter's values, or None when one is malformed or outside the space."""
        span = self._bounds.get(p.name)
        if span is not None:
            decimals = _texts.decimals(texts)
            if decimals is not None:
                column, numbers = decimals
                if bool(np.all((numbers >= span[0]) & (numbers <= span[1]))):
                    return column  # type: ignore[return-value]
        memo = self._values[p.name]
        read: dict[bytes, Value] = {}
        for wire in dict.fromkeys(texts):
            text = wire.decode()
            known = memo.get(text)
            if known is None:
                try:
                    parsed = p.parse(text)
                except SpaceError:
                    return None
                if len(memo) > self.MEMO_LIMIT:
                    memo.clear()
                known = memo[text] = (parsed, p.contains(parsed))
            if not known[1]:
                return None
            read[wire] = known[0]
        return list(map(read.__getitem__, texts))

    def _status(
        self, statuses: list[bytes], n: int
    ) -> (
        tuple[
            list[TrialState],
            list[tuple[float, ...]],
            list[str],
            list[str],
        ]
        | None
    ):
        """States, objective values and times of every trial, or None (see `_columnar`)."""
        status = _wire.explode(statuses, _wire.STATUS)
        codes = _wire.last(status["condition"], n, 0, _wire.ENUM_MARK)
        starts = _wire.last(status["start_time"], n, b"")
        ends = _wire.last(status["completion_time"], n, b"")
        observations = _wire.at_most_one(status["observation"], n, b"")
        if codes is None or starts is None or ends is None or observations is None:
            return None
        if max(codes, default=0) > _LARGEST_CODE:
            return None  # an unknown or oddly encoded condition
        states = list(map(_STATE_CODES.__getitem__, codes))
        done = np.flatnonzero(_IS_COMPLETED[np.array(codes, dtype=np.int64)])
        completed_at = self._times_of(ends)
        started_at = self._times_of(starts)
        if completed_at is None or started_at is None:
            return None
        values: list[tuple[float, ...]] = [()] * n
        if not done.size:
            return states, values, completed_at, started_at
        # Only completed trials' metrics are read (as trial by trial): the others' can be
        # anything, and skipping them leaves the common case, one metric per trial.
        done_list = done.tolist()
        observed = (
            observations if len(done_list) == n else list(map(observations.__getitem__, done_list))
        )
        m = len(observed)
        texts: list[list[bytes | None]] = []  # per objective, each completed trial's text
        # The usual case: every completed trial reports the same metrics in the same order
        # (the first one's), each once, the objectives among them; read like the
        # assignments (a `Metric` is a name and a value like a `ParameterAssignment`).
        layout = [
            metric.name.encode() for metric in api_pb2.Observation.FromString(observed[0]).metrics
        ]
        if len(set(layout)) == len(layout) and set(self._wire_metrics) <= set(layout):
            reported: list[bytes | None] | None = _wire.assigned_values(observed, layout)  # type: ignore[assignment]
            if reported is not None:
                k = len(layout)
                texts = [reported[layout.index(metric) :: k] for metric in self._wire_metrics]
        if not texts:
            metrics = _wire.explode(observed, _wire.REPEATED)["items"]
            grouped = _wire.groups(metrics, m)
            if grouped is None:
                return None
            starts_at, ends_at = grouped
            trial_of = np.repeat(np.arange(m), ends_at - starts_at - 1)
            entries = list(filter(_wire.MARK.__ne__, metrics))
            pairs = _wire.explode(entries, _wire.PAIR)
            metric_names = _wire.exactly_one(pairs["name"], len(entries))
            metric_texts = _wire.exactly_one(pairs["value"], len(entries))
            if metric_names is None or metric_texts is None:
                return None
            names = np.array(metric_names, dtype=object)
            entry_texts = np.array(metric_texts, dtype=object)
            for metric in self._wire_metrics:
                where = np.flatnonzero(names == metric)[::-1]  # last first
                trials, first = np.unique(trial_of[where], return_index=True)
                last = np.full(m, None, dtype=object)
                last[trials] = entry_texts[where[first]]
                texts.append(last.tolist())
        fast = [self._numbers(column) for column in texts]
        if all(numbers is not None for numbers in fast):
            rows = zip(*fast, strict=True)
            if m == n:
                values = list(rows)
            else:  # put each completed trial's values in its place, in C
                collections.deque(map(values.__setitem__, done_list, rows), maxlen=0)
            return states, values, completed_at, started_at
        for j, i in enumerate(done_list):
            found: list[float | None] = []
            for column in texts:
                wire = column[j]
                if wire is None:
                    found.append(None)
                    continue
                text = wire.decode()
                if text.strip() == UNAVAILABLE:
                    found.append(None)
                    continue
                try:
                    value = float(text)
                except ValueError:
                    return None  # the trial-by-trial decode names it
                found.append(value if math.isfinite(value) else None)
            if any(v is None for v in found):
                states[i] = TrialState.FAILED  # finished without a usable value of each objective
            else:
                values[i] = tuple(v for v in found if v is not None)
        return states, values, completed_at, started_at

    @staticmethod
    def _numbers(texts: list[bytes | None]) -> list[float] | None:
        """The values of ``texts`` when every one is a finite plain decimal, else None."""
        if None in texts:
            return None
        read = _texts.decimals(texts)  # type: ignore[arg-type]
        return read[0] if read is not None else None

    def _times_of(self, texts: list[bytes]) -> list[str] | None:
        """Times as their wire texts (read when a view is built; an empty one is no time);
        None when one is not a time. A column of plain UTC times (seconds, days up to
        the 28th) is checked by one regular expression, others read one by one."""
        if not any(texts):  # no trial has one (start times, often)
            return [""] * len(texts)
        if not _texts.plain_utc_seconds(texts) and not (
            (data := b"\x00".join(texts)).count(0) == len(texts) - 1
            and _texts.UTC_TIMES.fullmatch(data)
        ):
            for wire in dict.fromkeys(texts):
                try:
                    self._time(wire.decode(), "trials", "time")
                except RequestError:
                    return None
        return list(map(bytes.decode, texts))  # "" reads as no time
