"""An early-stopping rule as the controller applies it to a running trial's reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StoppingRule:
    """Stop a trial once it has ``start_step`` reports of ``metric`` (at least one) and the
    latest is ``comparison`` (``below``, ``above``, ``equal to``) ``value``."""

    metric: str
    value: float
    comparison: str
    start_step: int

    def broken_by(self, values: Sequence[float]) -> bool:
        if len(values) < max(self.start_step, 1):
            return False
        latest = values[-1]
        if self.comparison == "below":
            return latest < self.value
        if self.comparison == "above":
            return latest > self.value
        return latest == self.value

    def explain(self, values: Sequence[float]) -> str:
        return (
            f"{self.metric} {values[-1]!r} after {len(values)} reports is {self.comparison}"
            f" {self.value!r}"
        )
