"""Observation methods of `Store`: the metric log behind Katib's DBManager API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from ._convert import check_name, observation_record
from ._domain import MetricSummary, Observation, ObservationDrop, require_aware
from ._errors import TrialNotFoundError
from ._models import ObservationRow, TrialRow, encode_float
from ._transactions import Transactions, connection, expire_cached, trial_ids, trial_row

# Core statements of the controller's hot path, built once (see `_transactions`).
_OBSERVATIONS = cast(Table, ObservationRow.__table__)
_TRIALS = cast(Table, TrialRow.__table__)
_INSERT_OBSERVATIONS = insert(_OBSERVATIONS)
_SET_CHECKPOINT = (
    update(_TRIALS)
    .where(_TRIALS.c.id == bindparam("trial_id"))
    .values(collector_checkpoint=bindparam("checkpoint"))
)
_READ_CHECKPOINT = select(_TRIALS.c.collector_checkpoint).where(_TRIALS.c.name == bindparam("name"))


def _summary_statement(*, one: bool = False) -> Any:
    """min, max and latest finite value of each wanted metric of one trial, in one query:
    the latest by a correlated subquery, run only for metrics whose values differ. With
    ``one``, of the one metric ``metric`` (the usual single objective) rather than of the
    list ``metrics``: an expanding IN list is rendered anew at every execution."""
    obs = _OBSERVATIONS.alias("obs")
    later = _OBSERVATIONS.alias("later")

    def finite(t: Any) -> Any:
        return t.c.value_nonfinite.is_(None) & t.c.value.is_not(None)

    latest = (
        select(later.c.value)
        .where(
            (later.c.trial_id == bindparam("trial_id"))
            & (later.c.metric_name == obs.c.metric_name)
            & finite(later)
        )
        .order_by(later.c.timestamp.desc(), later.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    low, high = func.min(obs.c.value), func.max(obs.c.value)
    return (
        select(obs.c.metric_name, low, high, case((low == high, low), else_=latest))
        .where(
            (obs.c.trial_id == bindparam("trial_id"))
            & finite(obs)
            & (
                obs.c.metric_name == bindparam("metric")
                if one
                else obs.c.metric_name.in_(bindparam("metrics", expanding=True))
            )
        )
        .group_by(obs.c.metric_name)
    )


_SUMMARY = _summary_statement()
_SUMMARY_ONE = _summary_statement(one=True)


class ObservationMethods(Transactions):
    """Append, read and delete a trial's observations (a mixin of `Store`)."""

    def add_observations(
        self,
        trial_name: str,
        observations: Iterable[Observation],
        *,
        checkpoint: Mapping[str, Any] | None = None,
        drops: Iterable[ObservationDrop] = (),
    ) -> int:
        """Append the trial's observations in one transaction; returns how many were added.

        ``checkpoint``: where the trial's metrics collector stopped once these are stored (a
        JSON object); written in the same transaction, so that a restarted controller resumes
        from it and stores each observation exactly once (see `collector_checkpoint`).
        ``drops``: stored observations to delete first, in the same transaction (a log
        thinned to its cap: docs/controller.md, "Huge logs").
        Raises `TrialNotFoundError`; `ValueError` if an observation names another trial.
        """
        batch = list(observations)
        drops = list(drops)
        for index, obs in enumerate(batch):
            if obs.trial_name != trial_name:
                raise ValueError(
                    f"observations[{index}].trial_name: {obs.trial_name!r} is not {trial_name!r}"
                )
            check_name(f"observations[{index}].metric_name", obs.metric_name)
        with self._write(f"adding observations of trial {trial_name!r}") as s:
            trial_id, _ = trial_ids(s, trial_name)
            for drop in drops:
                _delete_dropped(s, trial_id, drop)
            # Core statements: no ORM objects to load, change and flush.
            conn = connection(s)
            if batch:
                rows = []
                for obs in batch:
                    value, nonfinite = encode_float(obs.value)
                    rows.append(
                        {
                            "trial_id": trial_id,
                            "metric_name": obs.metric_name,
                            "value": value,
                            "value_nonfinite": nonfinite,
                            "step": obs.step,
                            "timestamp": obs.timestamp,
                        }
                    )
                conn.execute(_INSERT_OBSERVATIONS, rows)
            if checkpoint is not None:
                conn.execute(
                    _SET_CHECKPOINT, {"trial_id": trial_id, "checkpoint": dict(checkpoint)}
                )
                expire_cached(s, TrialRow, trial_id)
            return len(batch)

    def collector_checkpoint(self, trial_name: str) -> dict[str, Any] | None:
        """The checkpoint last stored with the trial's observations (`add_observations`),
        None if none was. Raises `TrialNotFoundError`."""
        with self._read(f"reading the collector checkpoint of trial {trial_name!r}") as s:
            row = s.connection().execute(_READ_CHECKPOINT, {"name": trial_name}).one_or_none()
            if row is None:
                raise TrialNotFoundError(trial_name)
            return None if row[0] is None else dict(row[0])

    def observation_summary(
        self, trial_name: str, metric_names: Iterable[str]
    ) -> dict[str, MetricSummary]:
        """min / max / latest of each of ``metric_names`` over the trial's finite stored
        observations, computed by the database (a trial may have millions): latest is the
        newest by timestamp, then arrival, as `get_observations` orders them. Metrics never
        reported are left out. Raises `TrialNotFoundError`."""
        wanted = sorted(set(metric_names))
        with self._read(f"summarizing observations of trial {trial_name!r}") as s:
            trial_id, _ = trial_ids(s, trial_name)
            if not wanted:
                return {}
            if len(wanted) == 1:
                rows = connection(s).execute(
                    _SUMMARY_ONE, {"trial_id": trial_id, "metric": wanted[0]}
                )
            else:
                rows = connection(s).execute(_SUMMARY, {"trial_id": trial_id, "metrics": wanted})
            summary = {}
            for name, low, high, latest in rows:
                # The filter keeps only stored finite values.
                assert low is not None and high is not None and latest is not None
                summary[str(name)] = MetricSummary(float(low), float(high), float(latest))
            return summary

    def get_observations(
        self,
        trial_name: str,
        metric_name: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Observation]:
        """The trial's observations ordered by timestamp, then insertion order.

        Optionally only `metric_name`, and only timestamps within [start, end] (inclusive,
        as Katib's GetObservationLog). Raises `TrialNotFoundError`.
        """
        with self._read(f"reading observations of trial {trial_name!r}") as s:
            trial, _ = trial_row(s, trial_name)
            stmt = (
                select(ObservationRow)
                .where(ObservationRow.trial_id == trial.id)
                .order_by(ObservationRow.timestamp, ObservationRow.id)
            )
            if metric_name is not None:
                stmt = stmt.where(ObservationRow.metric_name == metric_name)
            if start is not None:
                stmt = stmt.where(ObservationRow.timestamp >= require_aware(start, "start"))
            if end is not None:
                stmt = stmt.where(ObservationRow.timestamp <= require_aware(end, "end"))
            return [observation_record(row, trial_name) for row in s.scalars(stmt)]

    def delete_observations(self, trial_name: str) -> int:
        """Delete all the trial's observations, and its collector checkpoint; returns how
        many. Raises `TrialNotFoundError`."""
        with self._write(f"deleting observations of trial {trial_name!r}") as s:
            trial, _ = trial_row(s, trial_name)
            trial.collector_checkpoint = None
            result = s.execute(
                delete(ObservationRow).where(ObservationRow.trial_id == trial.id),
                execution_options={"synchronize_session": False},
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def _delete_dropped(s: Session, trial_id: int, drop: ObservationDrop) -> None:
    rows = (ObservationRow.trial_id == trial_id) & (ObservationRow.metric_name == drop.metric_name)
    stmt = delete(ObservationRow).execution_options(synchronize_session=False)
    if drop.steps:
        s.execute(stmt.where(rows & ObservationRow.step.in_(sorted(drop.steps))))
    if drop.stride is not None and drop.stride > 1:
        # % is the integer remainder on SQLite, PostgreSQL and MySQL alike (steps are >= 0).
        off_stride = (ObservationRow.step % drop.stride) != 0
        condition = rows & ObservationRow.step.is_not(None) & off_stride
        if drop.keep:
            condition = condition & ObservationRow.step.not_in(sorted(drop.keep))
        s.execute(stmt.where(condition))
