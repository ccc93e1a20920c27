"""Trial-reading methods of `Store`: a trial, an experiment's trials, their counts, its best."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from ._convert import trial_record
from ._domain import TrialRecord, TrialStatus
from ._models import ExperimentRow, TrialRow
from ._transactions import Transactions, experiment_row, trial_row


class TrialReadMethods(Transactions):
    """Read trials, count them by status and find an experiment's best (a mixin of `Store`)."""

    def get_trial(self, name: str) -> TrialRecord:
        """The trial named `name`. Raises `TrialNotFoundError`."""
        with self._read(f"reading trial {name!r}") as s:
            trial, exp = trial_row(s, name)
            return trial_record(trial, exp.name)

    def list_trials(
        self, experiment: str, statuses: Iterable[TrialStatus] | None = None
    ) -> list[TrialRecord]:
        """The experiment's trials (or those in `statuses`) in creation order."""
        with self._read(f"listing trials of experiment {experiment!r}") as s:
            exp = experiment_row(s, experiment)
            stmt = select(TrialRow).where(TrialRow.experiment_id == exp.id).order_by(TrialRow.id)
            if statuses is not None:
                stmt = stmt.where(TrialRow.status.in_([TrialStatus(x).value for x in statuses]))
            return [trial_record(row, experiment) for row in s.scalars(stmt)]

    def count_trials(self, experiment: str) -> dict[TrialStatus, int]:
        """Number of the experiment's trials in each status (every status present, maybe 0)."""
        with self._read(f"counting trials of experiment {experiment!r}") as s:
            exp = experiment_row(s, experiment)
            rows = s.execute(
                select(TrialRow.status, func.count())
                .where(TrialRow.experiment_id == exp.id)
                .group_by(TrialRow.status)
            )
            counts = dict.fromkeys(TrialStatus, 0)
            for status, count in rows:
                counts[TrialStatus(status)] = count
            return counts

    def count_trials_by_experiment(
        self, experiments: Iterable[str]
    ) -> dict[str, dict[TrialStatus, int]]:
        """`count_trials` of several experiments in one query: name -> counts (every status
        present, maybe 0). A name with no stored experiment is left out."""
        names = sorted(set(experiments))
        result: dict[str, dict[TrialStatus, int]] = {}
        if not names:
            return result
        with self._read(f"counting trials of {len(names)} experiments") as s:
            for chunk in (names[i : i + 500] for i in range(0, len(names), 500)):
                found = s.execute(
                    select(ExperimentRow.id, ExperimentRow.name).where(
                        ExperimentRow.name.in_(chunk)
                    )
                ).all()
                by_id = {id_: name for id_, name in found}
                for name in by_id.values():
                    result[name] = dict.fromkeys(TrialStatus, 0)
                if not by_id:
                    continue
                rows = s.execute(
                    select(TrialRow.experiment_id, TrialRow.status, func.count())
                    .where(TrialRow.experiment_id.in_(list(by_id)))
                    .group_by(TrialRow.experiment_id, TrialRow.status)
                )
                for experiment_id, status, count in rows:
                    result[by_id[experiment_id]][TrialStatus(status)] = count
        return result

    def best_trial(self, experiment: str) -> TrialRecord | None:
        """The experiment's best finished trial so far, None before one has an objective."""
        with self._read(f"reading the best trial of experiment {experiment!r}") as s:
            exp = experiment_row(s, experiment)
            if exp.best_trial_name is None:
                return None
            row = s.scalars(
                select(TrialRow).where(TrialRow.name == exp.best_trial_name)
            ).one_or_none()
            return None if row is None else trial_record(row, experiment)
