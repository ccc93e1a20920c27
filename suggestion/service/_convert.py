"""Where Katib's protobuf messages become domain values and back, field by field: the
experiment's settings and search space, trial conditions, metrics and times, the replies.

Everything is parsed here, once: parameter specs become a `tuner.space.SearchSpace`, trial
conditions become `TrialState`s, metric strings become floats. A malformed request raises
`RequestError` naming the field path, the value and the rule. A request's trials are decoded
by `TrialDecoder` (`_trial_decoder`, as columns; `_trial_reader`, trial by trial) with these
fields' rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

from suggestion.algorithms import TrialState
from suggestion.earlystopping import Comparison, Report, StoppingRule
from suggestion.service import _wire
from tuner.errors import TunerError
from tuner.protos import api_pb2
from tuner.space import (
    OBJECTIVES_SETTING,
    Assignment,
    Direction,
    ObjectivesError,
    Parameter,
    SearchSpace,
    SpaceError,
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
STATES = {
    _Condition.CREATED: TrialState.PENDING,
    _Condition.RUNNING: TrialState.PENDING,
    _Condition.UNKNOWN: TrialState.PENDING,
    _Condition.SUCCEEDED: TrialState.COMPLETED,
    _Condition.EARLYSTOPPED: TrialState.COMPLETED,
    _Condition.FAILED: TrialState.FAILED,
    _Condition.KILLED: TrialState.FAILED,
    _Condition.METRICSUNAVAILABLE: TrialState.FAILED,
}

# Katib's metrics collector writes this when a metric was never reported.
UNAVAILABLE = "unavailable"


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


def objective_value(t: api_pb2.Trial, metric: str, where: str) -> float | None:
    """The trial's objective from its observation; None when missing or not finite."""
    texts = [m.value for m in t.status.observation.metrics if m.name == metric]
    if not texts or texts[-1].strip() == UNAVAILABLE:
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


def parse_time(text: str, where: str) -> datetime | None:
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
        when = parse_time(log.time_stamp, f"metric_logs[{i}].time_stamp") or _EPOCH
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
