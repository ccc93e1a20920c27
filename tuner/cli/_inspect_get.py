"""`tuner get experiments` and `tuner get trials EXPERIMENT`: kubectl-style listings."""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Any

from tuner import _trial_table
from tuner.cli._common import EXIT_OK
from tuner.cli._inspect_common import (
    command,
    not_found,
    open_existing_store,
)
from tuner.cli._inspect_data import ExperimentView, experiment_summary, trial_document
from tuner.cli._output import age, cell, emit, show, table
from tuner.space import Direction
from tuner.store import ExperimentNotFoundError, TrialRecord


@command
def get_experiments(args: argparse.Namespace) -> int:
    with open_existing_store(args.db) as store:
        views = [ExperimentView.of(r) for r in store.list_experiments()]
        documents = [experiment_summary(store, view) for view in views]
    if args.output != "table":
        emit(documents, args.output)
        return EXIT_OK
    out = table("name", "status", "reason", "trials", "best", "age", right=("trials", "best"))
    for view, doc in zip(views, documents, strict=True):
        best = doc["bestObjectiveValue"]
        metric = doc["objective"]["metricName"]
        out.add_row(
            doc["name"],
            doc["status"],
            doc["reason"] or "",
            f"{doc['trials']['succeeded']}/{doc['trials']['total']}",
            "" if best is None else f"{metric}={cell(best)}",
            age(view.record.created_at),
        )
    _print_or_empty(out, len(documents), "no experiments in the database")
    return EXIT_OK


@command
def get_trials(args: argparse.Namespace) -> int:
    statuses = None if args.status is None else [s for group in args.status for s in group]
    with open_existing_store(args.db) as store:
        try:
            view = ExperimentView.of(store.get_experiment(args.experiment))
            trials = store.list_trials(args.experiment, statuses)
        except ExperimentNotFoundError as e:
            raise not_found(e, store, args.db) from e
    trials = sort_trials(trials, args.sort_by, view.direction)
    if args.output == "csv":
        spec = view.record.spec
        sys.stdout.write(
            _trial_table.to_csv(
                _trial_table.from_record(t, spec, view.typed(t.parameters)) for t in trials
            )
        )
        return EXIT_OK
    if args.output != "table":
        emit([trial_document(view, t) for t in trials], args.output)
        return EXIT_OK
    names = list(dict.fromkeys(n for t in trials for n in t.parameters))
    metric = view.metric_name or "objective"
    numeric = [n for n in names if n in view.parameters and view.parameters[n].is_numeric]
    out = table("name", "status", metric, *names, "age", right=(metric, *numeric))
    for trial in trials:
        out.add_row(
            trial.name,
            trial.status.value,
            cell(trial.objective_value),
            *(trial.parameters.get(n, "") for n in names),
            age(trial.created_at),
        )
    _print_or_empty(
        out,
        len(trials),
        f'no trials in experiment "{args.experiment}"'
        + ("" if statuses is None else " with that status"),
    )
    return EXIT_OK


def sort_trials(
    trials: list[TrialRecord], key: str, direction: Direction | None
) -> list[TrialRecord]:
    """Trials ordered by `key`; by objective, best first and trials without a value last.

    Sorting is stable, so ties (and all trials without a value) keep creation order.
    """
    if key == "name":
        return sorted(trials, key=lambda t: _natural(t.name))
    if key != "objective":
        return list(trials)
    order = direction or Direction.MINIMIZE

    def rank(trial: TrialRecord) -> tuple[int, float]:
        value = trial.objective_value
        if value is None or math.isnan(value):
            return (1, 0.0)
        return (0, order.sort_key(value))

    return sorted(trials, key=rank)


def _natural(name: str) -> list[Any]:
    # trial-2 before trial-10
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name)]


def _print_or_empty(out: Any, rows: int, empty: str) -> None:
    # As kubectl: the "nothing found" note goes to stderr, so stdout holds only the table.
    if rows:
        show(out)
    else:
        print(empty, file=sys.stderr)
