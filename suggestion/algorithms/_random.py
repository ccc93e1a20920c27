"""Random search: independent draws from each parameter's distribution."""

from __future__ import annotations

from collections.abc import Sequence

from suggestion.algorithms._base import Algorithm, TrialView
from suggestion.algorithms._settings import RANDOM_STATE
from tuner.space import Assignment


class RandomSearch(Algorithm):
    """Draws every parameter independently; honours every type and distribution, and any
    number of objectives (it reads no values).

    The draws depend only on ``random_state`` and the number of trials in the request, so a
    restarted server continues exactly where the old one would have.
    """

    name = "random"
    settings_spec = (RANDOM_STATE,)
    multi_objective = True  # values are never read

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        rng = self.rng_for(len(trials))
        return [self.points.random(rng) for _ in range(count)]
