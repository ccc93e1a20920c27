"""Random search: independent draws from each parameter's distribution."""

from __future__ import annotations

from collections.abc import Sequence

from suggestion.algorithms._base import Algorithm, TrialView
from suggestion.algorithms._settings import RANDOM_STATE
from tuner.space import Assignment


class RandomSearch(Algorithm):
    """Draws every parameter independently; honours every type and distribution, and any
    number of objectives (it reads no values).

    The k-th trial's draw depends only on ``random_state`` and k (the trials in the request
    plus its place in the reply), so a restarted server continues exactly where the old one
    would have, and how trials happen to be batched (two parallel trials ending together or
    one at a time) does not change the sequence.
    """

    name = "random"
    settings_spec = (RANDOM_STATE,)
    multi_objective = True  # values are never read

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        first = len(trials)
        return [self.points.random(self.rng_for(first + i)) for i in range(count)]
