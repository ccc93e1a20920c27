"""Several objectives: how their directions travel to a suggestion service inside Katib's
wire API, and which points are Pareto-optimal.

Katib's ``ObjectiveSpec`` message has one metric name and one type, and no field for more;
the values travel already (``Observation.metrics`` carries every metric by name). The
further objectives' names and directions go as one algorithm setting,
`OBJECTIVES_SETTING`, whose value is a JSON list of ``{"metricName", "type"}``. tuner's
suggestion server takes it out of the settings before the algorithm sees them, and marks
its ValidateAlgorithmSettings reply with the trailing metadata `OBJECTIVES_METADATA`
(the number of objectives it read): a service without it did not understand them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from tuner.errors import TunerError
from tuner.space._direction import Direction

OBJECTIVES_SETTING = "tuner.kubeflow.org/additional-objectives"
"""The algorithm setting that carries the objectives after the first (a tuner extension)."""

OBJECTIVES_METADATA = "tuner-objectives"
"""Trailing metadata of tuner's ValidateAlgorithmSettings reply: how many objectives it read."""


class ObjectivesError(TunerError, ValueError):
    """An `OBJECTIVES_SETTING` value that is not a list of ``{metricName, type}``."""


def format_objectives(objectives: Sequence[tuple[str, Direction]]) -> str:
    """The `OBJECTIVES_SETTING` value for these (further) objectives."""
    return json.dumps(
        [{"metricName": name, "type": direction.value} for name, direction in objectives],
        separators=(",", ":"),
    )


def parse_objectives(text: str) -> list[tuple[str, Direction]]:
    """The (metric name, direction) pairs of an `OBJECTIVES_SETTING` value."""
    rule = f"{OBJECTIVES_SETTING}: {text[:200]!r} is not a JSON list of {{metricName, type}}"
    try:
        items = json.loads(text)
    except ValueError as e:
        raise ObjectivesError(rule) from e
    if not isinstance(items, list):
        raise ObjectivesError(rule)
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("metricName"), str):
            raise ObjectivesError(rule)
        try:
            direction = Direction(item.get("type"))
        except ValueError as e:
            raise ObjectivesError(f"{rule} (type is minimize or maximize)") from e
        if not item["metricName"]:
            raise ObjectivesError(f"{rule} (a metricName is empty)")
        out.append((item["metricName"], direction))
    return out


def non_dominated(values: Sequence[Sequence[float]], directions: Sequence[Direction]) -> list[int]:
    """Indices (ascending) of the points no other point dominates: another point dominates
    one when it is at least as good in every objective and better in one. Points with a NaN
    are left out; equal points are all kept."""
    if not values:
        return []
    import numpy as np  # here: tuner.space stays light to import

    points = np.asarray(values, dtype=float).reshape(len(values), len(directions))
    signs = np.array([1.0 if d is Direction.MINIMIZE else -1.0 for d in directions])
    costs = points * signs  # every objective minimised
    usable = ~np.isnan(costs).any(axis=1)
    keep = []
    for i in np.flatnonzero(usable):
        others = costs[usable]
        dominated = np.any(np.all(others <= costs[i], axis=1) & np.any(others < costs[i], axis=1))
        if not dominated:
            keep.append(int(i))
    return keep


def finite(values: Sequence[float | None]) -> bool:
    """Whether every value is a finite number (a point that can take part in a front)."""
    return all(v is not None and math.isfinite(v) for v in values)
