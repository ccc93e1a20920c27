"""Conversions between table rows and domain records, and the store's argument checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._domain import (
    ExperimentRecord,
    ExperimentStatus,
    MetricSummary,
    Observation,
    TrialRecord,
    TrialStatus,
)
from ._models import (
    NAME_LENGTH,
    ExperimentRow,
    ObservationRow,
    TrialRow,
    decode_float,
    decode_json_float,
    encode_json_float,
)


def check_name(kind: str, name: str) -> str:
    """Refuse names every backend would not store alike (empty, too long, not a str)."""
    if not isinstance(name, str) or not name or len(name) > NAME_LENGTH:
        raise ValueError(
            f"{kind}: {name!r} must be a non-empty str of at most {NAME_LENGTH} characters"
        )
    return name


def check_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """A copy of an experiment's annotations to store; refuses keys or values that are not
    strings, which the typed Experiment could not read back."""
    for key, value in annotations.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"experiment annotations: {key!r}: {value!r} is not a str: str pair; Kubernetes"
                " annotations map strings to strings (quote numbers in YAML)"
            )
    return dict(annotations)


def experiment_record(row: ExperimentRow) -> ExperimentRecord:
    return ExperimentRecord(
        name=row.name,
        namespace=row.namespace,
        spec=row.spec,
        status=ExperimentStatus(row.status),
        reason=row.reason,
        message=row.message,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        best_trial_name=row.best_trial_name,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        algorithm_settings=tuple((str(n), str(v)) for n, v in row.algorithm_settings or ()),
        annotations=None if row.annotations is None else dict(row.annotations),
    )


def trial_record(row: TrialRow, experiment_name: str) -> TrialRecord:
    return TrialRecord(
        name=row.name,
        experiment_name=experiment_name,
        parameters=dict(row.parameters),
        status=TrialStatus(row.status),
        objective_value=decode_float(row.objective_value, row.objective_nonfinite),
        metrics_summary=decode_summary(row.metrics_summary),
        executor_kind=row.executor_kind,
        executor_ref=row.executor_ref,
        exit_code=row.exit_code,
        message=row.message,
        log_path=row.log_path,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        labels=dict(row.labels or {}),
    )


def trial_record_of(values: Mapping[str, Any], experiment_name: str) -> TrialRecord:
    """`trial_record` of a trial's column values (a Core row's mapping, maybe updated)."""
    return TrialRecord(
        name=values["name"],
        experiment_name=experiment_name,
        parameters=dict(values["parameters"]),
        status=TrialStatus(values["status"]),
        objective_value=decode_float(values["objective_value"], values["objective_nonfinite"]),
        metrics_summary=decode_summary(values["metrics_summary"]),
        executor_kind=values["executor_kind"],
        executor_ref=values["executor_ref"],
        exit_code=values["exit_code"],
        message=values["message"],
        log_path=values["log_path"],
        created_at=values["created_at"],
        started_at=values["started_at"],
        completed_at=values["completed_at"],
        labels=dict(values["labels"] or {}),
    )


def new_trial_record(experiment_name: str, row: Mapping[str, Any]) -> TrialRecord:
    """The record of a trial just inserted with the values of ``row`` (`trial_record`'s
    result for the row the database then holds)."""
    return TrialRecord(
        name=row["name"],
        experiment_name=experiment_name,
        parameters=dict(row["parameters"]),
        status=TrialStatus(row["status"]),
        objective_value=None,
        metrics_summary={},
        executor_kind=None,
        executor_ref=None,
        exit_code=None,
        message=None,
        log_path=None,
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=None,
        labels=dict(row["labels"] or {}),
    )


def observation_record(row: ObservationRow, trial_name: str) -> Observation:
    value = decode_float(row.value, row.value_nonfinite)
    assert value is not None, f"observation {row.id} has neither value nor value_nonfinite"
    return Observation(
        trial_name=trial_name,
        metric_name=row.metric_name,
        value=value,
        step=row.step,
        timestamp=row.timestamp,
    )


def encode_summary(summary: Mapping[str, MetricSummary] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    out: dict[str, Any] = {}
    for name, item in summary.items():
        if not isinstance(item, MetricSummary):
            raise TypeError(f"metrics_summary[{name!r}]: {item!r} is not a MetricSummary")
        out[check_name("metrics_summary key", name)] = {
            "min": encode_json_float(item.min),
            "max": encode_json_float(item.max),
            "latest": encode_json_float(item.latest),
        }
    return out


def decode_summary(stored: Mapping[str, Any] | None) -> dict[str, MetricSummary]:
    if not stored:
        return {}
    return {
        name: MetricSummary(
            min=decode_json_float(item["min"]),
            max=decode_json_float(item["max"]),
            latest=decode_json_float(item["latest"]),
        )
        for name, item in stored.items()
    }
