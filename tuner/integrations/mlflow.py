"""``MLflowCallback``: each finished trial of ``Experiment.run()`` becomes an MLflow run with
the trial's parameters, metrics and status (the ``mlflow`` extra: ``pip install
'tuner[mlflow]'``, which installs the tracking client ``mlflow-skinny``).

>>> from tuner.integrations.mlflow import MLflowCallback  # doctest: +SKIP
>>> experiment.run(callbacks=[MLflowCallback(tracking_uri="sqlite:///mlflow.db")])  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tuner.errors import TunerError

if TYPE_CHECKING:
    from tuner.api import TrialResult

# Trial status -> MLflow run status (FINISHED, FAILED, KILLED).
_STATUS = {
    "Succeeded": "FINISHED",
    "Killed": "KILLED",
    "EarlyStopped": "KILLED",
}


class MLflowError(TunerError):
    """MLflow is not installed, or refused what the callback logged (the cause is kept)."""


class MLflowCallback:
    """Logs each trial handed to it as one MLflow run, named after the trial.

    - ``tracking_uri``: where the runs go (``sqlite:///mlflow.db``, ``http://host:5000``,
      ...); None: MLflow's own default (``MLFLOW_TRACKING_URI``).
    - ``experiment_name``: the MLflow experiment, created if missing; None: the tuner
      experiment's name.
    - ``tags``: added to every run, besides ``tuner.experiment``, ``tuner.trial`` and
      ``tuner.status``.

    Each run has the trial's parameters (as MLflow's strings), its metrics (each metric's
    value under its strategy, as ``TrialResult.metrics``), its start and end times, and
    status FINISHED (Succeeded), KILLED (Killed, EarlyStopped) or FAILED (the others).
    Called from the thread of ``Experiment.run()``; it uses an ``MlflowClient`` of its own,
    so the fluent API's active run is left alone. Raises ``MLflowError``.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise MLflowError(
                "MLflowCallback needs MLflow's client: pip install 'tuner[mlflow]'"
            ) from e
        self._client = MlflowClient(tracking_uri)
        self._experiment_name = experiment_name
        self._tags = dict(tags or {})
        self._experiment_ids: dict[str, str] = {}

    def __call__(self, trial: TrialResult) -> None:
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException

        try:
            experiment_id = self._experiment_id(self._experiment_name or trial.experiment)
            tags = {
                **self._tags,
                "tuner.experiment": trial.experiment,
                "tuner.trial": trial.name,
                "tuner.status": trial.status.value,
            }
            run = self._client.create_run(
                experiment_id, start_time=_millis(trial.started_at), tags=tags, run_name=trial.name
            )
            stamp = _millis(trial.completed_at) or _millis(datetime.now(timezone.utc)) or 0
            metrics = [
                Metric(name, float(value), stamp, 0)
                for name, value in trial.metrics.items()
                if math.isfinite(value)
            ]
            params = [Param(name, str(value)) for name, value in trial.parameters.items()]
            self._client.log_batch(run.info.run_id, metrics=metrics, params=params)
            self._client.set_terminated(
                run.info.run_id,
                status=_STATUS.get(trial.status.value, "FAILED"),
                end_time=_millis(trial.completed_at),
            )
        except MlflowException as e:
            raise MLflowError(f"MLflow refused trial {trial.name!r}: {e}") from e

    def _experiment_id(self, name: str) -> str:
        if name not in self._experiment_ids:
            found = self._client.get_experiment_by_name(name)
            self._experiment_ids[name] = (
                found.experiment_id if found is not None else self._client.create_experiment(name)
            )
        return self._experiment_ids[name]


def _millis(when: datetime | None) -> Any:
    return None if when is None else int(when.timestamp() * 1000)
