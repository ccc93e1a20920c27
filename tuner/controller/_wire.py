"""Convert between the controller's domain values and Katib's ``api.v1.beta1`` messages.

The one place where the spec model and stored trials become the Suggestion and
EarlyStopping services' requests, and early-stopping rules come back as `StoppingRule`s
(the service's side of the conversion lives in the suggestion service). Only the
suggestion client calls it: the loop keeps domain objects.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from tuner.controller._rules import StoppingRule
from tuner.protos import api_pb2
from tuner.space import OBJECTIVES_SETTING, Direction, format_objectives
from tuner.spec import Experiment, MetricStrategyType
from tuner.store import MetricSummary, TrialRecord, TrialStatus

log = logging.getLogger(__name__)

_PARAMETER_TYPES = {
    "double": api_pb2.DOUBLE,
    "int": api_pb2.INT,
    "discrete": api_pb2.DISCRETE,
    "categorical": api_pb2.CATEGORICAL,
}

_CONDITIONS = {
    TrialStatus.CREATED: api_pb2.TrialStatus.CREATED,
    TrialStatus.RUNNING: api_pb2.TrialStatus.RUNNING,
    TrialStatus.SUCCEEDED: api_pb2.TrialStatus.SUCCEEDED,
    TrialStatus.FAILED: api_pb2.TrialStatus.FAILED,
    TrialStatus.KILLED: api_pb2.TrialStatus.KILLED,
    TrialStatus.EARLY_STOPPED: api_pb2.TrialStatus.EARLYSTOPPED,
    TrialStatus.METRICS_UNAVAILABLE: api_pb2.TrialStatus.METRICSUNAVAILABLE,
}


def objective_proto(experiment: Experiment) -> api_pb2.ObjectiveSpec:
    objective = experiment.spec.objective
    return api_pb2.ObjectiveSpec(
        type=api_pb2.MAXIMIZE if objective.type is Direction.MAXIMIZE else api_pb2.MINIMIZE,
        goal=objective.goal if objective.goal is not None else 0.0,
        objective_metric_name=objective.objective_metric_name,
        # The further objectives' metrics too: Katib collects and records these names.
        additional_metric_names=objective.metric_names[1:],
    )


def experiment_proto(experiment: Experiment) -> api_pb2.Experiment:
    """The experiment as Katib's controller sends it to a suggestion service."""
    spec = experiment.spec
    parameters = []
    for p in spec.parameters:
        space = p.feasible_space
        feasible = api_pb2.FeasibleSpace(
            min=space.min or "",
            max=space.max or "",
            step=space.step or "",
            list=list(space.values),
        )
        if space.distribution is not None:
            _set_distribution(feasible, space.distribution.value)
        parameters.append(
            api_pb2.ParameterSpec(
                name=p.name,
                parameter_type=_PARAMETER_TYPES[p.parameter_type.value],
                feasible_space=feasible,
            )
        )
    message = api_pb2.ExperimentSpec(
        parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=parameters),
        objective=objective_proto(experiment),
        algorithm=api_pb2.AlgorithmSpec(
            algorithm_name=spec.algorithm.algorithm_name,
            algorithm_settings=[
                api_pb2.AlgorithmSetting(name=s.name, value=s.value)
                for s in spec.algorithm.algorithm_settings
            ]
            + _objectives_settings(experiment),
        ),
        parallel_trial_count=spec.parallel_trial_count,
        max_trial_count=spec.max_trial_count or 0,
    )
    if spec.early_stopping is not None:
        message.early_stopping.CopyFrom(
            api_pb2.EarlyStoppingSpec(
                algorithm_name=spec.early_stopping.algorithm_name,
                algorithm_settings=[
                    api_pb2.EarlyStoppingSetting(name=s.name, value=s.value)
                    for s in spec.early_stopping.algorithm_settings
                ],
            )
        )
    return api_pb2.Experiment(name=experiment.metadata.name, spec=message)


def _objectives_settings(experiment: Experiment) -> list[api_pb2.AlgorithmSetting]:
    """The objectives after the first, as the one algorithm setting tuner's suggestion server
    reads them from (Katib's ObjectiveSpec has room for one; see tuner.space)."""
    further = experiment.spec.objective.objectives[1:]
    if not further:
        return []
    return [api_pb2.AlgorithmSetting(name=OBJECTIVES_SETTING, value=format_objectives(further))]


class Messages:
    """The messages of one experiment and of its trials as last sent, reused while the
    domain objects are the same ones: the controller's loop replaces a trial's record when
    it changes, so a request converts only the trials that changed since the one before.

    Holds the messages of the last experiment and the trials of its last request only.
    Not thread-safe.
    """

    def __init__(self) -> None:
        self._experiment: Experiment | None = None
        self._message = api_pb2.Experiment()
        self._objective = api_pb2.ObjectiveSpec()
        self._trials: dict[str, tuple[TrialRecord, api_pb2.Trial]] = {}

    def experiment(self, experiment: Experiment) -> api_pb2.Experiment:
        if experiment is not self._experiment:
            self._message = experiment_proto(experiment)
            self._objective = objective_proto(experiment)
            self._trials = {}
            self._experiment = experiment
        return self._message

    def trials(
        self, experiment: Experiment, records: Sequence[TrialRecord], *, keep: bool = True
    ) -> list[api_pb2.Trial]:
        """The messages of ``records``, remembered in place of the last ones unless not
        ``keep`` (a delta request's trials: each is sent once per change, and remembering
        them would hold a message per trial of the experiment)."""
        self.experiment(experiment)
        if not keep:
            return [trial_proto(experiment, r, self._objective) for r in records]
        last, kept = self._trials, {}
        for record in records:
            hit = last.get(record.name)
            if hit is not None and hit[0] is record:
                kept[record.name] = hit
            else:
                kept[record.name] = (record, trial_proto(experiment, record, self._objective))
        self._trials = kept
        return [kept[record.name][1] for record in records]


# Katib's newer API has `Distribution distribution = 5` in FeasibleSpace (UNIFORM,
# LOG_UNIFORM, NORMAL, LOG_NORMAL); an older generated module lacks it and then sends none.
_DISTRIBUTION_NAMES = {
    "uniform": "UNIFORM",
    "logUniform": "LOG_UNIFORM",
    "normal": "NORMAL",
    "logNormal": "LOG_NORMAL",
}


def _set_distribution(feasible: api_pb2.FeasibleSpace, value: str) -> None:
    field = feasible.DESCRIPTOR.fields_by_name.get("distribution")
    if field is None or field.enum_type is None:
        return
    number = field.enum_type.values_by_name.get(_DISTRIBUTION_NAMES[value])
    if number is not None:
        feasible.distribution = number.number


def strategy_value(summary: MetricSummary, strategy: MetricStrategyType) -> float:
    """A metric's trial value under a metric strategy (Katib's ``getObjectiveMetricValue``)."""
    if strategy is MetricStrategyType.MIN:
        return summary.min
    if strategy is MetricStrategyType.MAX:
        return summary.max
    return summary.latest


def format_float(value: float) -> str:
    """Katib's metric wire form: a decimal string ("nan", "inf" for the non-finite)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def trial_proto(
    experiment: Experiment, trial: TrialRecord, objective: api_pb2.ObjectiveSpec | None = None
) -> api_pb2.Trial:
    """A stored trial as Katib's suggestion client sends it: assignments, condition, and each
    metric's value under its metric strategy as the observation."""
    metrics = _observation(experiment, trial.metrics_summary)
    status = api_pb2.TrialStatus(
        condition=_CONDITIONS[trial.status],
        start_time=_rfc3339(trial.started_at),
        completion_time=_rfc3339(trial.completed_at),
        observation=api_pb2.Observation(metrics=metrics),
    )
    return api_pb2.Trial(
        name=trial.name,
        spec=api_pb2.TrialSpec(
            objective=objective if objective is not None else objective_proto(experiment),
            parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(
                assignments=[
                    api_pb2.ParameterAssignment(name=k, value=v)
                    for k, v in trial.parameters.items()
                ]
            ),
            labels=trial.labels,
        ),
        status=status,
    )


def _observation(
    experiment: Experiment, summary: Mapping[str, MetricSummary]
) -> list[api_pb2.Metric]:
    objective = experiment.spec.objective
    out = []
    for name in objective.metric_names:
        if name in summary:
            value = strategy_value(summary[name], objective.strategy(name))
            out.append(api_pb2.Metric(name=name, value=format_float(value)))
    return out


def _rfc3339(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat().replace("+00:00", "Z")


_COMPARISONS = {api_pb2.LESS: "below", api_pb2.GREATER: "above", api_pb2.EQUAL: "equal to"}


def parse_rules(messages: Iterable[api_pb2.EarlyStoppingRule]) -> list[StoppingRule]:
    """The service's rules; one that cannot be applied (unknown comparison, a value that is
    not a number) is left out with a warning rather than stopping trials on a guess."""
    rules = []
    for i, message in enumerate(messages):
        comparison = _COMPARISONS.get(message.comparison)
        try:
            value = float(message.value)
        except ValueError:
            value = math.nan
        if comparison is None or not math.isfinite(value) or not message.name:
            log.warning(
                "early_stopping_rules[%d]: %r is not a rule tuner can apply; ignored",
                i,
                str(message).replace("\n", " "),
            )
            continue
        rules.append(StoppingRule(message.name, value, comparison, max(message.start_step, 0)))
    return rules


def parse_stops(text: str | None) -> dict[str, str]:
    """The ``tuner-stop-trials`` metadata: a JSON object trial name -> why; anything else is
    ignored with a warning (no trial is stopped on a reply tuner cannot read)."""
    if not text:
        return {}
    try:
        stops = json.loads(text)
    except ValueError:
        stops = None
    if not isinstance(stops, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in stops.items()
    ):
        log.warning("tuner-stop-trials: %.200r is not a JSON object of strings; ignored", text)
        return {}
    return stops
