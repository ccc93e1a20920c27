"""Observation methods of `Store`: the metric log behind Katib's DBManager API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, insert, select

from ._convert import check_name, observation_record
from ._domain import Observation, require_aware
from ._models import ObservationRow, encode_float
from ._transactions import Transactions, trial_row


class ObservationMethods(Transactions):
    """Append, read and delete a trial's observations (a mixin of `Store`)."""

    def add_observations(self, trial_name: str, observations: Iterable[Observation]) -> int:
        """Append the trial's observations in one transaction; returns how many were added.

        Raises `TrialNotFoundError`; `ValueError` if an observation names another trial.
        """
        batch = list(observations)
        for index, obs in enumerate(batch):
            if obs.trial_name != trial_name:
                raise ValueError(
                    f"observations[{index}].trial_name: {obs.trial_name!r} is not {trial_name!r}"
                )
            check_name(f"observations[{index}].metric_name", obs.metric_name)
        with self._write(f"adding observations of trial {trial_name!r}") as s:
            trial, _ = trial_row(s, trial_name)
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
            return len(batch)

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
        """Delete all the trial's observations; returns how many. Raises `TrialNotFoundError`."""
        with self._write(f"deleting observations of trial {trial_name!r}") as s:
            trial, _ = trial_row(s, trial_name)
            result = s.execute(
                delete(ObservationRow).where(ObservationRow.trial_id == trial.id),
                execution_options={"synchronize_session": False},
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
