"""Domain values the store hands out: status enums and frozen records, independent of SQL rows."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tuner.space import Direction
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

    @functools.cached_property
    def experiment(self) -> Experiment:
        """The stored Experiment as the typed model (its spec was stored with defaults
        applied). Raises `tuner.spec.SpecError` for a spec this version cannot read."""
        return Experiment.model_validate(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"name": self.name, "namespace": self.namespace},
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


