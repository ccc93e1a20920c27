"""`Direction`: whether an objective is minimized or maximized, the one enum for it everywhere
(spec, store, controller, Python API, suggestion algorithms)."""

from __future__ import annotations

import enum
import math


class Direction(str, enum.Enum):
    """The objective's direction; the values are Katib's ``objective.type`` spellings."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    def __str__(self) -> str:
        return str(self.value)

    def is_better(self, candidate: float, incumbent: float | None) -> bool:
        """Whether `candidate` beats `incumbent`; NaN never wins, and ties keep the incumbent
        (as Katib does: the earlier trial stays best)."""
        if math.isnan(candidate):
            return False
        if incumbent is None or math.isnan(incumbent):
            return True
        return candidate < incumbent if self is Direction.MINIMIZE else candidate > incumbent

    def reached(self, goal: float, value: float) -> bool:
        """Katib's goal rule: maximize reaches it at ``value >= goal``, minimize at ``<=``."""
        return value >= goal if self is Direction.MAXIMIZE else value <= goal

    def sort_key(self, value: float) -> float:
        """A key that sorts values best first (ascending keys)."""
        return -value if self is Direction.MAXIMIZE else value
