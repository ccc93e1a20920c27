"""Grid search: every point of the discretised space, in order, each exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from suggestion.algorithms._base import Algorithm, SpaceNotSupportedError, TrialView
from suggestion.algorithms._settings import RANDOM_STATE
from tuner.space import Assignment, ParameterType, SearchSpace


class GridSearch(Algorithm):
    """Walks the grid in `tuner.space` order (first parameter slowest), skipping used points.

    Doubles need ``feasibleSpace.step``; ints use step 1 unless given. Distributions do not
    change which points a grid holds, so every distribution is accepted. ``random_state`` is
    accepted for Katib compatibility and has no effect. When every grid point is used the
    reply holds fewer points than requested: the exhaustion signal.
    """

    name = "grid"
    settings_spec = (RANDOM_STATE,)
    fill_with_random = False

    @classmethod
    def check_space(cls, space: SearchSpace, settings: Mapping[str, Any]) -> None:
        for p in space.parameters:
            if p.type is ParameterType.DOUBLE and p.step is None:
                raise SpaceNotSupportedError(
                    p.name,
                    f"grid needs feasibleSpace.step for a double parameter (min {p.min!r},"
                    f" max {p.max!r}); set a step or choose another algorithm",
                )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every grid point before this index is known to be used: a warm call starts here.
        self._cursor = 0

    def _propose(self, trials: Sequence[TrialView], count: int) -> list[Assignment]:
        taken = set(self.points.trial_indices(trials))
        size = self.points.size or 0
        free = (i for i in range(self._cursor, size) if i not in taken)
        chosen: list[Assignment] = []
        for index in free:
            if not chosen:
                self._cursor = index
            chosen.append(self.points.point(index))
            if len(chosen) == count:
                break
        else:
            if not chosen:
                self._cursor = self.points.size or 0
        return chosen
