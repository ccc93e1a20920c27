"""Sobol quasi-random search: a low-discrepancy sequence through the unit cube.

Optuna's QMCSampler (what Katib's sobol runs) counts its position in the sequence in study
attributes that a restarted server would not have, so it would replay points already
tried. Here the position is the number of trials in the request, and the sequence is
scipy's ``qmc.Sobol`` (the engine QMCSampler uses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import qmc

from suggestion.algorithms._base import Algorithm, TrialView
from suggestion.algorithms._settings import RANDOM_STATE
from tuner.space import Assignment


class SobolSearch(Algorithm):
    """Points ``n .. n+count-1`` of the Sobol sequence, ``n`` being the trials so far.

    Without ``random_state`` the sequence is unscrambled, as in Katib (goptuna) and Optuna's
    default; with it, the sequence is scrambled with that seed. Every type and distribution
    is honoured (through each parameter's inverse CDF).
    """

    name = "sobol"
    settings_spec = (RANDOM_STATE,)

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        scrambled = self.settings.get("random_state") is not None
        engine = qmc.Sobol(
            d=len(self.points.coordinates),
            scramble=scrambled,
            rng=np.random.default_rng(self.seed) if scrambled else None,
        )
        start = len(trials)
        # Drawing a power-of-two block and slicing it avoids scipy's balance warning, which
        # is about sample sizes that are not powers of two (trials come a few at a time).
        block = engine.random_base2(max(0, math.ceil(math.log2(start + count))))
        return [self.points.decode(row) for row in block[start : start + count]]
