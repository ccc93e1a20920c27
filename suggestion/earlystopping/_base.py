"""The early-stopping contract: rules computed from finished trials' metric histories."""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


class EarlyStoppingAlgorithm(abc.ABC):
    """Computes stopping rules for the running trials of one experiment.

    Call order: `parse(settings)` once per settings (raising `SettingsError`), then
    `rules(...)` any number of times. Stateless: every call gets all it needs, so any
    instance (or a restarted server) gives the same answer. Thread-safe for that reason.
    """

    name: ClassVar[str]
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = ()

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
