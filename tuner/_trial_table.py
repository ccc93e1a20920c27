"""One flat table of an experiment's trials, shared by every export: `tuner get trials -o csv`,
`Result.to_dataframe()` and the dashboard's download button name the same columns."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.store import TrialRecord

FIXED_HEAD = ("name", "status", "objective")
FIXED_TAIL = ("started_at", "completed_at", "duration_seconds", "exit_code", "message")
PARAM_PREFIX = "params."
METRIC_PREFIX = "metrics."


@dataclass(frozen=True)
class TableTrial:
    """What a row holds, whichever face it comes from. `metrics` are the values under each
    metric's strategy (Katib's metricStrategies: min, max or latest)."""

    name: str
    status: str
    objective: float | None
    parameters: Mapping[str, Any]
    metrics: Mapping[str, float]
    started_at: datetime | None
    completed_at: datetime | None
    exit_code: int | None
    message: str | None


def metric_strategies(spec: Mapping[str, Any]) -> dict[str, str]:
    """Metric name -> "min" | "max" | "latest" as the spec's metricStrategies say; a metric
    they do not name counts as "latest", as in `Result.trials[i].metrics`."""
    objective = spec.get("objective") or {}
    out: dict[str, str] = {}
    for entry in objective.get("metricStrategies") or []:
        name, value = entry.get("name"), entry.get("value")
        if isinstance(name, str) and value in ("min", "max", "latest"):
            out[name] = value
    return out


def from_record(
    trial: TrialRecord, spec: Mapping[str, Any], parameters: Mapping[str, Any]
) -> TableTrial:
    """A stored trial as a row; `parameters` are its values typed by the search space."""
    strategies = metric_strategies(spec)
    return TableTrial(
        name=trial.name,
        status=trial.status.value,
        objective=trial.objective_value,
        parameters=parameters,
        metrics={
            n: getattr(s, strategies.get(n, "latest")) for n, s in trial.metrics_summary.items()
        },
        started_at=trial.started_at,
        completed_at=trial.completed_at,
        exit_code=trial.exit_code,
        message=trial.message,
    )


def columns(trials: Sequence[TableTrial]) -> list[str]:
    """Header of the table: fixed columns, then every parameter and metric seen, in the order
    first seen (trials of one experiment share them, so this is the spec's order)."""
    params = dict.fromkeys(n for t in trials for n in t.parameters)
    metrics = dict.fromkeys(n for t in trials for n in t.metrics)
    return [
        *FIXED_HEAD,
        *(PARAM_PREFIX + n for n in params),
        *(METRIC_PREFIX + n for n in metrics),
        *FIXED_TAIL,
    ]


def row(trial: TableTrial, header: Sequence[str]) -> list[Any]:
    """One trial's cells in `header` order; absent values are None, times ISO 8601 UTC."""
    duration = None
    if trial.started_at is not None and trial.completed_at is not None:
        duration = (trial.completed_at - trial.started_at).total_seconds()
    fixed: dict[str, Any] = {
        "name": trial.name,
        "status": trial.status,
        "objective": trial.objective,
        "started_at": _iso(trial.started_at),
        "completed_at": _iso(trial.completed_at),
        "duration_seconds": duration,
        "exit_code": trial.exit_code,
        "message": trial.message,
    }
    out: list[Any] = []
    for column in header:
        if column.startswith(PARAM_PREFIX):
            out.append(trial.parameters.get(column[len(PARAM_PREFIX) :]))
        elif column.startswith(METRIC_PREFIX):
            out.append(trial.metrics.get(column[len(METRIC_PREFIX) :]))
        else:
            out.append(fixed[column])
    return out


def to_csv(trials: Iterable[TableTrial]) -> str:
    """The table as CSV text (RFC 4180 quoting; None as an empty cell; NaN as "NaN")."""
    listed = list(trials)
    header = columns(listed)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for trial in listed:
        writer.writerow([_csv_cell(v) for v in row(trial, header)])
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _is_number(value):
        # A spreadsheet would run a cell starting with these as a formula (CSV injection).
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
