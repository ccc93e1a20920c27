"""``spec.objective.additionalObjectives``, tuner's multi-objective extension: Katib's fields
keep their meaning, each further objective gets its own default metric strategy, and what
cannot hold for several objectives (a goal, a repeated metric) is refused by field."""

from __future__ import annotations

from typing import Any

import pytest
import support

from tuner.space import Direction
from tuner.spec import Experiment, MetricStrategyType, SpecError


def experiment(**objective: Any) -> Experiment:
    document = support.experiment_document(
        command=["train", "${trialParameters.lr}"],
        parameters=[support.double_parameter("lr", 0.01, 0.1)],
        objective={"type": "minimize", "objectiveMetricName": "loss", **objective},
    )
    return Experiment.model_validate(document)


def test_katib_objective_is_the_first_of_several() -> None:
    spec = experiment(
        additionalObjectives=[{"metricName": "accuracy", "type": "maximize"}],
        additionalMetricNames=["epoch"],
    ).spec.objective
    assert spec.objectives == [("loss", Direction.MINIMIZE), ("accuracy", Direction.MAXIMIZE)]
    assert spec.metric_names == ["loss", "accuracy", "epoch"]
    assert spec.strategy("accuracy") is MetricStrategyType.MAX  # its own direction
    assert spec.strategy("epoch") is MetricStrategyType.MIN  # Katib's: the objective's type
    assert spec.is_multi_objective


def test_a_katib_objective_stays_single_and_round_trips_unchanged() -> None:
    parsed = experiment()
    assert not parsed.spec.objective.is_multi_objective
    assert "additionalObjectives" not in parsed.to_dict()["spec"]["objective"]


def test_a_goal_is_refused_with_several_objectives() -> None:
    with pytest.raises(SpecError) as e:
        experiment(goal=0.1, additionalObjectives=[{"metricName": "latency", "type": "minimize"}])
    assert any(
        issue.path == "spec.objective.goal" and "maxTrialCount" in issue.message
        for issue in e.value.issues
    )


def test_an_objective_metric_may_appear_once() -> None:
    with pytest.raises(SpecError) as e:
        experiment(
            additionalObjectives=[
                {"metricName": "loss", "type": "maximize"},
                {"metricName": "", "type": "minimize"},
            ],
        )
    messages = {issue.path: issue.message for issue in e.value.issues}
    assert (
        "repeats objectiveMetricName"
        in messages["spec.objective.additionalObjectives[0].metricName"]
    )
    assert messages["spec.objective.additionalObjectives[1].metricName"] == "required"
