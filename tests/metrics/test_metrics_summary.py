"""summarize and objective_value: Katib's min / max / latest metric strategies."""

from __future__ import annotations

import enum

import pytest

from tuner.metrics import MetricPoint, MetricsError, objective_value, summarize


def _points(name: str, *values: float) -> list[MetricPoint]:
    return [MetricPoint(name, v, step=i) for i, v in enumerate(values)]


def test_summary_has_min_max_latest_and_count_per_metric() -> None:
    summary = summarize(_points("loss", 0.5, 0.2, 0.4) + _points("accuracy", 0.7))
    assert summary["loss"].as_dict() == {"min": 0.2, "max": 0.5, "latest": 0.4}
    assert summary["loss"].count == 3
    assert summary["accuracy"].as_dict() == {"min": 0.7, "max": 0.7, "latest": 0.7}


class _Strategy(str, enum.Enum):  # the spec's MetricStrategyType has these values
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("min", 0.2), ("max", 0.5), ("latest", 0.4), (_Strategy.MIN, 0.2), (_Strategy.LATEST, 0.4)],
)
def test_objective_value_follows_the_metric_strategy(strategy: str, expected: float) -> None:
    summary = summarize(_points("loss", 0.5, 0.2, 0.4))
    assert objective_value(summary, "loss", strategy) == expected


def test_an_unreported_metric_has_no_value() -> None:
    assert objective_value(summarize(_points("accuracy", 1.0)), "loss", "min") is None


def test_unknown_strategy_is_refused_with_the_allowed_ones() -> None:
    summary = summarize(_points("loss", 1.0))
    with pytest.raises(MetricsError, match="'median' is not a metric strategy; use one of min"):
        objective_value(summary, "loss", "median")
