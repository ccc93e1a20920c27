"""What the dashboard reads from the store, as plain JSON-ready values: experiment summaries,
the trial table, one trial's details. Read-only: nothing here writes to the store."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tuner import _trial_table
from tuner._experiment_view import ExperimentView as SharedView
from tuner.executors import UnknownExecutorError, get_executor_class
from tuner.space import Direction
from tuner.store import ExperimentRecord, Store, TrialRecord, TrialStatus

LOG_TAIL_BYTES = 64 * 1024
"""How much of the end of a local trial's log file the trial page shows."""


@dataclass(frozen=True)
class ExperimentView(SharedView):
    """The inspection commands' view of an experiment, with what the dashboard adds."""

    @property
    def metric_name(self) -> str:
        return super().metric_name or "objective"

    @property
    def goal_type(self) -> str:
        # A stored spec without a direction this version reads is ranked as minimized.
        return (self.record.direction or Direction.MINIMIZE).value

    @property
    def algorithm(self) -> str | None:
        algorithm = self.record.spec.get("algorithm") or {}
        name = algorithm.get("algorithmName")
        return name if isinstance(name, str) else None

    def table_trial(self, trial: TrialRecord) -> _trial_table.TableTrial:
        strategies = _trial_table.metric_strategies(self.record.spec)
        return _trial_table.TableTrial(
            name=trial.name,
            status=trial.status.value,
            objective=trial.objective_value,
            parameters=self.typed(trial.parameters),
            metrics={
                n: getattr(s, strategies.get(n, "latest")) for n, s in trial.metrics_summary.items()
            },
            started_at=trial.started_at,
            completed_at=trial.completed_at,
            exit_code=trial.exit_code,
            message=trial.message,
        )


def number(value: float | None) -> float | str | None:
    """A float for JSON (which has no NaN or infinities): those become strings."""
    if value is None or not isinstance(value, float) or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def experiment_summary(store: Store, record: ExperimentRecord) -> dict[str, Any]:
    """One row of the experiments list."""
    view = ExperimentView.of(record)
    counts = store.count_trials(record.name)
    best = store.best_trial(record.name)
    end = record.completed_at or datetime.now(timezone.utc)
    duration = None if record.started_at is None else (end - record.started_at).total_seconds()
    return {
        "name": record.name,
        "namespace": record.namespace,
        "status": record.status.value,
        "reason": record.reason,
        "algorithm": view.algorithm,
        "metric": view.metric_name,
        "goal": view.goal_type,
        "trials": {s.value: counts.get(s, 0) for s in TrialStatus if counts.get(s, 0)},
        "total": sum(counts.values()),
        "best": None if best is None else number(best.objective_value),
        "bestTrial": None if best is None else best.name,
        "createdAt": iso(record.created_at),
        "startedAt": iso(record.started_at),
        "durationSeconds": duration,
    }


def trial_table(view: ExperimentView, trials: list[TrialRecord]) -> dict[str, Any]:
    """The experiment page's trial table: the export columns and one row per trial."""
    listed = [view.table_trial(t) for t in trials]
    header = _trial_table.columns(listed)
    return {
        "columns": header,
        "rows": [[_cell(v) for v in _trial_table.row(t, header)] for t in listed],
    }


def _cell(value: Any) -> Any:
    return number(value) if isinstance(value, float) else value


def version(record: ExperimentRecord, counts: Mapping[TrialStatus, int]) -> str:
    """A token that changes whenever the page of the experiment would: polled by the page."""
    parts = [record.status.value, iso(record.updated_at) or "", str(record.best_trial_name)]
    parts += [f"{s.value}={counts.get(s, 0)}" for s in TrialStatus]
    return "|".join(parts)


def trial_details(store: Store, view: ExperimentView, trial: TrialRecord) -> dict[str, Any]:
    """Everything the trial page shows: parameters, metrics and their history, status, log."""
    observations = store.get_observations(trial.name)
    history: dict[str, list[dict[str, Any]]] = {}
    for index, obs in enumerate(observations):
        history.setdefault(obs.metric_name, []).append(
            {
                "step": obs.step if obs.step is not None else index,
                "value": number(obs.value),
                "timestamp": iso(obs.timestamp),
            }
        )
    return {
        "name": trial.name,
        "experiment": trial.experiment_name,
        "status": trial.status.value,
        "message": trial.message,
        "exitCode": trial.exit_code,
        "objective": number(trial.objective_value),
        "metric": view.metric_name,
        "parameters": view.typed(trial.parameters),
        "metrics": {
            n: {"min": number(s.min), "max": number(s.max), "latest": number(s.latest)}
            for n, s in trial.metrics_summary.items()
        },
        "history": history,
        "executor": trial.executor_kind,
        "createdAt": iso(trial.created_at),
        "startedAt": iso(trial.started_at),
        "completedAt": iso(trial.completed_at),
        "log": log_tail(trial),
    }


def log_tail(trial: TrialRecord, limit: int = LOG_TAIL_BYTES) -> str | None:
    """The end of the log file of a trial that ran on its controller's host; None for
    trials of other executors (their logs live elsewhere) or a missing file."""
    if not trial.log_path or not _shares_host(trial.executor_kind):
        return None
    try:
        with open(trial.log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            data = f.read(limit)
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace")
    if len(data) == limit and size > limit:
        # Drop the partial first line.
        text = text.split("\n", 1)[-1]
    return text


def _shares_host(executor_kind: str | None) -> bool:
    """Whether trials of this executor ran on the controller's host (so their log paths are
    files there), asked of the executor's capabilities rather than its name."""
    if executor_kind is None:
        return False
    try:
        return get_executor_class(executor_kind).shares_host
    except (UnknownExecutorError, ImportError):
        return False
