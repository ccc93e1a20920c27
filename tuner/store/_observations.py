"""Observation methods of `Store`: the metric log behind Katib's DBManager API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ._convert import check_name, observation_record
from ._domain import MetricSummary, Observation, ObservationDrop, require_aware
from ._models import ObservationRow, encode_float
from ._transactions import Transactions, trial_row


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
            trial, _ = trial_row(s, trial_name)
            for drop in drops:
                _delete_dropped(s, trial.id, drop)
            if batch:
                rows = []
                for obs in batch:
                    value, nonfinite = encode_float(obs.value)
                    rows.append(
                        {
                            "trial_id": trial.id,
                            "metric_name": obs.metric_name,
                            "value": value,
                            "value_nonfinite": nonfinite,
                            "step": obs.step,
                            "timestamp": obs.timestamp,
                        }
                    )
                s.execute(insert(ObservationRow), rows)
            if checkpoint is not None:
                trial.collector_checkpoint = dict(checkpoint)
            return len(batch)

    def collector_checkpoint(self, trial_name: str) -> dict[str, Any] | None:
        """The checkpoint last stored with the trial's observations (`add_observations`),
        None if none was. Raises `TrialNotFoundError`."""
        with self._read(f"reading the collector checkpoint of trial {trial_name!r}") as s:
            trial, _ = trial_row(s, trial_name)
            return None if trial.collector_checkpoint is None else dict(trial.collector_checkpoint)

    def observation_summary(
        self, trial_name: str, metric_names: Iterable[str]
    ) -> dict[str, MetricSummary]:
        """min / max / latest of each of ``metric_names`` over the trial's finite stored
        observations, computed by the database (a trial may have millions): latest is the
        newest by timestamp, then arrival, as `get_observations` orders them. Metrics never
        reported are left out. Raises `TrialNotFoundError`."""
        wanted = sorted(set(metric_names))
        with self._read(f"summarizing observations of trial {trial_name!r}") as s:
            trial, _ = trial_row(s, trial_name)
            finite = (
                (ObservationRow.trial_id == trial.id)
                & ObservationRow.value_nonfinite.is_(None)
                & ObservationRow.value.is_not(None)
            )
            bounds = s.execute(
                select(
                    ObservationRow.metric_name,
                    func.min(ObservationRow.value),
                    func.max(ObservationRow.value),
                )
                .where(finite & ObservationRow.metric_name.in_(wanted))
                .group_by(ObservationRow.metric_name)
            ).all()
            summary = {}
            for name, low, high in bounds:
                if low is not None and low == high:  # one value (or all equal): no query
                    summary[str(name)] = MetricSummary(float(low), float(high), float(low))
                    continue
                latest = s.scalars(
                    select(ObservationRow.value)
                    .where(finite & (ObservationRow.metric_name == name))
                    .order_by(ObservationRow.timestamp.desc(), ObservationRow.id.desc())
                    .limit(1)
                ).one()
                # The filter keeps only stored finite values.
                assert low is not None and high is not None and latest is not None
                summary[str(name)] = MetricSummary(float(low), float(high), latest)
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
