"""ASHA: asynchronous successive halving as an early-stopping rule (Li et al. 2020).

A tuner extension: Katib has no ASHA. Its promotion rule is Optuna's
``SuccessiveHalvingPruner``; the decisions are recomputed from the stored reports at every
call, so a restarted server (or controller) reaches the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from suggestion.algorithms import SettingsError, SettingSpec, integer
from suggestion.earlystopping._base import EarlyStoppingAlgorithm, Report, StoppingRule
from tuner.space import Direction


@dataclass(frozen=True)
class _Arrival:
    """A trial's first report at or beyond a rung's step: the value it competes with."""

    time: datetime
    trial: str
    step: int
    value: float


class Asha(EarlyStoppingAlgorithm):
    """Rungs at steps ``min_resource * reduction_factor**k`` (k = 0, 1, ...; only those below
    ``max_resource`` when it is set). A trial *reaches* a rung with its first report whose
    step is at least the rung's step; that report's value is its value at the rung. It is
    compared there with the values of the trials that reached the rung before it (by the
    time their report was stored) and with its own: among those ``n`` values it must rank
    within the best ``max(1, n // reduction_factor)`` (ties pass), or it is stopped. Each
    trial is judged once per rung, with what was known when it reached the rung, so a
    trial once promoted is never stopped later at that rung; a trial stopped at a rung does
    not compete at the rungs above it, even if it reported further before the controller
    stopped it. Every trial counts, whatever its state: running, succeeded, early-stopped,
    failed.

    Settings: ``min_resource`` (integer >= 1, default 1: the grace period, the step of the
    first rung), ``reduction_factor`` (integer >= 2, default 4: keep the best 1/factor at
    each rung), ``max_resource`` (integer > ``min_resource``, default none: no last rung).
    """

    name = "asha"
    per_trial = True
    settings_spec = (
        SettingSpec("min_resource", integer(minimum=1), 1),
        SettingSpec("reduction_factor", integer(minimum=2), 4),
        SettingSpec("max_resource", integer(minimum=2), None),
    )

    @classmethod
    def parse(cls, settings: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        parsed = super().parse(settings)
        top, bottom = parsed["max_resource"], parsed["min_resource"]
        if top is not None and top <= bottom:
            raise SettingsError(
                "max_resource",
                str(top),
                f"is not greater than min_resource {bottom}: no rung would stop a trial;"
                " raise max_resource or lower min_resource",
            )
        return parsed

    @classmethod
    def rules(
        cls,
        settings: Mapping[str, Any],
        goal: Direction,
        metric: str,
        histories: Mapping[str, Sequence[float]],
    ) -> list[StoppingRule]:
        return []  # every decision is per trial: see `stops`

    @classmethod
    def rung_steps(cls, settings: Mapping[str, Any], up_to: int) -> list[int]:
        """The rungs' steps that are at most ``up_to``."""
        step, factor = settings["min_resource"], settings["reduction_factor"]
        top = settings["max_resource"]
        steps = []
        while step <= up_to and (top is None or step < top):
            steps.append(step)
            step *= factor
        return steps

    @classmethod
    def stops(
        cls,
        settings: Mapping[str, Any],
        goal: Direction,
        curves: Mapping[str, Sequence[Report]],
        running: Collection[str],
    ) -> dict[str, str]:
        verdicts = cls.verdicts(settings, goal, curves)
        return {name: why for name, why in verdicts.items() if name in running}

    @classmethod
    def verdicts(
        cls,
        settings: Mapping[str, Any],
        goal: Direction,
        curves: Mapping[str, Sequence[Report]],
    ) -> dict[str, str]:
        """Trial name -> why, for every trial that fails a rung (finished ones included)."""
        clean = {
            name: [r for r in reports if math.isfinite(r.value)] for name, reports in curves.items()
        }
        last = max((r.step for reports in clean.values() for r in reports), default=0)
        factor = settings["reduction_factor"]
        better = (lambda a, b: a < b) if goal is Direction.MINIMIZE else (lambda a, b: a > b)
        failed: dict[str, str] = {}
        for rung in cls.rung_steps(settings, last):
            arrivals = []
            for name, reports in clean.items():
                if name in failed:
                    continue
                first = next((r for r in reports if r.step >= rung), None)
                if first is not None:
                    arrivals.append(_Arrival(first.time, name, first.step, first.value))
            arrivals.sort(key=lambda a: (a.time, a.trial))
            seen: list[float] = []
            for arrival in arrivals:
                seen.append(arrival.value)
                keep = max(1, len(seen) // factor)
                ahead = sum(1 for v in seen if better(v, arrival.value))
                if ahead >= keep:
                    failed[arrival.trial] = (
                        f"its value {arrival.value!r} at step {arrival.step} (rung {rung}) is"
                        f" not among the best {keep} of the {len(seen)} trials that reached"
                        f" step {rung} so far (asha, reduction_factor {factor})"
                    )
        return failed
