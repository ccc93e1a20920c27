"""One parameter seen as a coordinate in [0, 1], honouring its distribution, and its grid.

`decode` maps a uniform number to a value drawn from the parameter's distribution (inverse
CDF), so random search and Sobol honour uniform, logUniform, normal and logNormal alike;
`encode` is its inverse for numeric parameters (used by CMA-ES). Parameters with a grid
(int, double with step, discrete, categorical) decode to grid points only.

Normal and logNormal take their mean and deviation from the bounds
(`Parameter.normal_params`: Katib's hyperopt mapping, [min, max] is mean -/+ 3 deviations)
and are truncated to [min, max] so every value stays feasible without piling up on the
bounds as clipping would.
"""

from __future__ import annotations

import math
from fractions import Fraction
from statistics import NormalDist

from tuner.space import Distribution, Parameter, ParameterType, Value

_STD = NormalDist()
_MEMO_LIMIT = 100_000
_TAIL = 3.0  # normal_params puts the bounds at mean -/+ 3 deviations
_CDF_LO, _CDF_HI = _STD.cdf(-_TAIL), _STD.cdf(_TAIL)


def _exact(x: int | float) -> Fraction:
    # The decimal the user wrote (0.1 is 1/10), so grid points match tuner.space's grid.
    return Fraction(x) if isinstance(x, int) else Fraction(repr(float(x)))


class Coordinate:
    """A parameter with its grid (if any) and its [0, 1] <-> value mapping."""

    def __init__(self, p: Parameter) -> None:
        self.parameter = p
        self.name = p.name
        self.distribution = p.distribution or Distribution.UNIFORM
        self.is_list = p.type in (ParameterType.CATEGORICAL, ParameterType.DISCRETE)
        self.values: tuple[Value, ...] = tuple(p.values)
        self.size: int | None  # number of grid points; None for a double without step
        self._doubles: dict[int, float] = {}
        # value met in a request -> its canonical value: requests repeat their trials.
        self._canonical: dict[Value, Value] = {}
        if self.is_list:
            self.size = len(self.values)
            return
        self.lo, self.hi = float(p.min), float(p.max)  # type: ignore[arg-type]
        self._mu_sigma = (
            p.normal_params()
            if self.distribution in (Distribution.NORMAL, Distribution.LOG_NORMAL)
            else (0.0, 0.0)
        )
        if p.type is ParameterType.INT:
            self._lo_x, self._step_x = Fraction(int(p.min)), Fraction(int(p.step or 1))  # type: ignore[arg-type]
        elif p.step is not None:
            self._lo_x, self._step_x = _exact(p.min), _exact(p.step)  # type: ignore[arg-type]
        else:
            self.size = None
            self._range = (self.lo, self.hi)
            return
        self.size = math.floor((_exact(p.max) - self._lo_x) / self._step_x) + 1  # type: ignore[arg-type]
        self.step = float(self._step_x)
        # A uniform grid decodes over [lo - step/2, top + step/2] so edge points are as
        # likely as inner ones once snapped.
        top = float(self._lo_x + (self.size - 1) * self._step_x)
        half = self.step / 2 if self.distribution is Distribution.UNIFORM else 0.0
        self._range = (self.lo - half, top + half)

    @property
    def is_numeric(self) -> bool:
        return not self.is_list

    @property
    def is_int(self) -> bool:
        return self.parameter.type is ParameterType.INT

    # -- grid -------------------------------------------------------------------------

    def value_at(self, k: int) -> Value:
        """The k-th grid point (0 <= k < size)."""
        if self.is_list:
            return self.values[k]
        if self.is_int:
            return int(self._lo_x + k * self._step_x)
        # Exact arithmetic is slow and every request re-canonicalises all trials: remember
        # the points met so far (as many as distinct values in the trials).
        value = self._doubles.get(k)
        if value is None:
            value = self._doubles[k] = float(self._lo_x + k * self._step_x)
        return value

    def nearest_index(self, x: float) -> int:
        assert self.size is not None and not self.is_list
        k = round((x - self.lo) / self.step)
        return min(max(k, 0), self.size - 1)

    def canonical(self, value: Value) -> Value:
        """The value as this parameter's own point: a grid point, a list entry, a float."""
        known = self._canonical.get(value)
        if known is None:
            if len(self._canonical) > _MEMO_LIMIT:
                self._canonical.clear()
            known = self._canonical[value] = self._canonical_of(value)
        return known

    def index(self, value: Value) -> int:
        """The grid index of a value of this parameter (finite parameters only)."""
        if self.is_list:
            canonical = self.canonical(value)
            for k, v in enumerate(self.values):
                if v == canonical:
                    return k
            raise ValueError(f"{value!r} is not a value of parameter {self.name!r}")
        return self.nearest_index(float(value))

    def _canonical_of(self, value: Value) -> Value:
        if self.is_list:
            for v in self.values:
                if v == value:
                    return v
            return value
        if self.size is None:
            return float(value)
        return self.value_at(self.nearest_index(float(value)))

    def snap(self, x: float) -> Value:
        """A number from a continuous optimiser turned into a feasible value."""
        if self.size is not None and not self.is_list:
            return self.value_at(self.nearest_index(x))
        return min(max(float(x), self.lo), self.hi)

    # -- [0, 1] mapping ---------------------------------------------------------------

    def decode(self, u: float) -> Value:
        u = min(max(float(u), 0.0), 1.0)
        if self.is_list:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        return self.snap(self._continuous(u))

    def encode(self, value: Value) -> float:
        """Inverse of `decode` up to snapping: where ``value`` sits in [0, 1]."""
        if self.is_list:
            return (self.values.index(self.canonical(value)) + 0.5) / len(self.values)
        x, d = float(value), self.distribution
        if d is Distribution.UNIFORM:
            a, b = self._range
            u = (x - a) / (b - a) if b > a else 0.5
        elif d is Distribution.LOG_UNIFORM:
            a, b = math.log(self.lo), math.log(self.hi)
            u = (math.log(x) - a) / (b - a) if b > a else 0.5
        else:
            mu, sigma = self._mu_sigma
            y = math.log(x) if d is Distribution.LOG_NORMAL else x
            if sigma == 0:
                return 0.5
            u = (_STD.cdf(max(min((y - mu) / sigma, _TAIL), -_TAIL)) - _CDF_LO) / (
                _CDF_HI - _CDF_LO
            )
        return min(max(u, 0.0), 1.0)

    def _continuous(self, u: float) -> float:
        d = self.distribution
        if d is Distribution.UNIFORM:
            a, b = self._range
            return a + u * (b - a)
        if d is Distribution.LOG_UNIFORM:
            a, b = math.log(self.lo), math.log(self.hi)
            return math.exp(a + u * (b - a))
        mu, sigma = self._mu_sigma
        z = _STD.inv_cdf(_CDF_LO + u * (_CDF_HI - _CDF_LO)) if sigma > 0 else 0.0
        y = mu + sigma * z
        return math.exp(y) if d is Distribution.LOG_NORMAL else y
