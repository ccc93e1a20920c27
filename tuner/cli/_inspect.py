"""The kubectl-like inspection commands: `get`, `describe`, `logs`, `best`, `delete`.

Only their arguments live here; each handler is imported when its command runs (from the
`_inspect_*` modules), so that `tuner validate` does not pay for SQLAlchemy and rich.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from tuner.cli._common import add_db_option, add_output_option

HISTORY_ROWS = 20
"""Observations `describe trial` shows in its table; -o json|yaml has them all."""

SORT_KEYS = ("created", "name", "objective")


def register(sub: argparse._SubParsersAction) -> None:
    _register_get(sub)
    _register_describe(sub)
    _register_logs(sub)
    _register_best(sub)
    _register_delete(sub)


def _handler(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(f"tuner.cli.{module}"), function)(args))

    return run


def _register_get(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "get",
        help="list experiments or the trials of an experiment",
        description="List what the database holds, as kubectl get does: a table, or -o json|yaml.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    experiments = kinds.add_parser(
        "experiments",
        aliases=["experiment", "exp"],
        help="list the experiments",
        description="List the experiments, oldest first: status, reason, trials "
        "succeeded/total, best objective value, age.",
    )
    add_db_option(experiments)
    add_output_option(experiments)
    experiments.set_defaults(handler=_handler("_inspect_get", "get_experiments"))

    trials = kinds.add_parser(
        "trials",
        aliases=["trial"],
        help="list the trials of an experiment",
        description="List the trials of EXPERIMENT: status, objective value, parameters, age.",
    )
    trials.add_argument("experiment", metavar="EXPERIMENT", help="the experiment's name")
    trials.add_argument(
        "--status",
        action="append",
        type=parse_statuses,
        metavar="S",
        help="only trials in status S, Katib's spelling in any case (Created, Running, "
        "Succeeded, Failed, Killed, EarlyStopped, MetricsUnavailable); repeat the option or "
        "separate statuses with commas for several",
    )
    trials.add_argument(
        "--sort-by",
        choices=SORT_KEYS,
        default="created",
        help="row order: created (default, oldest first), name, or objective (best first by "
        "the experiment's goal type; trials without a value last)",
    )
    add_db_option(trials)
    # csv: the columns of Result.to_dataframe() and of the dashboard's download button.
    add_output_option(trials, extra=("csv",))
    trials.set_defaults(handler=_handler("_inspect_get", "get_trials"))


def parse_statuses(text: str) -> list[Any]:
    """`--status`: trial status names in any case, comma-separated, as `TrialStatus` members."""
    from tuner.store import TrialStatus

    by_lower = {s.value.lower(): s for s in TrialStatus}
    out = []
    for word in filter(None, (w.strip() for w in text.split(","))):
        status = by_lower.get(word.lower())
        if status is None:
            raise argparse.ArgumentTypeError(
                f"{word!r} is not a trial status; valid statuses: "
                f"{', '.join(s.value for s in TrialStatus)}"
            )
        out.append(status)
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r} names no trial status")
    return out


def _register_describe(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "describe",
        help="show one experiment or trial in detail",
        description="Show everything the database holds about one experiment or trial.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    experiment = kinds.add_parser(
        "experiment",
        aliases=["experiments", "exp"],
        help="an experiment: spec summary, status, trial counts, best trial",
        description="Show an experiment: objective, algorithm and its settings, early "
        "stopping, budget, parameters; status, reason, message, timestamps, the controller's "
        "lease, trial counts by status and the best trial.",
    )
    experiment.add_argument("name", metavar="NAME", help="the experiment's name")
    add_db_option(experiment)
    add_output_option(experiment)
    experiment.set_defaults(handler=_handler("_inspect_describe", "describe_experiment"))

    trial = kinds.add_parser(
        "trial",
        aliases=["trials"],
        help="a trial: parameters, metrics and their history, exit code, log path",
        description="Show a trial: parameters, status, objective value, metrics summary, "
        f"metrics history (the last {HISTORY_ROWS} observations in the table, all of them "
        "with -o json|yaml), exit code, message, log path, executor and timestamps.",
    )
    trial.add_argument("name", metavar="NAME", help="the trial's name")
    add_db_option(trial)
    add_output_option(trial)
    trial.set_defaults(handler=_handler("_inspect_describe", "describe_trial"))


def _register_logs(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "logs",
        help="print a trial's log (stdout and stderr)",
        description="Print the log file of TRIAL (its stdout and stderr, as the executor "
        "recorded them). With -f, keep printing what is appended until the trial has finished "
        "in the database, then exit 0; Ctrl-C stops following (exit 130).",
    )
    parser.add_argument("trial", metavar="TRIAL", help="the trial's name")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="follow the log until the trial has finished (waits for a trial that has not "
        "started yet)",
    )
    parser.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        default=0.5,
        metavar="S",
        help="with -f, seconds between two looks at the database and the file (default 0.5)",
    )
    add_db_option(parser)
    parser.set_defaults(handler=_handler("_inspect_logs", "logs"))


def _register_best(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "best",
        help="print the best trial's parameters as JSON (multi-objective: the Pareto front)",
        description="Print the parameters of EXPERIMENT's best trial as one JSON object with "
        "typed values (numbers as numbers), e.g. for 'tuner best mnist > params.json'. Exits 1 "
        "when no trial has an objective value yet. 'tuner describe experiment' shows the best "
        "trial's name and metrics. A multi-objective experiment has no single best trial: "
        "its Pareto front (the trials no other trial beats in every objective) is printed, "
        "as a table by default, with -o json as a list of {name, values, parameters}.",
    )
    parser.add_argument("experiment", metavar="EXPERIMENT", help="the experiment's name")
    add_db_option(parser)
    add_output_option(parser, default="json", extra=("table",))
    # Unset: json for one objective, table for a Pareto front.
    parser.set_defaults(output=None)
    parser.set_defaults(handler=_handler("_inspect_best", "best"))


def _register_delete(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "delete",
        help="delete an experiment with its trials and observations",
        description="Delete what the database holds about an experiment.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    experiment = kinds.add_parser(
        "experiment",
        aliases=["experiments", "exp"],
        help="delete an experiment, its trials and their observations",
        description="Delete experiment NAME with its trials and observations (trial log files "
        "stay on disk). Refused while the experiment is Running or Restarting, or while a "
        "controller holds its lease, unless --force.",
    )
    experiment.add_argument("name", metavar="NAME", help="the experiment's name")
    experiment.add_argument(
        "--force",
        action="store_true",
        help="delete even while it runs: the rows go first (a running 'tuner run' sees that "
        "the experiment is gone, kills its trials and exits), then the local trial processes "
        "recorded in the database are killed (SIGTERM, then SIGKILL after the grace period)",
    )
    experiment.add_argument(
        "--wait",
        type=_non_negative_seconds,
        default=15.0,
        metavar="S",
        help="with --force, seconds to wait for killed trial processes to exit (default 15; "
        "0: do not wait)",
    )
    add_db_option(experiment)
    experiment.set_defaults(handler=_handler("_inspect_delete", "delete_experiment"))


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _non_negative_seconds(text: str) -> float:
    value = _seconds(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number of seconds")
    return value
