"""Points of a search space: canonical keys, grid indexing, and unused-point completion.

Every algorithm's proposals pass through `PointSet.complete`, which drops repeats of used
points (trials of the request, earlier proposals of the same reply) and fills the gaps
with random unused points, enumerating the unused grid points of a small finite space
when random draws keep hitting used ones. It returns fewer points than asked only when
none is left.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from suggestion.algorithms._unit import Coordinate
from tuner.space import Assignment, SearchSpace, Value

if TYPE_CHECKING:
    from suggestion.algorithms._base import TrialView

Key = tuple[Value, ...]


class KeySet(Protocol):
    """A set of point keys as `PointSet.complete` uses it: a `set`, or a trial table's
    `UnreadKeys`."""

    def __contains__(self, key: object, /) -> bool: ...

    def __iter__(self) -> Iterator[Key]: ...

    def __len__(self) -> int: ...

    def add(self, key: Key, /) -> None: ...

    def update(self, keys: Iterable[Key], /) -> None: ...

    def copy(self) -> KeySet: ...


RANDOM_ATTEMPTS = 64
"""Random draws tried per missing point before enumerating the unused grid points."""

MEMO_LIMIT = 200_000
"""Remembered keys and grid indices per point set; beyond it the memo starts over."""

ENUMERATION_LIMIT = 1_000_000
"""Largest finite space whose unused points are enumerated; beyond it, random draws only."""


class PointSet:
    """The points of one search space, identified by canonical keys."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.coordinates = tuple(Coordinate(p) for p in space.parameters)
        sizes = [c.size for c in self.coordinates if c.size is not None]
        self.size: int | None = math.prod(sizes) if len(sizes) == len(self.coordinates) else None
        # id(assignment) -> (assignment, key): a request's trials are the same objects call
        # after call (the service decodes each trial once), and each call keys them several
        # times. The assignment is kept so its id cannot be reused while remembered.
        self._keys: dict[int, tuple[Mapping[str, Value], Key]] = {}
        self._indices: dict[Key, int] = {}

    @property
    def finite(self) -> bool:
        return self.size is not None

    def key(self, assignment: Mapping[str, Value]) -> Key:
        known = self._keys.get(id(assignment))
        if known is not None and known[0] is assignment:
            return known[1]
        key = tuple([c.canonical(assignment[c.name]) for c in self.coordinates])
        if len(self._keys) > MEMO_LIMIT:
            self._keys.clear()
        self._keys[id(assignment)] = (assignment, key)
        return key

    def used_keys(self, assignments: Iterable[Mapping[str, Value]]) -> set[Key]:
        return {self.key(a) for a in assignments}

    def trial_keys(self, trials: Sequence[TrialView]) -> list[Key]:
        """The point key of every trial, in order (from the columns of a `TrialTable`)."""
        point_keys = getattr(trials, "point_keys", None)
        if point_keys is not None:
            return point_keys(self)
        return [self.key(t.assignment) for t in trials]

    def canonical(self, assignment: Mapping[str, Value]) -> Assignment:
        return {c.name: c.canonical(assignment[c.name]) for c in self.coordinates}

    # -- grid -------------------------------------------------------------------------

    def point(self, index: int) -> Assignment:
        """The index-th grid point, first parameter varying slowest (tuner.space order)."""
        values: list[Value] = []
        for c in reversed(self.coordinates):
            assert c.size is not None
            index, k = divmod(index, c.size)
            values.append(c.value_at(k))
        return {c.name: v for c, v in zip(self.coordinates, reversed(values), strict=True)}

    def index(self, key: Key) -> int:
        """The grid index of a canonical key (inverse of `point`): index arithmetic only."""
        known = self._indices.get(key)
        if known is not None:
            return known
        index = 0
        for c, value in zip(self.coordinates, key, strict=True):
            assert c.size is not None
            index = index * c.size + c.index(value)
        if len(self._indices) > MEMO_LIMIT:
            self._indices.clear()
        self._indices[key] = index
        return index

    def trial_key_set(self, trials: Sequence[TrialView]) -> KeySet:
        """The set of `trial_keys`; not to be changed (copy it): a `TrialTable`'s is
        remembered and grown from the shorter table it was made from."""
        point_key_set = getattr(trials, "point_key_set", None)
        if point_key_set is not None:
            return point_key_set(self)
        return set(self.trial_keys(trials))

    def trial_indices(self, trials: Sequence[TrialView]) -> list[int]:
        """The grid index of every trial's point, in order (`index` of `trial_keys`),
        computed a coordinate at a time for all trials."""
        assert self.size is not None
        grid_indices = getattr(trials, "grid_indices", None)
        if grid_indices is not None:
            found = grid_indices(self)
            if found is not None:
                return found
        keys = self.trial_keys(trials)
        if not keys or self.size >= 2**62:
            return [self.index(key) for key in keys]
        flat = np.zeros(len(keys), dtype=np.int64)
        for c, column in zip(self.coordinates, zip(*keys, strict=True), strict=True):
            assert c.size is not None
            if c.is_list:
                first: dict[Value, int] = {}
                for k, value in enumerate(c.values):
                    first.setdefault(value, k)
                try:
                    found = np.fromiter(map(first.__getitem__, column), np.int64, len(column))
                except KeyError:  # not a value of the list: `index` says so
                    return [self.index(key) for key in keys]
            else:
                # `Coordinate.nearest_index`, elementwise (numpy rounds half to even too).
                x = np.array(column, dtype=float)
                found = np.clip(np.round((x - c.lo) / c.step), 0, c.size - 1).astype(np.int64)
            flat = flat * c.size + found
        return flat.tolist()

    def unused_indices(self, used: KeySet, start: int = 0) -> Iterator[int]:
        assert self.size is not None
        taken = {self.index(key) for key in used}
        for index in range(start, self.size):
            if index not in taken:
                yield index

    # -- sampling ---------------------------------------------------------------------

    def decode(self, unit: Sequence[float] | np.ndarray) -> Assignment:
        return {c.name: c.decode(u) for c, u in zip(self.coordinates, unit, strict=True)}

    def random(self, rng: np.random.Generator) -> Assignment:
        return self.decode(rng.random(len(self.coordinates)))

    def complete(
        self,
        proposals: Iterable[Mapping[str, Value]],
        count: int,
        used: KeySet,
        rng: np.random.Generator | Callable[[], np.random.Generator],
        *,
        fill: bool = True,
    ) -> list[Assignment]:
        """Up to ``count`` distinct unused points: the proposals first, then random ones.

        ``used`` is extended with what is returned. Without ``fill`` repeats are dropped,
        not replaced (grid search: its own proposals are already every unused point).
        ``rng``: the generator of the random ones, or a function making it, called only
        when one is needed (seeding a generator costs more than a usual call's rest).
        """
        chosen: list[Assignment] = []
        for proposal in proposals:
            if len(chosen) == count:
                break
            point = self.canonical(proposal)
            key = self.key(point)
            if key not in used:
                used.add(key)
                chosen.append(point)
        if not fill or len(chosen) == count:
            return chosen
        generator = rng() if callable(rng) else rng
        while len(chosen) < count:
            extra = self._random_unused(used, generator)
            if extra is None:
                break
            used.add(self.key(extra))
            chosen.append(extra)
        return chosen

    def _random_unused(self, used: KeySet, rng: np.random.Generator) -> Assignment | None:
        if self.size is not None and len(used) >= self.size:
            return None
        for _ in range(RANDOM_ATTEMPTS):
            point = self.random(rng)
            if self.key(point) not in used:
                return point
        if self.size is None or self.size > ENUMERATION_LIMIT:
            # A continuous space never gets here in practice; a huge finite one that is this
            # full is reported as exhausted rather than scanned.
            return None
        free = list(self.unused_indices(used))
        if not free:
            return None
        return self.point(free[int(rng.integers(len(free)))])
