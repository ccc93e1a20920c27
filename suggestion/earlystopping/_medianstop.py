"""Median stopping: stop a trial whose early result is worse than the median of finished ones.

Katib's settings and rule shape; the statistic is a true median where Katib takes a mean.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from suggestion.algorithms import SettingSpec, integer
from suggestion.earlystopping._base import Comparison, EarlyStoppingAlgorithm, StoppingRule
from tuner.space import Direction


class MedianStop(EarlyStoppingAlgorithm):
    """For each succeeded trial, the mean of its first ``start_step`` reported objective
    values (the running average of the median stopping rule, Golovin et al. 2017); the rule
    value is the median of those over the succeeded trials. A trial is stopped when, after
    ``start_step`` reports, its value is below the median (maximize: LESS) or above it
    (minimize: GREATER). No rule until ``min_trials_required`` trials have succeeded.

    Settings: ``min_trials_required`` (integer >= 1, default 3), ``start_step`` (integer >=
    1, default 4).
    """

    name = "medianstop"
    settings_spec = (
        SettingSpec("min_trials_required", integer(minimum=1), 3),
        SettingSpec("start_step", integer(minimum=1), 4),
    )

    @classmethod
    def rules(
        cls,
        settings: Mapping[str, Any],
        goal: Direction,
        metric: str,
        histories: Mapping[str, Sequence[float]],
    ) -> list[StoppingRule]:
        start_step = settings["start_step"]
        averages = [statistics.fmean(h[:start_step]) for h in histories.values() if h]
        if len(averages) < settings["min_trials_required"]:
            return []
        comparison = Comparison.LESS if goal is Direction.MAXIMIZE else Comparison.GREATER
        return [StoppingRule(metric, statistics.median(averages), comparison, start_step)]
