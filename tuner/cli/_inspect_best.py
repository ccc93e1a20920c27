"""`tuner best EXPERIMENT`: the best trial's parameters as a JSON object with typed values,
ready for a script (`tuner best mnist > params.json`)."""

from __future__ import annotations

import argparse

from tuner.cli._common import EXIT_OK, CliError
from tuner.cli._inspect_common import (
    command,
    not_found,
    open_existing_store,
)
from tuner.cli._inspect_data import ExperimentView
from tuner.cli._output import emit
from tuner.store import ExperimentNotFoundError, TrialStatus


@command
def best(args: argparse.Namespace) -> int:
    with open_existing_store(args.db) as store:
        try:
            view = ExperimentView.of(store.get_experiment(args.experiment))
            trial = store.best_trial(args.experiment)
            counts = store.count_trials(args.experiment) if trial is None else {}
        except ExperimentNotFoundError as e:
            raise not_found(e, store, args.db) from e
    if trial is None:
        listed = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        raise CliError(
            f'experiment "{args.experiment}" has no best trial yet: no'
            f" {TrialStatus.SUCCEEDED.value} or {TrialStatus.EARLY_STOPPED.value} trial has a"
            f' value of objective metric "{view.metric_name}" ('
            + (f"trials: {listed}" if listed else "no trials")
            + ")"
        )
    emit(view.typed(trial.parameters), args.output)
    return EXIT_OK
