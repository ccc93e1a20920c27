"""The early-stopping contract: rules computed from finished trials' metric histories."""

from __future__ import annotations

import abc
import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from suggestion.algorithms import SettingsError, SettingSpec, parse_settings
from tuner.space import Direction


class Comparison(enum.Enum):
    """How a running trial's metric is compared with the rule's value to stop it."""

    EQUAL = "equal"
    LESS = "less"
    GREATER = "greater"


@dataclass(frozen=True)
class StoppingRule:
    """Stop a trial once it reported ``start_step`` values of ``metric`` and its latest one
    compares to ``value`` as ``comparison`` says (Katib's EarlyStoppingRule)."""

    metric: str
    value: float
    comparison: Comparison
    start_step: int


@dataclass(frozen=True)
class Report:
    """One reported value of the objective metric: the trial's ``step`` (the resource it
    has used so far, as the metrics collector or ``report_metrics(step=...)`` numbered it)
    and the ``time`` it was stored (timezone-aware)."""

    step: int
    value: float
    time: datetime


class EarlyStoppingAlgorithm(abc.ABC):
    """Computes stopping rules for the running trials of one experiment.

    Call order: `parse(settings)` once per settings (raising `SettingsError`), then
    `rules(...)` (and, when `per_trial`, `stops(...)`) any number of times. Stateless:
    every call gets all it needs, so any instance (or a restarted server) gives the same
    answer. Thread-safe for that reason.
    """

    name: ClassVar[str]
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = ()
    per_trial: ClassVar[bool] = False
    """False: the algorithm answers with `rules` from the succeeded trials' histories, and
    its answer changes only when a trial ends (medianstop, Katib's model). True: it names
    the running trials to stop with `stops`, from every trial's reports (running ones
    included), and its answer may change whenever a running trial reports, so the client
    asks again then (asha)."""

    @classmethod
    def parse(cls, settings: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        return parse_settings(cls.name, cls.settings_spec, settings, SettingsError)

    @classmethod
    @abc.abstractmethod
    def rules(
        cls,
        settings: Mapping[str, Any],
        goal: Direction,
        metric: str,
        histories: Mapping[str, Sequence[float]],
    ) -> list[StoppingRule]:
        """Rules from ``histories``: succeeded trial name -> the objective metric's values in
        the order they were reported (one per step)."""

    @classmethod
    def stops(
        cls,
        settings: Mapping[str, Any],
        goal: Direction,
        curves: Mapping[str, Sequence[Report]],
        running: Collection[str],
    ) -> dict[str, str]:
        """For a `per_trial` algorithm: trial name -> why, for each trial of ``running`` to
        stop now. ``curves``: every trial's reports of the objective metric, in the order
        they were stored; ``running``: the names of the trials still running."""
        return {}
