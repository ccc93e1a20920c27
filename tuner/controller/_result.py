"""What a run leaves behind, read back from the store: status, best trial, counts.

`RunResult.to_json()` is the document ``tuner run --output`` writes (schema in
docs/controller.md); the pipeline step reads the same document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tuner.controller._decide import TrialCounts
from tuner.space import SearchSpace, SpaceError, Value
from tuner.store import ExperimentRecord, ExperimentStatus, Store, TrialRecord, pareto_front

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunResult:
    """An experiment's state after `Controller.run` (or as found, when already finished)."""

    experiment: ExperimentRecord
    trials: list[TrialRecord]
    best_trial: TrialRecord | None
    best_parameters: dict[str, Value] | None
    counts: TrialCounts
    pareto: list[tuple[TrialRecord, dict[str, Value], tuple[float, ...]]] | None = None
    """Multi-objective experiments: the Pareto front (trial, typed parameters, the value of
    each objective); None with one objective."""

    @property
    def succeeded(self) -> bool:
        return self.experiment.status is ExperimentStatus.SUCCEEDED

    @property
    def finished(self) -> bool:
        return self.experiment.status.is_finished()

    @classmethod
    def load(cls, store: Store, name: str, space: SearchSpace) -> RunResult:
        experiment = store.get_experiment(name)
        trials = store.list_trials(name)
        best = store.best_trial(name)
        pareto = None
        if len(experiment.objectives) > 1:
            front = pareto_front(experiment, trials)
            pareto = [(t, _typed(space, t), v) for t, v in front]
            # Best in the first objective, as Katib's; of the trials tied there, the one on
            # the front (a tie may be dominated through the other objectives).
            direction = experiment.objectives[0][1]
            ranked = min(front, key=lambda entry: direction.sort_key(entry[1][0]), default=None)
            best = best if ranked is None else ranked[0]
        params = None if best is None else _typed(space, best)
        return cls(
            experiment, trials, best, params, TrialCounts.of(t.status for t in trials), pareto
        )

    def to_json(self) -> dict[str, Any]:
        """The ``--output`` document (see docs/controller.md, "Output")."""
        spec = self.experiment.spec
        objective = spec.get("objective") or {}
        best = None
        if self.best_trial is not None:
            best = {
                "name": self.best_trial.name,
                "parameters": self.best_parameters,
                "objectiveValue": _number(self.best_trial.objective_value),
                "metrics": {
                    name: {
                        "min": _number(m.min),
                        "max": _number(m.max),
                        "latest": _number(m.latest),
                    }
                    for name, m in self.best_trial.metrics_summary.items()
                },
            }
        counts = self.counts.by_status()
        names = [name for name, _ in self.experiment.objectives]
        front = None
        if self.pareto is not None:
            front = [
                {
                    "name": trial.name,
                    "parameters": parameters,
                    "values": {n: _number(v) for n, v in zip(names, values, strict=True)},
                }
                for trial, parameters, values in self.pareto
            ]
        return {
            "schemaVersion": SCHEMA_VERSION,
            "name": self.experiment.name,
            "namespace": self.experiment.namespace,
            "status": self.experiment.status.value,
            "reason": self.experiment.reason,
            "message": self.experiment.message,
            "objective": {
                "type": objective.get("type"),
                "metricName": objective.get("objectiveMetricName"),
                "goal": objective.get("goal"),
                "additionalObjectives": objective.get("additionalObjectives") or [],
            },
            "bestTrial": best,
            "paretoFront": front,
            "trialCounts": {**counts, "total": self.counts.total},
            "startTime": _time(self.experiment.started_at),
            "completionTime": _time(self.experiment.completed_at),
        }


def _typed(space: SearchSpace, trial: TrialRecord) -> dict[str, Value]:
    try:
        return space.parse(trial.parameters)
    except SpaceError:
        return dict(trial.parameters)  # a foreign value: keep its wire form


def _number(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: those become the strings "NaN", "Infinity", "-Infinity"."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _time(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
