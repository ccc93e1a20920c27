"""The discretised space: grid points of one parameter by index, and their lazy product.

A double's grid point ``k`` is ``min + k*step`` computed exactly on the decimals the user
wrote (``0.1`` is 1/10) and then rounded once to the nearest double, so 0.1..0.5 by 0.1
gives ``0.3`` and not ``0.30000000000000004``. Katib's grid (``np.arange(min, max+step,
step)`` with the last point dropped when above max) selects the same points, with float noise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from tuner.space._base import Assignment, ParameterType, SpaceError, Value
from tuner.space._numbers import exact

if TYPE_CHECKING:
    from tuner.space._types import Parameter

# A double counts as on its step grid within this fraction of a step, so that values an
# algorithm computed as min + k*step in floating point are still recognised.
STEP_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Axis:
    """One parameter's grid: ``size`` points, the k-th given by ``value(k)``."""

    name: str
    size: int
    value: Callable[[int], Value]


def axis(p: Parameter) -> Axis:
    """The grid of a valid parameter; SpaceError for a double without step.

    Remembered per parameter (by value): a double's axis costs exact `Fraction` arithmetic,
    and a request's trials ask whether each distinct value is on the grid."""
    try:
        return _remembered_axis(p)
    except TypeError:  # unhashable: a definition kept as given, for problems() to report
        return _axis(p)


def _axis(p: Parameter) -> Axis:
    if p.type is ParameterType.INT:
        lo, step = int(p.min), int(p.step or 1)  # type: ignore[arg-type]
        size = (int(p.max) - lo) // step + 1  # type: ignore[arg-type]
        return Axis(p.name, size, lambda k: lo + k * step)
    if p.type is ParameterType.DOUBLE:
        if p.step is None:
            raise SpaceError(
                f"parameter {p.name!r}: a grid needs feasibleSpace.step for a double"
                f" (min {p.min!r}, max {p.max!r})"
            )
        flo, fstep = exact(p.min), exact(p.step)  # type: ignore[arg-type]
        size = math.floor((exact(p.max) - flo) / fstep) + 1  # type: ignore[arg-type]
        return Axis(p.name, size, lambda k: float(flo + k * fstep))
    values = p.values
    return Axis(p.name, len(values), values.__getitem__)


_remembered_axis = functools.lru_cache(maxsize=1024)(_axis)


def product(axes: Sequence[Axis]) -> Iterator[Assignment]:
    """Every combination, first axis varying slowest, without materialising any axis."""
    if any(a.size <= 0 for a in axes):
        return
    index = [0] * len(axes)
    current = [a.value(0) for a in axes]
    while True:
        yield {a.name: v for a, v in zip(axes, current, strict=True)}
        for d in range(len(axes) - 1, -1, -1):
            index[d] += 1
            if index[d] < axes[d].size:
                current[d] = axes[d].value(index[d])
                break
            index[d] = 0
            current[d] = axes[d].value(0)
        else:
            return


def on_grid(p: Parameter, value: float) -> bool:
    """Whether a number in a double's range lies on its step grid (within tolerance)."""
    ax = axis(p)
    step = float(p.step)  # type: ignore[arg-type]
    k = round((value - float(p.min)) / step)  # type: ignore[arg-type]
    if not 0 <= k < ax.size:
        return False
    return abs(value - ax.value(k)) <= STEP_TOLERANCE * step  # type: ignore[operator]


def nearest_index(p: Parameter, value: float) -> int:
    """The index of the grid point of a numeric parameter closest to a finite ``value``."""
    ax = axis(p)
    offset = (Fraction(value) - exact(p.min)) / exact(p.step or 1)  # type: ignore[arg-type]
    return min(max(round(offset), 0), ax.size - 1)
