"""What ``Experiment.run()`` and ``tuner.load()`` return: the experiment's end state and its
trials, with parameters in their Python types and metrics as plain numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tuner.space import Direction, SearchSpace, SpaceError, Value
from tuner.store import ExperimentStatus, MetricSummary, TrialRecord, TrialStatus

if TYPE_CHECKING:
    import pandas

    from tuner.controller import RunResult


@dataclass(frozen=True)
class TrialResult:
    """One trial.

    - ``parameters``: name -> value, typed as the search space says (``int`` for Int,
      ``float`` for Double, the list entry's type for Discrete, ``str`` for Categorical).
    - ``objective``: the objective metric's value under its metric strategy (None if the
      trial never reported it).
    - ``metrics``: every collected metric's value under its strategy (``min`` when
      minimizing, ``max`` when maximizing, unless ``metric_strategies`` says otherwise), the
      objective included; ``metric_summaries`` has min, max and latest of each.
    - ``exit_code``, ``message``, ``log_path``: how the trial's process ended and where its
      output is (local executor).
    """

    name: str
    status: TrialStatus
    parameters: dict[str, Value]
    objective: float | None
    metrics: dict[str, float]
    metric_summaries: dict[str, MetricSummary]
    exit_code: int | None
    message: str | None
    log_path: str | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class Result:
    """An experiment as stored: ``status`` (Succeeded / Failed, or Running if the run was cut
    short), Katib's ``reason`` and ``message``, the ``best_trial`` (None when no Succeeded
    trial reported the objective; ties keep the earlier trial) and every trial in creation
    order. ``counts`` maps each trial status to its number of trials.

    >>> result = tuner.load("quickstart", db="sqlite:///tuner.db")  # doctest: +SKIP
    >>> result.best_trial.parameters, result.best_trial.metrics  # doctest: +SKIP
    ({'x': 1.02, 'y': -2, 'shape': 'bowl'}, {'loss': 0.0004})
    """

    name: str
    namespace: str
    status: ExperimentStatus
    reason: str | None
    message: str | None
    objective_metric: str
    goal_type: Direction | None
    best_trial: TrialResult | None
    trials: list[TrialResult]
    counts: dict[str, int]
    started_at: datetime | None
    completed_at: datetime | None
    document: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        return self.status is ExperimentStatus.SUCCEEDED

    @property
    def best_parameters(self) -> dict[str, Value] | None:
        """The best trial's parameters (None without a best trial)."""
        return None if self.best_trial is None else self.best_trial.parameters

    def to_dataframe(self) -> pandas.DataFrame:
        """The trials as a pandas DataFrame, one row per trial in creation order, with the
        columns of ``tuner get trials -o csv`` and the dashboard's download button:
        ``name, status, objective, params.<name>..., metrics.<name>..., started_at,
        completed_at, duration_seconds, exit_code, message`` (times as ISO 8601 strings).
        Needs pandas (``pip install pandas``)."""
        try:
            import pandas
        except ImportError as e:
            raise ImportError(
                "Result.to_dataframe() needs pandas: pip install pandas"
            ) from e
        from tuner import _trial_table

        rows = [
            _trial_table.TableTrial(
                name=t.name,
                status=t.status.value,
                objective=t.objective,
                parameters=t.parameters,
                metrics=t.metrics,
                started_at=t.started_at,
                completed_at=t.completed_at,
                exit_code=t.exit_code,
                message=t.message,
            )
            for t in self.trials
        ]
        header = _trial_table.columns(rows)
        return pandas.DataFrame([_trial_table.row(r, header) for r in rows], columns=header)

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``tuner run --output`` (schema in docs/controller.md)."""
        return self.document

    @classmethod
    def from_run(cls, run: RunResult, space: SearchSpace) -> Result:
        spec = run.experiment.spec
        objective = spec.get("objective") or {}
        strategies = {
            s.get("name"): s.get("value") for s in objective.get("metricStrategies") or []
        }
        trials = [_trial(t, space, strategies) for t in run.trials]
        best = None
        if run.best_trial is not None:
            best = next((t for t in trials if t.name == run.best_trial.name), None)
        return cls(
            name=run.experiment.name,
            namespace=run.experiment.namespace,
            status=run.experiment.status,
            reason=run.experiment.reason,
            message=run.experiment.message,
            objective_metric=objective.get("objectiveMetricName", ""),
            goal_type=run.experiment.direction,
            best_trial=best,
            trials=trials,
            counts=run.counts.by_status(),
            started_at=run.experiment.started_at,
            completed_at=run.experiment.completed_at,
            document=run.to_json(),
        )


def _trial(record: TrialRecord, space: SearchSpace, strategies: dict[str, str]) -> TrialResult:
    try:
        parameters: dict[str, Value] = space.parse(record.parameters)
    except SpaceError:
        parameters = dict(record.parameters)  # a foreign value: keep its wire form
    summaries = dict(record.metrics_summary)
    return TrialResult(
        name=record.name,
        status=record.status,
        parameters=parameters,
        objective=record.objective_value,
        metrics={
            name: getattr(summary, strategies.get(name) or "latest")
            for name, summary in summaries.items()
        },
        metric_summaries=summaries,
        exit_code=record.exit_code,
        message=record.message,
        log_path=record.log_path,
        started_at=record.started_at,
        completed_at=record.completed_at,
    )
