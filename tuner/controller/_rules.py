"""An early-stopping rule as the controller applies it to a running trial's reports, and the
EarlyStopping service's whole answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class EarlyStoppingAnswer:
    """One GetEarlyStoppingRules reply: Katib's ``rules`` for every running trial, and
    tuner's extension for per-trial algorithms (asha): ``stops``, running trial -> why to
    stop it now, and ``live``, ask again whenever a running trial reports."""

    rules: list[StoppingRule]
    stops: dict[str, str] = field(default_factory=dict)
    live: bool = False
