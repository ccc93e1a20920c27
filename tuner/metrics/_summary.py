"""Reducing a trial's reports of each metric to min / max / latest, and picking the one that
``metricStrategies`` names as the trial's value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tuner.metrics._types import MetricPoint, MetricsError

STRATEGIES = ("min", "max", "latest")


@dataclass(frozen=True)
class MetricSummary:
    """All reports of one metric, reduced as Katib's ``Observation`` does."""

    name: str
    min: float
    max: float
    latest: float
    count: int

    def value(self, strategy: str) -> float:
        """The value ``strategy`` picks: ``min``, ``max`` or ``latest`` (or a str enum)."""
        return float(getattr(self, _strategy(strategy)))

    def as_dict(self) -> dict[str, float]:
        return {"min": self.min, "max": self.max, "latest": self.latest}


def summarize(points: Iterable[MetricPoint]) -> dict[str, MetricSummary]:
    """Per metric name, the min, max and latest value; ``points`` in report order (latest is
    the last one given), as the parsers return them or as stored ordered by step."""
    acc: dict[str, list[float]] = {}  # name -> [min, max, latest, count]
    for p in points:
        entry = acc.get(p.name)
        if entry is None:
            acc[p.name] = [p.value, p.value, p.value, 1]
        else:
            entry[0] = min(entry[0], p.value)
            entry[1] = max(entry[1], p.value)
            entry[2] = p.value
            entry[3] += 1
    return {
        name: MetricSummary(name, lo, hi, latest, int(count))
        for name, (lo, hi, latest, count) in acc.items()
    }


def objective_value(
    summary: Mapping[str, MetricSummary], metric: str, strategy: str
) -> float | None:
    """The trial's value of ``metric`` under ``strategy``; None if it never reported it
    (the trial is then MetricsUnavailable)."""
    entry = summary.get(metric)
    return None if entry is None else entry.value(strategy)


def _strategy(strategy: str) -> str:
    name = str(getattr(strategy, "value", strategy))
    if name not in STRATEGIES:
        raise MetricsError(
            f"metricStrategies.value: {strategy!r} is not a metric strategy; use one of"
            f" {', '.join(STRATEGIES)}"
        )
    return name
