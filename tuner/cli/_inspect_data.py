"""Store records turned into the documents the inspection commands print: parameters with
their real types (parsed with the experiment's search space), camelCase keys, ISO times."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tuner._experiment_view import ExperimentView
from tuner.cli._output import number, timestamp
from tuner.store import (
    ExperimentRecord,
    ExperimentStatus,
    Observation,
    Store,
    TrialRecord,
    TrialStatus,
)


def lease_is_live(record: ExperimentRecord, now: datetime | None = None) -> bool:
    """Whether a controller holds the experiment's lease and it has not expired."""
    if record.lease_owner is None or record.lease_expires_at is None:
        return False
    return record.lease_expires_at > (now or datetime.now(timezone.utc))


def is_running(record: ExperimentRecord) -> bool:
    """Whether a controller may be driving the experiment right now."""
    return record.status in (ExperimentStatus.RUNNING, ExperimentStatus.RESTARTING) or (
        lease_is_live(record)
    )


def counts_document(counts: dict[TrialStatus, int]) -> dict[str, int]:
    """Trial counts keyed by Katib's status names, every status present, plus `total`."""
    out = {status.value: counts.get(status, 0) for status in TrialStatus}
    out["total"] = sum(counts.values())
    return out


def metrics_document(trial: TrialRecord) -> dict[str, dict[str, Any]]:
    return {
        name: {"min": number(m.min), "max": number(m.max), "latest": number(m.latest)}
        for name, m in trial.metrics_summary.items()
    }


def trial_document(view: ExperimentView, trial: TrialRecord) -> dict[str, Any]:
    """One trial as `get trials -o json` prints it."""
    return {
        "name": trial.name,
        "experiment": trial.experiment_name,
        "status": trial.status.value,
        "parameters": view.typed(trial.parameters),
        "objectiveValue": number(trial.objective_value),
        "metrics": metrics_document(trial),
        "exitCode": trial.exit_code,
        "message": trial.message,
        "logPath": trial.log_path,
        "createdAt": timestamp(trial.created_at),
        "startedAt": timestamp(trial.started_at),
        "completedAt": timestamp(trial.completed_at),
    }


def observation_document(obs: Observation) -> dict[str, Any]:
    return {
        "metricName": obs.metric_name,
        "value": number(obs.value),
        "step": obs.step,
        "timestamp": timestamp(obs.timestamp),
    }


def best_document(view: ExperimentView, best: TrialRecord | None) -> dict[str, Any] | None:
    if best is None:
        return None
    return {
        "name": best.name,
        "parameters": view.typed(best.parameters),
        "objectiveValue": number(best.objective_value),
        "metrics": metrics_document(best),
    }


def experiment_summary(store: Store, view: ExperimentView) -> dict[str, Any]:
    """One experiment as `get experiments -o json` prints it."""
    record = view.record
    counts = store.count_trials(record.name)
    best = store.best_trial(record.name)
    objective = view.objective
    return {
        "name": record.name,
        "namespace": record.namespace,
        "annotations": dict(record.annotations or {}),
        "status": record.status.value,
        "reason": record.reason,
        "objective": {
            "type": objective.get("type"),
            "metricName": objective.get("objectiveMetricName"),
            "goal": objective.get("goal"),
        },
        "trials": {
            "succeeded": counts.get(TrialStatus.SUCCEEDED, 0),
            "total": sum(counts.values()),
        },
        "bestTrial": None if best is None else best.name,
        "bestObjectiveValue": None if best is None else number(best.objective_value),
        "createdAt": timestamp(record.created_at),
        "startedAt": timestamp(record.started_at),
        "completedAt": timestamp(record.completed_at),
    }
