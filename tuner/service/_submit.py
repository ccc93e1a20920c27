"""Submitting experiments to a running controller service: checked like `tuner run` checks
them, then stored in state Created (or edited, under the same resume rules) for the service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tuner.controller import (
    EDITABLE_FIELDS,
    REASON_RESTARTING,
    Controller,
    ExperimentRefusedError,
    ResumeDecision,
    SuggestionClient,
    annotation_changes,
)
from tuner.executors import Executor
from tuner.service._errors import SubmitError
from tuner.spec import Experiment
from tuner.store import ExperimentExistsError, ExperimentStatus, Store


@dataclass(frozen=True)
class Submission:
    """What `apply` did with one experiment.

    ``action``: ``"created"`` (stored in state Created), ``"unchanged"`` (already submitted
    with this spec: nothing written), ``"updated"`` (an unfinished experiment took new
    counts or annotations; the replica driving it restarts it from the stored experiment),
    ``"restarted"`` (a finished experiment restarts with a raised ``maxTrialCount``, as
    `tuner run` would).
    """

    name: str
    action: str
    status: ExperimentStatus
    message: str


@dataclass(frozen=True)
class Checked:
    """An experiment that passed every check, and what storing it will do."""

    experiment: Experiment
    decision: ResumeDecision
    changes: str


def check(
    store: Store,
    experiment: Experiment,
    suggestions: SuggestionClient,
    executor: Executor,
    *,
    db_manager_address: str | None = None,
) -> Checked:
    """Check one experiment as `tuner run` does before writing (the algorithm settings with
    the suggestion service, the template against the executor, the resume rules against a
    stored experiment of the same name). ``db_manager_address``: the controller serves its
    trials that DBManager (``tuner controller --dbmanager-advertise-address``), so Push is
    allowed with any executor. Writes nothing; raises `ExperimentRefusedError`."""
    decision = Controller(
        store, experiment, suggestions, executor, db_manager_address=db_manager_address
    ).prepare()
    changes = ""
    if decision.spec_changed:
        record = store.get_experiment(experiment.metadata.name)
        stored, new = record.spec, experiment.to_dict()["spec"]
        changes = ", ".join(
            [
                f"spec.{key} {stored.get(key)} -> {new.get(key)}"
                for key in EDITABLE_FIELDS
                if stored.get(key) != new.get(key)
            ]
            + annotation_changes(record.annotations, experiment.metadata.annotations)
        )
    return Checked(experiment, decision, changes)


def apply(
    store: Store,
    checked: Checked,
    suggestions: SuggestionClient,
    executor: Executor,
    *,
    db_manager_address: str | None = None,
) -> Submission:
    """Store a checked experiment for the service (``db_manager_address`` as for `check`).
    Raises `ExperimentRefusedError` when a concurrent submission of the same name stored a
    spec this one may not change."""
    experiment, decision = checked.experiment, checked.decision
    name = experiment.metadata.name
    spec = experiment.to_dict()["spec"]
    annotations = experiment.metadata.annotations
    if decision.action == "create":
        try:
            record = store.create_experiment(name, experiment.metadata.namespace, spec, annotations)
        except ExperimentExistsError:  # submitted by someone else since we checked: check again
            again = check(
                store, experiment, suggestions, executor, db_manager_address=db_manager_address
            )
            return apply(store, again, suggestions, executor, db_manager_address=db_manager_address)
        return Submission(name, "created", record.status, "submitted")
    if decision.action == "restart":
        store.update_experiment_spec(name, spec, annotations)
        record = store.set_experiment_status(
            name, ExperimentStatus.RESTARTING, REASON_RESTARTING, "Experiment is restarted"
        )
        return Submission(name, "restarted", record.status, f"restarting: {checked.changes}")
    if decision.spec_changed:
        record = store.update_experiment_spec(name, spec, annotations)
        return Submission(name, "updated", record.status, f"updated: {checked.changes}")
    record = store.get_experiment(name)
    return Submission(name, "unchanged", record.status, "already submitted")


def describe_problem(experiment: Experiment, error: ExperimentRefusedError) -> str:
    """The error as one line that names the experiment."""
    text, name = str(error), experiment.metadata.name
    return text if repr(name) in text else f"experiment {name!r}: {text}"


def submit(
    store: Store,
    experiments: Sequence[Experiment],
    suggestions: SuggestionClient,
    executor: Executor,
) -> list[Submission]:
    """Check every experiment, then store them all. Raises `SubmitError` listing every
    problem (nothing written then)."""
    names = [e.metadata.name for e in experiments]
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems = [f"metadata.name {n!r} appears more than once" for n in repeated]
    checked = []
    for experiment in experiments:
        try:
            checked.append(check(store, experiment, suggestions, executor))
        except ExperimentRefusedError as e:
            problems.append(describe_problem(experiment, e))
    if problems:
        raise SubmitError(problems)
    return [apply(store, c, suggestions, executor) for c in checked]
