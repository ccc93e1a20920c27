"""Trial-writing methods of `Store`: create, update and finish trials, the controller's hot
path, on Core statements built once."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from tuner.space import Direction

from ._convert import check_name, encode_summary, new_trial_record, trial_record_of
from ._domain import MetricSummary, TrialRecord, TrialStatus, check_parameters, require_aware
from ._errors import ExperimentNotFoundError, StoreError, TrialExistsError, TrialNotFoundError
from ._models import ExperimentRow, TrialRow, decode_float, encode_float
from ._transactions import Transactions, connection, db_now, expire_cached, remember_trial

# Core statements of the trial writes on the controller's hot path, built once: a trial's
# columns with its experiment's name and best trial, both rows locked (on SQLite the
# write transaction holds the database's lock anyway). Locking the experiment row
# serializes the finishes of its trials, so two cannot both think they beat the same
# incumbent.
_TRIALS = cast(Table, TrialRow.__table__)
_EXPERIMENTS = cast(Table, ExperimentRow.__table__)
_LOCK_TRIAL = (
    select(
        *_TRIALS.c,
        _EXPERIMENTS.c.name.label("experiment_name"),
        _EXPERIMENTS.c.best_trial_name.label("experiment_best_trial_name"),
    )
    .join_from(_TRIALS, _EXPERIMENTS, _TRIALS.c.experiment_id == _EXPERIMENTS.c.id)
    .where(_TRIALS.c.name == bindparam("name"))
    .with_for_update()
)
# The same with the experiment's spec, whose objective type is the default direction.
_LOCK_TRIAL_WITH_SPEC = _LOCK_TRIAL.add_columns(_EXPERIMENTS.c.spec.label("experiment_spec"))
# One of ``names`` already taken, or NULL. ``min()``, not ``LIMIT 1``: with a limit,
# PostgreSQL's planner counts on meeting one of the (unique, so "likely present") names early
# and scans the table, the whole of it as the names are new; in a table it has not analyzed
# (autovacuum off) that scan stays, and each creation reads every trial stored so far.
_TAKEN_NAME = select(func.min(_TRIALS.c.name)).where(
    _TRIALS.c.name.in_(bindparam("names", expanding=True))
)


def _lock_experiment_id_and_taken(taken: Any) -> Any:
    """Both in one round trip (the lock covers the experiment row only: a subquery's rows
    are not locked by the outer FOR UPDATE on PostgreSQL or MySQL)."""
    return (
        select(_EXPERIMENTS.c.id, taken.scalar_subquery())
        .where(_EXPERIMENTS.c.name == bindparam("name"))
        .with_for_update(of=_EXPERIMENTS)
    )


_LOCK_EXPERIMENT_ID_AND_TAKEN_NAME = _lock_experiment_id_and_taken(_TAKEN_NAME)
# Batches of up to this many names (the controller's: one per free parallel slot) have
# statements of their own, see `_lock_experiment_id_and_taken_of`.
_FIXED_NAMES = 16


@functools.cache
def _lock_experiment_id_and_taken_of(count: int) -> Any:
    """`_LOCK_EXPERIMENT_ID_AND_TAKEN_NAME` for a batch of ``count`` names, each its own
    bound parameter (``n0``, ``n1``...): an expanding IN list is rendered anew at every
    execution, a fixed one is compiled once."""
    column = _TRIALS.c.name
    names: list[BindParameter[str]] = [bindparam(f"n{i}") for i in range(count)]
    taken = column == names[0] if count == 1 else column.in_(names)
    return _lock_experiment_id_and_taken(select(func.min(column)).where(taken))


_INSERT_TRIALS = insert(_TRIALS)
_SET_ALGORITHM_SETTINGS = (
    update(_EXPERIMENTS)
    .where(_EXPERIMENTS.c.id == bindparam("experiment_id"))
    .values(algorithm_settings=bindparam("settings"), updated_at=bindparam("now"))
)
# SET gets the columns named by the parameters.
_UPDATE_TRIAL = update(_TRIALS).where(_TRIALS.c.id == bindparam("trial_id"))
_OBJECTIVE_OF = select(_TRIALS.c.objective_value, _TRIALS.c.objective_nonfinite).where(
    _TRIALS.c.name == bindparam("name")
)
_SET_BEST = (
    update(_EXPERIMENTS)
    .where(_EXPERIMENTS.c.id == bindparam("experiment_id"))
    .values(best_trial_name=bindparam("best"), updated_at=bindparam("now"))
)


class TrialWriteMethods(Transactions):
    """Create trials, change them and finish them, keeping the experiment's best trial
    current (a mixin of `Store`)."""

    def create_trials(
        self,
        experiment: str,
        trials: Iterable[tuple[str, Mapping[str, str]]],
        status: TrialStatus = TrialStatus.CREATED,
        *,
        algorithm_settings: Sequence[tuple[str, str]] | None = None,
        labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> list[TrialRecord]:
        """Store new trials `(name, {parameter: wire string})` of `experiment`, all or none;
        ``labels`` maps a trial's name to its labels (from the suggestion service).

        `algorithm_settings`, when given, replace the experiment's stored
        `ExperimentRecord.algorithm_settings` in the same transaction: the suggestions and the
        algorithm state that produced them are stored together or not at all.

        Raises `TrialExistsError` (a name already stored or repeated in the batch; nothing is
        stored then) and `ExperimentNotFoundError`.
        """
        status = TrialStatus(status)
        batch = [(check_name("trial name", n), check_parameters(n, p)) for n, p in trials]
        seen: set[str] = set()
        for trial_name, _ in batch:
            if trial_name in seen:
                raise TrialExistsError(trial_name, "is repeated in the batch")
            seen.add(trial_name)
        names = [n for n, _ in batch]
        conflict = lambda: TrialExistsError(", ".join(names), "(one of them) already exists")  # noqa: E731
        with self._write(f"creating trials of experiment {experiment!r}", conflict) as s:
            # Core statements: no ORM objects are needed (nor the new rows' ids).
            conn = connection(s)
            # The id alone (locked: creations of one experiment are serialized), with the
            # first of the first names already taken: one statement for the usual batch.
            chunks = list(_chunks(names, 500)) or [[]]
            if 0 < len(names) <= _FIXED_NAMES:
                lock = conn.execute(
                    _lock_experiment_id_and_taken_of(len(names)),
                    {"name": experiment, **{f"n{i}": n for i, n in enumerate(names)}},
                )
            else:
                lock = conn.execute(
                    _LOCK_EXPERIMENT_ID_AND_TAKEN_NAME,
                    {"name": experiment, "names": list(chunks[0])},
                )
            found = lock.one_or_none()
            if found is None:
                raise ExperimentNotFoundError(experiment)
            exp_id, taken = found
            for chunk in chunks[1:]:
                if taken is not None:
                    break
                taken = conn.execute(_TAKEN_NAME, {"names": list(chunk)}).scalar()
            if taken is not None:
                raise TrialExistsError(taken)
            now = db_now(s)
            started = now if status is TrialStatus.RUNNING else None
            rows = [
                {
                    "experiment_id": exp_id,
                    "name": n,
                    "parameters": p,
                    "labels": dict((labels or {}).get(n) or {}) or None,
                    "status": status.value,
                    "created_at": now,
                    "started_at": started,
                }
                for n, p in batch
            ]
            if rows:
                conn.execute(_INSERT_TRIALS, rows)
            if algorithm_settings is not None:
                conn.execute(
                    _SET_ALGORITHM_SETTINGS,
                    {
                        "experiment_id": exp_id,
                        "settings": [[str(n), str(v)] for n, v in algorithm_settings],
                        "now": now,
                    },
                )
                expire_cached(s, ExperimentRow, exp_id)
            return [new_trial_record(experiment, row) for row in rows]

    def update_trial(
        self,
        name: str,
        *,
        status: TrialStatus | None = None,
        executor_kind: str | None = None,
        executor_ref: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        message: str | None = None,
        log_path: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
    ) -> TrialRecord:
        """Change the given fields of a trial; None leaves a field as it is.

        `status` may only be Created or Running here (Running sets started_at if unset);
        end a trial with `finish_trial`, which also keeps the best trial current.
        Raises `TrialNotFoundError`.
        """
        status = None if status is None else TrialStatus(status)
        if status is not None and not status.is_active():
            raise ValueError(
                f"update_trial status: {status.value} is a finished state;"
                " use finish_trial to end a trial"
            )
        with self._write(f"updating trial {name!r}") as s:
            row = _lock_trial(s, name)
            changes: dict[str, Any] = {}
            if status is not None:
                changes["status"] = status.value
                if (
                    status is TrialStatus.RUNNING
                    and row["started_at"] is None
                    and started_at is None
                ):
                    changes["started_at"] = db_now(s)
            changes.update(_start_fields(executor_kind, executor_ref, log_path, started_at))
            if exit_code is not None:
                changes["exit_code"] = exit_code
            if message is not None:
                changes["message"] = message
            if completed_at is not None:
                changes["completed_at"] = require_aware(completed_at, "completed_at")
            _update_trial(s, row["id"], changes)
            return trial_record_of({**row, **changes}, row["experiment_name"])

    def finish_trial(
        self,
        name: str,
        status: TrialStatus,
        objective_value: float | None = None,
        metrics_summary: Mapping[str, MetricSummary] | None = None,
        exit_code: int | None = None,
        message: str | None = None,
        *,
        direction: Direction | None = None,
        completed_at: datetime | None = None,
        executor_kind: str | None = None,
        executor_ref: Mapping[str, Any] | None = None,
        log_path: str | None = None,
        started_at: datetime | None = None,
    ) -> TrialRecord:
        """End a trial and, in the same transaction, update the experiment's best trial.

        `executor_kind`, `executor_ref`, `log_path` and `started_at` are stored as
        `update_trial` stores them, unless None: a trial that ended before it was stored
        Running gets them with its end (`started_at` defaults to the completion time if
        the trial has none).

        `status` must be a finished state. A Succeeded or EarlyStopped trial with an
        objective value that is not NaN becomes the best trial if it beats the current
        one (ties keep the earlier) in `direction`, or in the stored spec's `objective.type`
        when `direction` is None. `completed_at` defaults
        to now. Raises `TrialNotFoundError`, and `StoreError` if the trial already finished.
        """
        status = TrialStatus(status)
        if not status.is_finished():
            raise ValueError(f"finish_trial status: {status.value} is not a finished state")
        if direction is not None:
            direction = Direction(direction)
        objective = None if objective_value is None else float(objective_value)
        summary = encode_summary(metrics_summary)
        with self._write(f"finishing trial {name!r}") as s:
            row = _lock_trial(s, name, with_spec=direction is None)
            if TrialStatus(row["status"]).is_finished():
                raise StoreError(
                    f"trial {name!r} already finished as {row['status']}; it cannot finish"
                    f" again as {status.value}"
                )
            value, nonfinite = encode_float(objective)
            now = db_now(s)
            completed = now if completed_at is None else require_aware(completed_at, "completed_at")
            changes: dict[str, Any] = {
                "status": status.value,
                "objective_value": value,
                "objective_nonfinite": nonfinite,
                "metrics_summary": summary,
                "exit_code": exit_code,
                "message": message,
                "completed_at": completed,
            }
            changes.update(_start_fields(executor_kind, executor_ref, log_path, started_at))
            if started_at is None and row["started_at"] is None and executor_ref is not None:
                changes["started_at"] = completed
            _update_trial(s, row["id"], changes)
            if objective is not None and status.counts_for_best():
                goal = (
                    direction
                    if direction is not None
                    else _direction_from_spec(row["experiment_name"], row["experiment_spec"])
                )
                incumbent = None
                best_name = row["experiment_best_trial_name"]
                conn = connection(s)
                if best_name is not None:
                    # Read now, under the experiment row's lock: the incumbent as the last
                    # finish (committed before this one got the lock) left it.
                    best = conn.execute(_OBJECTIVE_OF, {"name": best_name}).one_or_none()
                    if best is not None:
                        incumbent = decode_float(*best)
                if goal.is_better(objective, incumbent):
                    experiment_id = row["experiment_id"]
                    conn.execute(
                        _SET_BEST, {"experiment_id": experiment_id, "best": name, "now": now}
                    )
                    expire_cached(s, ExperimentRow, experiment_id)
            return trial_record_of({**row, **changes}, row["experiment_name"])


def _start_fields(
    executor_kind: str | None,
    executor_ref: Mapping[str, Any] | None,
    log_path: str | None,
    started_at: datetime | None,
) -> dict[str, Any]:
    """The columns of a trial's start that `update_trial` and `finish_trial` were given
    (None: left as they are)."""
    fields: dict[str, Any] = {}
    if executor_kind is not None:
        fields["executor_kind"] = executor_kind
    if executor_ref is not None:
        fields["executor_ref"] = dict(executor_ref)
    if log_path is not None:
        fields["log_path"] = log_path
    if started_at is not None:
        fields["started_at"] = require_aware(started_at, "started_at")
    return fields


def _lock_trial(s: Session, name: str, *, with_spec: bool = False) -> RowMapping:
    """The trial's columns, its experiment's name and best trial (and spec), both rows
    locked; or `TrialNotFoundError`."""
    statement = _LOCK_TRIAL_WITH_SPEC if with_spec else _LOCK_TRIAL
    row = connection(s).execute(statement, {"name": name}).mappings().one_or_none()
    if row is None:
        raise TrialNotFoundError(name)
    remember_trial(s, name, row["id"], row["experiment_id"])
    return row


def _update_trial(s: Session, trial_id: int, changes: Mapping[str, Any]) -> None:
    """A Core UPDATE of the trial's columns in ``changes``; an ORM object of the row that
    the session holds (an earlier call of the same transaction) is expired, not left stale."""
    if changes:
        connection(s).execute(_UPDATE_TRIAL, {"trial_id": trial_id, **changes})
        expire_cached(s, TrialRow, trial_id)


def _direction_from_spec(experiment: str, spec: Mapping[str, Any]) -> Direction:
    goal = (spec.get("objective") or {}).get("type")
    try:
        return Direction(goal)
    except ValueError:
        raise StoreError(
            f"experiment {experiment!r} spec.objective.type: {goal!r} is not 'minimize' or"
            " 'maximize'; pass direction to finish_trial or fix the stored spec"
        ) from None


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
