"""NSGA-II for multi-objective experiments: Optuna's NSGAIISampler (a tuner extension; Katib
has no multi-objective algorithm).

The study is rebuilt from each request, with every trial's generation given by its place in
the request (trial ``i`` belongs to generation ``i // population_size``), so a restarted
server and one that never stopped see the same generations and parents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from suggestion.algorithms._base import TrialView
from suggestion.algorithms._settings import (
    RANDOM_STATE,
    RuleViolationError,
    SettingSpec,
    integer,
)
from suggestion.algorithms._tpe import TPE
from tuner.space import Assignment


def probability(text: str) -> float:
    rule = "is not a number between 0 and 1"
    try:
        value = float(text.strip())
    except ValueError as e:
        raise RuleViolationError(rule) from e
    if not 0.0 <= value <= 1.0:
        raise RuleViolationError(rule)
    return value


class NSGA2(TPE):
    """Optuna's NSGAIISampler with Optuna's setting names and defaults: ``population_size``
    50 (>= 2), ``crossover_prob`` 0.9, ``swapping_prob`` 0.5, ``mutation_prob`` (unset:
    Optuna's ``1 / number of parameters``), ``random_state``. Honours uniform and logUniform
    (as tpe). Serves one objective too, though it is meant for several."""

    name = "nsga2"
    multi_objective = True
    settings_spec = (
        SettingSpec("population_size", integer(minimum=2), 50),
        SettingSpec("crossover_prob", probability, 0.9),
        SettingSpec("swapping_prob", probability, 0.5),
        SettingSpec("mutation_prob", probability, None),
        RANDOM_STATE,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._generations: dict[str, int] = {}
        self._generation_key = optuna.samplers.NSGAIISampler._get_generation_key()

    def _sampler(self, n_trials: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(
            population_size=self.settings["population_size"],
            crossover_prob=self.settings["crossover_prob"],
            swapping_prob=self.settings["swapping_prob"],
            mutation_prob=self.settings["mutation_prob"],
            seed=self.seed_for(n_trials),
        )

    def _columnar(self) -> bool:
        return False  # the columnar sampler is TPE's; NSGA-II always asks the study

    def _system_attrs(self, t: TrialView) -> dict[str, Any]:
        return {self._generation_key: self._generations[t.name]}

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        # NSGA-II's parents of a generation are cached in the study once chosen; rebuilding
        # it from the request keeps the answer a function of the request alone.
        self._new_study()
        size = self.settings["population_size"]
        self._generations = {t.name: i // size for i, t in enumerate(trials)}
        return super()._propose(trials, count)
