"""Domain values the store hands out: status enums and frozen records, independent of SQL rows."""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tuner.space import Direction, non_dominated
from tuner.spec import API_VERSION, KIND, Experiment


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the only kind the store accepts)."""
    return datetime.now(timezone.utc)


def require_aware(value: datetime, field_name: str) -> datetime:
    """Return `value` in UTC; refuse naive datetimes, whose zone would be a guess."""
    if not isinstance(value, datetime):
        raise TypeError(f"{field_name}: {value!r} is not a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{field_name}: {value.isoformat()} is a naive datetime; pass an aware one,"
            " e.g. datetime.now(timezone.utc)"
        )
    return value.astimezone(timezone.utc)


class _Named(str, enum.Enum):
    """A string enum that prints as its value ("Succeeded"), as Katib spells it."""

    def __str__(self) -> str:
        return str(self.value)


class ExperimentStatus(_Named):
    """An experiment's state; the values are Katib's condition type names."""

    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    def is_finished(self) -> bool:
        """True for the terminal states Succeeded and Failed."""
        return self in (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED)

    def is_active(self) -> bool:
        """True while a controller should be driving the experiment."""
        return not self.is_finished()


class TrialStatus(_Named):
    """A trial's state; the values are Katib's trial condition type names."""

    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"
    EARLY_STOPPED = "EarlyStopped"
    METRICS_UNAVAILABLE = "MetricsUnavailable"

    def is_finished(self) -> bool:
        """True once the trial can no longer change (every state but Created and Running)."""
        return not self.is_active()

    def is_active(self) -> bool:
        """True for Created (waiting to start) and Running."""
        return self in (TrialStatus.CREATED, TrialStatus.RUNNING)

    def counts_for_best(self) -> bool:
        """True for the end states whose objective value may make the trial the best one.

        Katib ranks any trial that reported the objective; we rank only trials that ended
        normally, because a failed or killed trial's last value is a partial result.
        """
        return self in (TrialStatus.SUCCEEDED, TrialStatus.EARLY_STOPPED)


@dataclass(frozen=True)
class MetricSummary:
    """Katib's per-metric summary of a trial's observations: min, max and latest value."""

    min: float
    max: float
    latest: float


@dataclass(frozen=True)
class ExperimentRecord:
    """One stored experiment. `spec` is Katib's camelCase Experiment spec as stored (a plain
    dict); `experiment` is the same parsed into the typed model, which is what code that
    runs or reads an experiment should use."""

    name: str
    namespace: str
    spec: dict[str, Any]
    status: ExperimentStatus
    reason: str | None
    message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    best_trial_name: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    algorithm_settings: tuple[tuple[str, str], ...] = ()
    """The settings the suggestion service returned so far, merged by name (Katib's
    Suggestion ``status.algorithmSettings``); the controller sends them back overriding the
    spec's. Empty until a service returns some."""
    annotations: dict[str, str] | None = None
    """The Experiment's ``metadata.annotations`` as submitted (tuner's extensions live
    there); None for an experiment stored before tuner kept them (schema revision 0005),
    which reads as an Experiment without annotations."""

    @functools.cached_property
    def experiment(self) -> Experiment:
        """The stored Experiment as the typed model (its spec was stored with defaults
        applied). Raises `tuner.spec.SpecError` for a spec this version cannot read."""
        return Experiment.model_validate(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "annotations": dict(self.annotations or {}),
                },
                "spec": self.spec,
            }
        )

    @property
    def direction(self) -> Direction | None:
        """The objective's direction, None when the stored spec has none this version reads.

        Read on its own, so that tools that show any stored experiment (the inspection
        commands) still rank trials of a spec whose other fields no longer parse.
        """
        objective = self.spec.get("objective")
        kind = objective.get("type") if isinstance(objective, Mapping) else None
        try:
            return Direction(kind)
        except ValueError:
            return None

    @property
    def objectives(self) -> list[tuple[str, Direction]]:
        """Every objective as (metric name, direction): ``objectiveMetricName`` first, then
        tuner's ``additionalObjectives``; empty when the stored spec has none this version
        reads (read on its own, as `direction`)."""
        objective = self.spec.get("objective")
        if not isinstance(objective, Mapping):
            return []
        entries: list[Mapping[str, Any]] = [
            {"metricName": objective.get("objectiveMetricName"), "type": objective.get("type")}
        ]
        more = objective.get("additionalObjectives")
        entries += [e for e in more if isinstance(e, Mapping)] if isinstance(more, list) else []
        out = []
        for entry in entries:
            name = entry.get("metricName")
            try:
                direction = Direction(entry.get("type"))
            except ValueError:
                return []
            if not isinstance(name, str) or not name:
                return []
            out.append((name, direction))
        return out

    def objective_values(self, trial: TrialRecord) -> tuple[float, ...] | None:
        """The trial's value of each of `objectives` (each metric under its metric strategy:
        Katib's default is min when minimizing, max when maximizing); None when one is
        missing."""
        objective = self.spec.get("objective")
        listed = objective.get("metricStrategies") if isinstance(objective, Mapping) else None
        strategies = {s.get("name"): s.get("value") for s in listed or [] if isinstance(s, Mapping)}
        values = []
        for name, direction in self.objectives:
            summary = trial.metrics_summary.get(name)
            if summary is None:
                return None
            default = "min" if direction is Direction.MINIMIZE else "max"
            strategy = strategies.get(name) or default
            values.append(float(getattr(summary, strategy if strategy in _STRATEGIES else default)))
        return tuple(values)


_STRATEGIES = ("min", "max", "latest")


def pareto_front(
    experiment: ExperimentRecord, trials: Iterable[TrialRecord]
) -> list[tuple[TrialRecord, tuple[float, ...]]]:
    """The trials no other trial dominates in the experiment's objectives, with their values,
    in the order given. Only trials that may be best (Succeeded, EarlyStopped) with a finite
    value of every objective take part; trials with equal values are all kept."""
    directions = [direction for _, direction in experiment.objectives]
    if not directions:
        return []
    scored = []
    for trial in trials:
        if not trial.status.counts_for_best():
            continue
        values = experiment.objective_values(trial)
        if values is not None and all(math.isfinite(v) for v in values):
            scored.append((trial, values))
    keep = non_dominated([values for _, values in scored], directions)
    return [scored[i] for i in keep]


@dataclass(frozen=True)
class TrialRecord:
    """One stored trial. `parameters` maps parameter name to Katib's wire string."""

    name: str
    experiment_name: str
    parameters: dict[str, str]
    status: TrialStatus
    objective_value: float | None
    metrics_summary: dict[str, MetricSummary]
    executor_kind: str | None
    executor_ref: dict[str, Any] | None
    exit_code: int | None
    message: str | None
    log_path: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    labels: dict[str, str] = field(default_factory=dict)
    """Labels the suggestion service gave the trial (Katib's trial labels), else empty."""


@dataclass(frozen=True)
class Observation:
    """One reported metric value of a trial; `step` is the training step when one is known."""

    trial_name: str
    metric_name: str
    value: float
    step: int | None = None
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise TypeError(f"Observation.value: {self.value!r} is not a number")
        # Ints are accepted for convenience and stored as floats, as every value is.
        object.__setattr__(self, "value", float(self.value))
        if self.step is not None and (
            isinstance(self.step, bool) or not isinstance(self.step, int)
        ):
            raise TypeError(f"Observation.step: {self.step!r} is not an int or None")
        object.__setattr__(
            self, "timestamp", require_aware(self.timestamp, "Observation.timestamp")
        )


@dataclass(frozen=True)
class ObservationDrop:
    """Stored observations of one metric of a trial to delete (a thinned log): those whose
    step is in ``steps``, and, when ``stride`` is set, every one whose step is neither a
    multiple of ``stride`` nor in ``keep``. Observations without a step are never dropped."""

    metric_name: str
    steps: frozenset[int] = frozenset()
    stride: int | None = None
    keep: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.stride is not None and (isinstance(self.stride, bool) or self.stride < 1):
            raise ValueError(f"ObservationDrop.stride: {self.stride!r} is not an int >= 1")


def check_parameters(trial_name: str, parameters: Mapping[str, str]) -> dict[str, str]:
    """Return a plain copy of a trial's wire parameters, refusing non-string names or values."""
    out: dict[str, str] = {}
    for key, value in parameters.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"trial {trial_name!r} parameters[{key!r}]: {value!r} must be a str (Katib's"
                " wire form, e.g. '0.01'); format typed values before storing them"
            )
        out[key] = value
    return out
