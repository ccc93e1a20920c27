"""The one place where Katib's protobuf messages become domain values and back.

Everything is parsed here, once: parameter specs become a `tuner.space.SearchSpace`, trial
conditions become `TrialState`s, metric strings become floats. A malformed request raises
`RequestError` naming the field path, the value and the rule.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

import numpy as np

from suggestion.algorithms import TrialState, TrialTable, TrialView
from suggestion.earlystopping import Comparison, Report, StoppingRule
from suggestion.service import _texts, _wire
from tuner.errors import TunerError
from tuner.protos import api_pb2
from tuner.space import (
    OBJECTIVES_SETTING,
    Assignment,
    Direction,
    ObjectivesError,
    Parameter,
    ParameterType,
    SearchSpace,
    SpaceError,
    Value,
    parse_objectives,
)


class RequestError(TunerError, ValueError):
    """A request that breaks the API contract (maps to INVALID_ARGUMENT)."""


_TYPES = {
    api_pb2.DOUBLE: "double",
    api_pb2.INT: "int",
    api_pb2.DISCRETE: "discrete",
    api_pb2.CATEGORICAL: "categorical",
}

# Katib's Distribution enum names -> tuner.space spellings (unset/unspecified -> None).
_DISTRIBUTIONS = {
    "UNIFORM": "uniform",
    "LOG_UNIFORM": "logUniform",
    "NORMAL": "normal",
    "LOG_NORMAL": "logNormal",
}

_Condition = api_pb2.TrialStatus.TrialConditionType
_STATES = {
    _Condition.CREATED: TrialState.PENDING,
    _Condition.RUNNING: TrialState.PENDING,
    _Condition.UNKNOWN: TrialState.PENDING,
    _Condition.SUCCEEDED: TrialState.COMPLETED,
    _Condition.EARLYSTOPPED: TrialState.COMPLETED,
    _Condition.FAILED: TrialState.FAILED,
    _Condition.KILLED: TrialState.FAILED,
    _Condition.METRICSUNAVAILABLE: TrialState.FAILED,
}

# A plain decimal literal, as tuner.space reads doubles (no sign of whitespace, nan or inf).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Katib's metrics collector writes this when a metric was never reported.
_UNAVAILABLE = "unavailable"


def algorithm(experiment: api_pb2.Experiment) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The algorithm's name and its own settings (tuner's objectives setting left out)."""
    spec = experiment.spec.algorithm
    return spec.algorithm_name, tuple(
        (s.name, s.value) for s in spec.algorithm_settings if s.name != OBJECTIVES_SETTING
    )


def objective_count(experiment: api_pb2.Experiment) -> int:
    """How many objectives the experiment has: 1 without tuner's `OBJECTIVES_SETTING` (the
    objective itself is not read then, as Katib's validation does not), else as
    `objectives` reads them."""
    settings = experiment.spec.algorithm.algorithm_settings
    if all(s.name != OBJECTIVES_SETTING for s in settings):
        return 1
    return len(objectives(experiment))


def objectives(experiment: api_pb2.Experiment) -> tuple[tuple[str, Direction], ...]:
    """Every objective as (metric, direction): Katib's objective metric and type first, then
    those of tuner's `OBJECTIVES_SETTING` (tuner.space explains the encoding)."""
    first = (objective_metric(experiment), goal(experiment))
    texts = [
        s.value
        for s in experiment.spec.algorithm.algorithm_settings
        if s.name == OBJECTIVES_SETTING
    ]
    if not texts:
        return (first,)
    where = "experiment.spec.algorithm.algorithmSettings"
    if len(texts) > 1:
        raise RequestError(
            f"{where}: {OBJECTIVES_SETTING} is given {len(texts)} times; send it once"
        )
    try:
        more = parse_objectives(texts[0])
    except ObjectivesError as e:
        raise RequestError(f"{where}: {e}") from e
    out = (first, *more)
    names = [name for name, _ in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RequestError(
            f"{where}: {OBJECTIVES_SETTING} repeats the objective metric(s) {repeated}; each"
            " objective needs its own metric"
        )
    return out


def search_space(experiment: api_pb2.Experiment) -> SearchSpace:
    parameters = []
    for i, p in enumerate(experiment.spec.parameter_specs.parameters):
        where = f"experiment.spec.parameters[{i}]"
        kind = _TYPES.get(p.parameter_type)
        if kind is None:
            raise RequestError(
                f"{where}.parameterType: {api_pb2.ParameterType.Name(p.parameter_type)} is not"
                " one of DOUBLE, INT, DISCRETE, CATEGORICAL"
            )
        fs = p.feasible_space
        try:
            parameters.append(
                Parameter.from_wire(
                    p.name,
                    kind,
                    min=fs.min,
                    max=fs.max,
                    step=fs.step,
                    values=list(fs.list),
                    distribution=_distribution(fs),
                )
            )
        except SpaceError as e:
            raise RequestError(f"{where}: {e}") from e
    space = SearchSpace(tuple(parameters))
    problems = space.problems()
    if problems:
        raise RequestError("; ".join(f"experiment.spec.{problem}" for problem in problems))
    return space


def _distribution(fs: api_pb2.FeasibleSpace) -> str | None:
    # Katib's FeasibleSpace has `Distribution distribution = 5`; a generated module without
    # the field (older proto) means every parameter is unset, i.e. uniform.
    if "distribution" not in fs.DESCRIPTOR.fields_by_name:
        return None
    field = fs.DESCRIPTOR.fields_by_name["distribution"]
    name = field.enum_type.values_by_number[fs.distribution].name
    return _DISTRIBUTIONS.get(name)


def goal(experiment: api_pb2.Experiment) -> Direction:
    kind = experiment.spec.objective.type
    if kind == api_pb2.MINIMIZE:
        return Direction.MINIMIZE
    if kind == api_pb2.MAXIMIZE:
        return Direction.MAXIMIZE
    try:
        name = api_pb2.ObjectiveType.Name(kind)
    except ValueError:  # a number the enum does not define
        name = str(kind)
    raise RequestError(f"experiment.spec.objective.type: {name} is not MINIMIZE or MAXIMIZE")


def objective_metric(experiment: api_pb2.Experiment) -> str:
    name = experiment.spec.objective.objective_metric_name
    if not name:
        raise RequestError("experiment.spec.objective.objective_metric_name: must not be empty")
    return name


def trials(
    messages: Iterable[api_pb2.Trial], space: SearchSpace, metric: str | Sequence[str]
) -> list[TrialView]:
    """Every trial of a request as a `TrialView` (a cold decode: nothing remembered)."""
    return TrialDecoder(space, metric).decode(messages)


def trial_bytes(request: api_pb2.GetSuggestionsRequest) -> list[bytes]:
    """The request's trials serialised, one bytes per trial (what `TrialDecoder.table`
    reads): one serialisation of the request and one C parse, no wrapper per trial."""
    return _wire.trial_bytes(request)


def received_trial_bytes(data: bytes) -> list[bytes]:
    """The trials of a `GetSuggestionsRequest` as received (``data``, which protobuf parsed
    without error), one bytes per trial as sent: `trial_bytes` without serialising the
    request again. A trial sent in an unusual but valid form (fields repeated or out of
    order) is decoded as its parse reads it, as `TrialDecoder.table` does for any trial."""
    return _wire.trials_of(data)


def _check_name(name: str, i: int, names: set[str]) -> None:
    """Refuse an empty or repeated trial name; add it to ``names``."""
    if not name:
        raise RequestError(f"trials[{i}].name: must not be empty")
    if name in names:
        raise RequestError(f"trials[{i}].name: {name!r} appears twice; trial names are unique")
    names.add(name)


_STATE_CODES = {int(code): state for code, state in _STATES.items()}
_COMPLETED_CODES = [c for c, s in _STATE_CODES.items() if s is TrialState.COMPLETED]
_LARGEST_CODE = max(_STATE_CODES)
_IS_COMPLETED = np.zeros(_LARGEST_CODE + 1, dtype=bool)
_IS_COMPLETED[_COMPLETED_CODES] = True


class TrialDecoder:
    """Decodes trials for one space and objective metric (or several: one per objective, the
    first one's value is ``TrialView.value``) into a `TrialTable`, remembering what it
    decoded.

    Columnar: the trials' wire bytes are read a level of nesting at a time for all trials
    at once (`_wire`), each parameter's values converted and checked as one column (stepless
    doubles: one regular expression over the column, one float per value, the bounds as
    array comparisons; other parameters: once per distinct wire string), states, objective
    values and times likewise; `TrialView`s are built only when an algorithm reads trials
    one by one. A request of an unusual shape (labels, fields repeated, assignments in
    another order...) or with any malformed trial is decoded trial by trial instead, which
    gives the same views and refuses malformed trials with the same messages (the first
    bad trial's, naming the field path, value and rule).

    Warm: a request repeats the previous request's trials and adds some (Katib only
    appends); the leading trials whose bytes equal the previous request's are taken as they
    were and only the rest is decoded. Thread-safe enough for concurrent calls of one
    experiment: state is only ever replaced whole.
    """

    MEMO_LIMIT = 200_000
    """Remembered wire strings per parameter and times; beyond it the memo starts over."""

    def __init__(self, space: SearchSpace, metric: str | Sequence[str]) -> None:
        self.space = space
        self.metrics: tuple[str, ...] = (metric,) if isinstance(metric, str) else tuple(metric)
        self.metric = self.metrics[0]
        self._names = set(space.names)
        self._parameters = list(space.names)
        self._wire_names = [n.encode() for n in space.names]
        self._wire_metrics = [m.encode() for m in self.metrics]
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
        self._doubles = frozenset(
            p.name for p in space.parameters if p.type is ParameterType.DOUBLE
        )
        # The previous request's trial bytes and their table.
        self._last: tuple[list[bytes], TrialTable] | None = None
        # Apart from the decoder: the tables it makes keep it to read their times, and a
        # table referring back to the decoder that holds it would be a reference cycle
        # (freed only by the cyclic GC, whose passes over a 1000-trial table cost).
        self._times = _Times(self.MEMO_LIMIT)

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
        table: TrialTable | None = self._columnar(blobs[head:])
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
                if text.strip() == _UNAVAILABLE:
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

    def read_time(self, text: str) -> datetime | None:
        """A time of a trial from its text (checked when decoded)."""
        return self._times.read_time(text)

    # -- trial by trial ---------------------------------------------------------------

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
        state = _STATES.get(t.status.condition, TrialState.PENDING)
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
    """`_time`, remembering each text read (trials often share their times), up to
    ``limit`` texts before starting over."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: dict[str, tuple[datetime | None]] = {}

    def read(self, text: str, where: str, field: str) -> datetime | None:
        known = self._known.get(text)
        if known is None:
            if len(self._known) > self._limit:
                self._known.clear()
            known = self._known[text] = (_time(text, f"{where}.status.{field}"),)
        return known[0]

    def read_time(self, text: str) -> datetime | None:
        """A time of a trial from its text (checked when decoded)."""
        return self.read(text, "trials", "time")


def objective_value(t: api_pb2.Trial, metric: str, where: str) -> float | None:
    """The trial's objective from its observation; None when missing or not finite."""
    texts = [m.value for m in t.status.observation.metrics if m.name == metric]
    if not texts or texts[-1].strip() == _UNAVAILABLE:
        return None
    try:
        value = float(texts[-1])
    except ValueError as e:
        raise RequestError(
            f"{where}.status.observation.metrics[{metric}]: {texts[-1]!r} is not a number"
        ) from e
    return value if math.isfinite(value) else None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _time(text: str, where: str) -> datetime | None:
    if not text:
        return None
    # RFC 3339 as Go writes it: "Z" suffix, up to nanoseconds; Python 3.10 wants neither.
    normalised = _FRACTION.sub(r"\1", text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(normalised)
    except ValueError as e:
        raise RequestError(f"{where}: {text!r} is not an RFC 3339 time") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def count(request: api_pb2.GetSuggestionsRequest) -> int:
    if request.current_request_number < 0:
        raise RequestError(f"current_request_number: {request.current_request_number} is negative")
    return request.current_request_number


def check_count(count: int, limit: int) -> None:
    if count > limit:
        raise RequestError(
            f"current_request_number: {count} is above the limit of {limit} suggestions per"
            " request; ask in smaller batches"
        )


def suggestions_reply(
    assignments: Sequence[Assignment],
    space: SearchSpace,
    state: Sequence[tuple[str, str]] | None = None,
    labels: Sequence[Mapping[str, str]] = (),
) -> api_pb2.GetSuggestionsReply:
    """The reply; ``state``: the algorithm settings to return (``reply.algorithm``)."""
    reply = api_pb2.GetSuggestionsReply()
    for index, assignment in enumerate(assignments):
        item = reply.parameter_assignments.add()
        for name, value in space.format(assignment).items():
            item.assignments.add(name=name, value=value)
        if index < len(labels):
            item.labels.update(labels[index])
    if state is not None:
        reply.algorithm.CopyFrom(
            api_pb2.AlgorithmSpec(
                algorithm_settings=[
                    api_pb2.AlgorithmSetting(name=name, value=value) for name, value in state
                ]
            )
        )
    return reply


def early_stopping(
    spec: api_pb2.EarlyStoppingSpec,
) -> tuple[str, tuple[tuple[str, str], ...]]:
    return spec.algorithm_name, tuple((s.name, s.value) for s in spec.algorithm_settings)


def succeeded(messages: Iterable[api_pb2.Trial]) -> list[api_pb2.Trial]:
    """The trials medianstop learns from: SUCCEEDED only, as in Katib (early-stopped trials
    were cut short, failed ones have nothing)."""
    return [t for t in messages if t.status.condition == _Condition.SUCCEEDED]


def running(messages: Iterable[api_pb2.Trial]) -> list[str]:
    """The names of the trials still running (or about to: created, unknown)."""
    live = (_Condition.CREATED, _Condition.RUNNING, _Condition.UNKNOWN)
    return [t.name for t in messages if t.status.condition in live]


def metric_reports(
    reply: api_pb2.GetObservationLogReply, metric: str, steps: Sequence[str] | None
) -> list[Report]:
    """The metric's logged values with their steps and times, in the DBManager's order.

    ``steps``: one entry per metric log of the reply (tuner's DBManager sends them in the
    trailing metadata ``tuner-steps``); an empty entry, or no ``steps`` at all (a Katib
    DBManager), numbers the metric's reports 0, 1, 2... as tuner's collectors do.
    """
    logs = reply.observation_log.metric_logs
    if steps is not None and len(steps) != len(logs):
        raise RequestError(
            f"tuner-steps: {len(steps)} steps for {len(logs)} metric logs; the DBManager's"
            " reply is inconsistent"
        )
    reports: list[Report] = []
    for i, log in enumerate(logs):
        if log.metric.name != metric:
            continue
        try:
            value = float(log.metric.value)
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        given = steps[i] if steps is not None else ""
        try:
            step = int(given) if given else len(reports)
        except ValueError as e:
            raise RequestError(f"tuner-steps[{i}]: {given!r} is not an integer step") from e
        when = _time(log.time_stamp, f"metric_logs[{i}].time_stamp") or _EPOCH
        reports.append(Report(step, value, when))
    return reports


def metric_values(reply: api_pb2.GetObservationLogReply, metric: str) -> list[float]:
    """The metric's logged values in the order the DBManager returned them (time order)."""
    values = []
    for log in reply.observation_log.metric_logs:
        if log.metric.name != metric:
            continue
        try:
            value = float(log.metric.value)
        except ValueError:
            continue  # "unavailable" and other placeholders carry no value
        if math.isfinite(value):
            values.append(value)
    return values


_COMPARISONS = {
    Comparison.LESS: api_pb2.LESS,
    Comparison.GREATER: api_pb2.GREATER,
    Comparison.EQUAL: api_pb2.EQUAL,
}


def rules_reply(rules: Sequence[StoppingRule]) -> api_pb2.GetEarlyStoppingRulesReply:
    reply = api_pb2.GetEarlyStoppingRulesReply()
    for rule in rules:
        reply.early_stopping_rules.add(
            name=rule.metric,
            value=repr(float(rule.value)),
            comparison=_COMPARISONS[rule.comparison],
            start_step=rule.start_step,
        )
    return reply
