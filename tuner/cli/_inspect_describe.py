"""`tuner describe experiment NAME` and `tuner describe trial NAME`: everything the store
knows about one object, as `kubectl describe` shows it, or as one JSON/YAML document."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Group

from tuner.cli._common import EXIT_OK
from tuner.cli._inspect import HISTORY_ROWS
from tuner.cli._inspect_common import (
    command,
    not_found,
    open_existing_store,
)
from tuner.cli._inspect_data import (
    ExperimentView,
    best_document,
    counts_document,
    lease_is_live,
    metrics_document,
    observation_document,
    trial_document,
)
from tuner.cli._output import NONE, cell, emit, fields, show, table, timestamp, when
from tuner.store import ExperimentNotFoundError, TrialNotFoundError


@command
def describe_experiment(args: argparse.Namespace) -> int:
    with open_existing_store(args.db) as store:
        try:
            view = ExperimentView.of(store.get_experiment(args.name))
            counts = store.count_trials(args.name)
            best = store.best_trial(args.name)
        except ExperimentNotFoundError as e:
            raise not_found(e, store, args.db) from e
    record, spec = view.record, view.record.spec
    objective = view.objective
    algorithm = spec.get("algorithm") or {}
    stopping = spec.get("earlyStopping")
    document: dict[str, Any] = {
        "name": record.name,
        "namespace": record.namespace,
        "annotations": dict(record.annotations or {}),
        "status": record.status.value,
        "reason": record.reason,
        "message": record.message,
        "createdAt": timestamp(record.created_at),
        "startedAt": timestamp(record.started_at),
        "completedAt": timestamp(record.completed_at),
        "updatedAt": timestamp(record.updated_at),
        "lease": {
            "owner": record.lease_owner,
            "expiresAt": timestamp(record.lease_expires_at),
            "live": lease_is_live(record),
        },
        "objective": {
            "type": objective.get("type"),
            "metricName": objective.get("objectiveMetricName"),
            "goal": objective.get("goal"),
            "additionalMetricNames": list(objective.get("additionalMetricNames") or []),
            "additionalObjectives": [
                {"metricName": name, "type": direction.value}
                for name, direction in record.objectives[1:]
            ],
        },
        "algorithm": {
            "name": algorithm.get("algorithmName"),
            "settings": _settings(algorithm.get("algorithmSettings")),
        },
        "earlyStopping": None
        if not stopping
        else {
            "name": stopping.get("algorithmName"),
            "settings": _settings(stopping.get("algorithmSettings")),
        },
        "parallelTrialCount": spec.get("parallelTrialCount"),
        "maxTrialCount": spec.get("maxTrialCount"),
        "maxFailedTrialCount": spec.get("maxFailedTrialCount"),
        "parameters": [
            {
                "name": p.get("name"),
                "type": p.get("parameterType"),
                "feasibleSpace": dict(p.get("feasibleSpace") or {}),
            }
            for p in spec.get("parameters") or []
        ],
        "trialCounts": counts_document(counts),
        "bestTrial": best_document(view, best),
        "spec": spec,
    }
    if args.output != "table":
        emit(document, args.output)
        return EXIT_OK
    show(_experiment_text(document, record))
    return EXIT_OK


def _settings(items: Any) -> dict[str, Any]:
    return {s.get("name"): s.get("value") for s in items or []}


def _experiment_text(doc: dict[str, Any], record: Any) -> Any:
    objective = doc["objective"]
    goal = "" if objective["goal"] is None else f", goal {objective['goal']}"
    extra = objective["additionalMetricNames"]
    lease = doc["lease"]
    controller = NONE
    if lease["owner"]:
        state = "held" if lease["live"] else "expired"
        controller = f"{lease['owner']} (lease {state} until {lease['expiresAt']})"
    params = table("name", "type", "feasible space")
    for p in doc["parameters"]:
        params.add_row(p["name"], p["type"], _space(p["feasibleSpace"]))
    counts = doc["trialCounts"]
    listed = ", ".join(f"{k} {v}" for k, v in counts.items() if v and k != "total")
    best = doc["bestTrial"]
    rows: list[tuple[str, Any]] = [
        ("Name", doc["name"]),
        ("Namespace", doc["namespace"]),
        ("Annotations", ", ".join(f"{k}={v}" for k, v in doc["annotations"].items()) or NONE),
        ("Status", doc["status"]),
        ("Reason", doc["reason"] or ""),
        ("Message", doc["message"] or ""),
        ("Created", when(record.created_at)),
        ("Started", when(record.started_at)),
        ("Completed", when(record.completed_at)),
        ("Controller", controller),
        (
            "Objective",
            f"{objective['type']} {objective['metricName']}{goal}"
            + "".join(f", {o['type']} {o['metricName']}" for o in objective["additionalObjectives"])
            + (f"; also collected: {', '.join(extra)}" if extra else ""),
        ),
        ("Algorithm", _named_settings(doc["algorithm"])),
        ("Early stopping", _named_settings(doc["earlyStopping"])),
        (
            "Budget",
            f"parallel {doc['parallelTrialCount']}, max trials "
            f"{_limit(doc['maxTrialCount'])}, max failed {_limit(doc['maxFailedTrialCount'])}",
        ),
        ("Parameters", params),
        ("Trials", f"{counts['total']}" + (f" ({listed})" if listed else "")),
        (
            "Best trial",
            NONE
            if best is None
            else f"{best['name']} ({objective['metricName']}={cell(best['objectiveValue'])})",
        ),
    ]
    if best is not None:
        params_of_best = fields([(k, str(v)) for k, v in best["parameters"].items()])
        rows.append(("Best parameters", params_of_best))
    return fields(rows)


def _named_settings(algorithm: dict[str, Any] | None) -> str:
    if not algorithm:
        return NONE
    settings = ", ".join(f"{k}={v}" for k, v in algorithm["settings"].items())
    return f"{algorithm['name']}" + (f" ({settings})" if settings else "")


def _limit(value: Any) -> str:
    return "unlimited" if value is None else str(value)


def _space(space: dict[str, Any]) -> str:
    if space.get("list"):
        return ", ".join(map(str, space["list"]))
    text = f"[{space.get('min', '')}, {space.get('max', '')}]"
    if space.get("step"):
        text += f" step {space['step']}"
    if space.get("distribution"):
        text += f" {space['distribution']}"
    return text


@command
def describe_trial(args: argparse.Namespace) -> int:
    with open_existing_store(args.db) as store:
        try:
            trial = store.get_trial(args.name)
            view = ExperimentView.of(store.get_experiment(trial.experiment_name))
            observations = store.get_observations(args.name)
        except (TrialNotFoundError, ExperimentNotFoundError) as e:
            raise not_found(e, store, args.db) from e
    document = trial_document(view, trial)
    document["objectiveMetricName"] = view.metric_name
    document["executor"] = {"kind": trial.executor_kind, "reference": trial.executor_ref}
    document["observations"] = [observation_document(o) for o in observations]
    if args.output != "table":
        emit(document, args.output)
        return EXIT_OK
    metric = view.metric_name or "objective"
    ref = trial.executor_ref or {}
    executor = trial.executor_kind or NONE
    details = [f"supervisor pid {ref['pid']}"] if "pid" in ref else []
    held = (ref.get("resources") or {}).get("devices") or {}
    details += [f"{name} {','.join(map(str, ids))}" for name, ids in held.items()]
    if details:
        executor += f" ({'; '.join(details)})"
    summary = metrics_document(trial)
    metrics: Any = NONE
    if summary:
        metrics = table("name", "min", "max", "latest", right=("min", "max", "latest"))
        for name, m in summary.items():
            metrics.add_row(name, cell(m["min"]), cell(m["max"]), cell(m["latest"]))
    shown = observations[-HISTORY_ROWS:]
    history: Any = NONE
    if shown:
        history = table("timestamp", "metric", "step", "value", right=("step", "value"))
        for obs in shown:
            history.add_row(
                timestamp(obs.timestamp), obs.metric_name, cell(obs.step), cell(obs.value)
            )
        if len(shown) < len(observations):
            history = Group(
                f"the last {len(shown)} of {len(observations)} observations; -o json shows all",
                history,
            )
    show(
        fields(
            [
                ("Name", trial.name),
                ("Experiment", trial.experiment_name),
                ("Status", trial.status.value),
                (
                    "Objective",
                    NONE
                    if trial.objective_value is None
                    else f"{metric}={cell(trial.objective_value)}",
                ),
                ("Parameters", fields([(k, str(v)) for k, v in document["parameters"].items()])),
                ("Metrics", metrics),
                ("Metrics history", history),
                ("Exit code", NONE if trial.exit_code is None else str(trial.exit_code)),
                ("Message", trial.message or ""),
                ("Log", trial.log_path or ""),
                ("Executor", executor),
                ("Created", when(trial.created_at)),
                ("Started", when(trial.started_at)),
                ("Completed", when(trial.completed_at)),
            ]
        )
    )
    return EXIT_OK
