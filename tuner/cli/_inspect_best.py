"""`tuner best EXPERIMENT`: the best trial's parameters as a JSON object with typed values,
ready for a script (`tuner best mnist > params.json`); for a multi-objective experiment,
its Pareto front (a table, or a JSON list)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tuner.cli._common import EXIT_OK, CliError
from tuner.cli._inspect_common import (
    command,
    not_found,
    open_existing_store,
)
from tuner.cli._inspect_data import ExperimentView
from tuner.cli._output import cell, emit, number, show, table
from tuner.store import ExperimentNotFoundError, TrialRecord, TrialStatus, pareto_front


@command
def best(args: argparse.Namespace) -> int:
    with open_existing_store(args.db) as store:
        try:
            view = ExperimentView.of(store.get_experiment(args.experiment))
            objectives = view.record.objectives
            if len(objectives) > 1:
                front = pareto_front(view.record, store.list_trials(args.experiment))
                counts = store.count_trials(args.experiment) if not front else {}
                trial = None
            else:
                trial = store.best_trial(args.experiment)
                counts = store.count_trials(args.experiment) if trial is None else {}
        except ExperimentNotFoundError as e:
            raise not_found(e, store, args.db) from e
    if len(objectives) > 1:
        if not front:
            raise CliError(
                f'experiment "{args.experiment}" has no Pareto front yet: no'
                f" {TrialStatus.SUCCEEDED.value} or {TrialStatus.EARLY_STOPPED.value} trial has a"
                f" value of every objective ({', '.join(n for n, _ in objectives)}) ("
                + _listed(counts)
                + ")"
            )
        # Best first in the first objective: the front read from one end to the other.
        front.sort(key=lambda entry: objectives[0][1].sort_key(entry[1][0]))
        _front(view, [name for name, _ in objectives], front, args.output or "table")
        return EXIT_OK
    if trial is None:
        raise CliError(
            f'experiment "{args.experiment}" has no best trial yet: no'
            f" {TrialStatus.SUCCEEDED.value} or {TrialStatus.EARLY_STOPPED.value} trial has a"
            f' value of objective metric "{view.metric_name}" (' + _listed(counts) + ")"
        )
    if args.output == "table":
        _front(
            view, [view.metric_name or "objective"], [(trial, (trial.objective_value,))], "table"
        )
        return EXIT_OK
    emit(view.typed(trial.parameters), args.output or "json")
    return EXIT_OK


def _listed(counts: dict[TrialStatus, int]) -> str:
    listed = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    return f"trials: {listed}" if listed else "no trials"


def _front(
    view: ExperimentView,
    names: list[str],
    rows: Sequence[tuple[TrialRecord, tuple[float | None, ...]]],
    fmt: str,
) -> None:
    if fmt != "table":
        emit(
            [
                {
                    "name": trial.name,
                    "values": {n: number(v) for n, v in zip(names, values, strict=True)},
                    "parameters": view.typed(trial.parameters),
                }
                for trial, values in rows
            ],
            fmt,
        )
        return
    typed = [view.typed(trial.parameters) for trial, _ in rows]
    parameters = list(dict.fromkeys(p for params in typed for p in params))
    out = table("name", *names, *parameters, right=[*names, *parameters])
    for (trial, values), params in zip(rows, typed, strict=True):
        out.add_row(trial.name, *map(cell, values), *(cell(params.get(p)) for p in parameters))
    show(out)
