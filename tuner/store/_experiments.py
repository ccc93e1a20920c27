"""Experiment methods of `Store`: create, read, list, update and delete experiments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select

from ._convert import check_annotations, check_name, experiment_record
from ._domain import ExperimentRecord, ExperimentStatus
from ._errors import ExperimentExistsError, ExperimentNotFoundError
from ._models import ExperimentRow
from ._transactions import Transactions, db_now, experiment_row, forget_trials


class ExperimentMethods(Transactions):
    """Create, read, list, update and delete experiments (a mixin of `Store`)."""

    def create_experiment(
        self,
        name: str,
        namespace: str,
        spec: Mapping[str, Any],
        annotations: Mapping[str, str] | None = None,
    ) -> ExperimentRecord:
        """Store a new experiment in state Created, with its ``metadata.annotations`` (None:
        none). Raises `ExperimentExistsError`."""
        check_name("experiment name", name)
        check_name("experiment namespace", namespace)
        with self._write(f"creating experiment {name!r}", lambda: ExperimentExistsError(name)) as s:
            if s.scalar(select(ExperimentRow.id).where(ExperimentRow.name == name)) is not None:
                raise ExperimentExistsError(name)
            now = db_now(s)
            row = ExperimentRow(
                name=name,
                namespace=namespace,
                spec=dict(spec),
                annotations=check_annotations(annotations or {}),
                status=ExperimentStatus.CREATED.value,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return experiment_record(row)

    def get_experiment(self, name: str) -> ExperimentRecord:
        """The experiment named `name`. Raises `ExperimentNotFoundError`."""
        with self._read(f"reading experiment {name!r}") as s:
            return experiment_record(experiment_row(s, name))

    def list_experiments(
        self, statuses: Iterable[ExperimentStatus] | None = None
    ) -> list[ExperimentRecord]:
        """All experiments (or those in `statuses`), oldest first."""
        stmt = select(ExperimentRow).order_by(ExperimentRow.created_at, ExperimentRow.id)
        if statuses is not None:
            stmt = stmt.where(
                ExperimentRow.status.in_([ExperimentStatus(x).value for x in statuses])
            )
        with self._read("listing experiments") as s:
            return [experiment_record(row) for row in s.scalars(stmt)]

    def update_experiment_spec(
        self,
        name: str,
        spec: Mapping[str, Any],
        annotations: Mapping[str, str] | None = None,
    ) -> ExperimentRecord:
        """Replace the stored spec (e.g. a raised maxTrialCount) and, unless None, the
        stored annotations (e.g. a changed observation cap).

        Raises `ExperimentNotFoundError`.
        """
        with self._write(f"updating the spec of experiment {name!r}") as s:
            row = experiment_row(s, name, for_update=True)
            row.spec = dict(spec)
            if annotations is not None:
                row.annotations = check_annotations(annotations)
            row.updated_at = db_now(s)
            s.flush()
            return experiment_record(row)

    def set_experiment_status(
        self,
        name: str,
        status: ExperimentStatus,
        reason: str | None = None,
        message: str | None = None,
    ) -> ExperimentRecord:
        """Set status, reason and message (None clears them) and the matching timestamps.

        Running sets started_at (first time only); Succeeded/Failed set completed_at;
        Running and Restarting clear completed_at. Raises `ExperimentNotFoundError`.
        """
        status = ExperimentStatus(status)
        with self._write(f"setting the status of experiment {name!r}") as s:
            row = experiment_row(s, name, for_update=True)
            now = db_now(s)
            row.status, row.reason, row.message, row.updated_at = status.value, reason, message, now
            if status is ExperimentStatus.RUNNING and row.started_at is None:
                row.started_at = now
            if status.is_finished():
                row.completed_at = now
            elif status in (ExperimentStatus.RUNNING, ExperimentStatus.RESTARTING):
                row.completed_at = None
            s.flush()
            return experiment_record(row)

    def delete_experiment(self, name: str) -> None:
        """Delete the experiment with its trials and observations.

        Raises `ExperimentNotFoundError`.
        """
        with self._write(f"deleting experiment {name!r}") as s:
            result = s.execute(
                delete(ExperimentRow).where(ExperimentRow.name == name),
                execution_options={"synchronize_session": False},
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ExperimentNotFoundError(name)
            forget_trials(s)  # within a Store.transaction: its trials' rows are gone
