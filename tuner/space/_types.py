"""Parameter and search-space value types: validation, wire strings, membership and grid.

Wire strings (what Katib's protobuf and the trial template carry):

- int: integer literals only (``"3"``, ``" -2 "``); ``"3.0"`` and ``"1e3"`` are refused, as
  Katib's own services (``int(value)``) would refuse them. Formatted with ``str(int)``.
- double: decimal literals (``"0.5"``, ``"1e-3"``, ``"3"``); ``nan``/``inf``, hex and
  ``_`` forms are refused. Formatted with ``repr(float(x))``: the shortest string that reads
  back to the same double, so integral doubles keep their ``.0`` (``"3.0"``) and tiny or huge
  ones use exponents (``"1e-300"``).
- discrete: parsed as a number and matched numerically to a list entry, which is returned
  with its own type (with the list ``["1", "2.5"]``, ``"1.0"`` parses to the int ``1`` and
  formats back as ``"1"``); a list entry written with integer syntax is an int, any other a
  float.
- categorical: the exact string, which must be in the list.

Distributions (only for double and int; Katib's hyperopt service defines the mapping):
uniform and logUniform sample in [min, max] (logUniform on log scale). normal uses mean
``(min + max) / 2`` and sigma ``(max - min) / 6`` (so [min, max] is +-3 sigma); logNormal
does the same on ``log(min)``, ``log(max)`` (see ``Parameter.normal_params``). Katib lets
normal samples leave [min, max]; here algorithms clip them with ``Parameter.nearest`` so every
suggestion is ``contains``-ed. ``step`` quantises any distribution to the grid
``min + k*step`` of Katib's grid service (hyperopt's q-distributions round to multiples of
step instead; the two agree when min is a multiple of step).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.space import _grid, _rules
from tuner.space._base import (
    Assignment,
    Distribution,
    ParameterType,
    Problem,
    SpaceError,
    Value,
)
from tuner.space._numbers import (
    NumberSyntaxError,
    format_float,
    format_int,
    format_number,
    is_finite,
    is_integral,
    is_real,
    lenient_number,
    parse_float,
    parse_int,
    parse_number,
    show,
)

__all__ = [
    "Assignment",
    "Distribution",
    "Parameter",
    "ParameterType",
    "Problem",
    "SearchSpace",
    "SpaceError",
    "Value",
]

_NUMERIC = (ParameterType.INT, ParameterType.DOUBLE)
_LOG = (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL)


@dataclass(frozen=True)
class Parameter:
    """One parameter of the search space.

    ``min``/``max``/``step`` are numbers (int for INT, float for DOUBLE) or None;
    ``values`` holds the ``feasibleSpace.list`` entries already parsed (numbers for DISCRETE,
    strings for CATEGORICAL). ``distribution`` is None when the spec did not set one
    (algorithms then treat it as uniform).

    Construction normalises but never validates: ``type``/``distribution`` given as their
    YAML spelling become enums (SpaceError if unknown; ``""`` distribution means None),
    ``values`` becomes a tuple, wire strings for numbers are parsed (``""`` means unset),
    ints become floats for DOUBLE, numpy scalars become plain Python numbers. Anything that
    cannot be parsed is kept as given, for ``problems()`` to report.
    """

    name: str
    type: ParameterType
    min: int | float | None = None
    max: int | float | None = None
    step: int | float | None = None
    values: tuple[Value, ...] = ()
    distribution: Distribution | None = None

    def __post_init__(self) -> None:
        kind = _enum(ParameterType, self.type, self.name, "parameterType")
        dist = None
        if self.distribution is not None and self.distribution != "":
            dist = _enum(Distribution, self.distribution, self.name, "feasibleSpace.distribution")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "distribution", dist)
        for name in ("min", "max", "step"):
            object.__setattr__(self, name, _bound(getattr(self, name), kind))
        values = tuple(self.values)
        if kind is ParameterType.DISCRETE:
            values = tuple(_plain(lenient_number(v, keep_int=True)) for v in values)
        object.__setattr__(self, "values", values)

    @classmethod
    def from_wire(
        cls,
        name: str,
        type: ParameterType | str,
        *,
        min: str | int | float | None = None,
        max: str | int | float | None = None,
        step: str | int | float | None = None,
        values: Iterable[str | int | float] = (),
        distribution: Distribution | str | None = None,
    ) -> Parameter:
        """Build from Katib's string form (YAML or protobuf ``FeasibleSpace``); never raises
        for bad numbers (see ``problems()``), only for an unknown type or distribution."""
        return cls(
            name=name,
            type=type,  # type: ignore[arg-type]
            min=min,  # type: ignore[arg-type]
            max=max,  # type: ignore[arg-type]
            step=step,  # type: ignore[arg-type]
            values=tuple(values),
            distribution=distribution,  # type: ignore[arg-type]
        )

    @property
    def is_numeric(self) -> bool:
        """INT or DOUBLE: a range with min/max (and maybe step), not a list."""
        return self.type in _NUMERIC

    @property
    def is_log(self) -> bool:
        """Whether the distribution works on a log scale (logUniform, logNormal)."""
        return self.distribution in _LOG

    def problems(self) -> list[Problem]:
        """Every rule this definition breaks (empty when valid); never raises."""
        return _rules.parameter_problems(self)

    def check(self) -> None:
        """Raise SpaceError naming every problem of this definition, if it has any."""
        problems = self.problems()
        if problems:
            raise SpaceError(f"parameter {self.name!r}: " + "; ".join(map(str, problems)))

    def parse(self, text: str) -> Value:
        """Parse a wire string into this parameter's typed value; SpaceError if malformed."""
        if not isinstance(text, str):
            raise SpaceError(f"parameter {self.name!r}: {show(text)} is not a string")
        try:
            if self.type is ParameterType.INT:
                return parse_int(text)
            if self.type is ParameterType.DOUBLE:
                return parse_float(text)
            if self.type is ParameterType.DISCRETE:
                return self._entry(parse_number(text), text)
        except NumberSyntaxError as e:
            raise SpaceError(f"parameter {self.name!r}: {text!r} {e}") from e
        return self._entry(text, text)

    def format(self, value: Value) -> str:
        """Format a typed value as the exact wire string (ints without '.0', floats repr).

        INT also takes an integral float (``3.0`` -> ``"3"``); list types take only a list
        entry. Bounds and step are not checked here: that is ``contains``.
        """
        if self.type is ParameterType.INT:
            if is_integral(value):
                return format_int(value)  # type: ignore[arg-type]
            if is_finite(value) and float(value).is_integer():
                return format_int(int(value))
            raise SpaceError(f"parameter {self.name!r}: {show(value)} is not an integer")
        if self.type is ParameterType.DOUBLE:
            if is_finite(value):
                return format_float(value)  # type: ignore[arg-type]
            raise SpaceError(f"parameter {self.name!r}: {show(value)} is not a finite number")
        entry = self._entry(value, value)
        return entry if isinstance(entry, str) else format_number(entry)

    def contains(self, value: Value) -> bool:
        """Whether ``value`` lies in the feasible space (bounds, list, step grid).

        A double with a step matches grid point ``min + k*step`` within 1e-9 step, to
        tolerate floating-point arithmetic in algorithms; ints match exactly. An integral
        float counts for INT. Never raises, even for a broken definition (whose answer is
        then meaningless: check ``problems()`` first).
        """
        try:
            return self._contains(value)
        except (TypeError, ValueError, ArithmeticError):
            return False

    def grid_values(self) -> list[Value]:
        """The discretised values in order; SpaceError for a double without step."""
        self.check()
        axis = _grid.axis(self)
        return [axis.value(k) for k in range(axis.size)]

    def grid_size(self) -> int:
        """``len(grid_values())`` without building the list; SpaceError as grid_values."""
        self.check()
        return _grid.axis(self).size

    def nearest(self, value: Value) -> Value:
        """The feasible value closest to ``value``: for algorithms that sample in a
        continuous space. Numbers are clipped to [min, max] and rounded to the step grid
        (ties to the even grid index); DISCRETE gives the closest list entry (the first on a
        tie); CATEGORICAL accepts only a list entry. SpaceError if the definition is broken
        or ``value`` is not a finite number (or, for CATEGORICAL, not in the list)."""
        self.check()
        if self.type is ParameterType.CATEGORICAL:
            return self._entry(value, value)
        if not is_finite(value):
            raise SpaceError(f"parameter {self.name!r}: {show(value)} is not a finite number")
        number = int(value) if is_integral(value) else float(value)
        if self.type is ParameterType.DISCRETE:
            return min(self.values, key=lambda entry: abs(entry - number))  # type: ignore[operator]
        if self.type is ParameterType.DOUBLE and self.step is None:
            lo, hi = float(self.min), float(self.max)  # type: ignore[arg-type]
            return min(max(float(number), lo), hi)
        return _grid.axis(self).value(_grid.nearest_index(self, number))

    def normal_params(self) -> tuple[float, float]:
        """``(mu, sigma)`` of a normal or logNormal parameter, as Katib's hyperopt service
        derives them: mu is the middle of [min, max] and sigma a sixth of its width; for
        logNormal both are on the natural-log scale (``exp(N(mu, sigma))`` is the value)."""
        self.check()
        if self.distribution not in (Distribution.NORMAL, Distribution.LOG_NORMAL):
            current = self.distribution.value if self.distribution else "unset (uniform)"
            raise SpaceError(
                f"parameter {self.name!r}: normal_params() needs distribution normal or"
                f" logNormal, not {current}"
            )
        lo, hi = float(self.min), float(self.max)  # type: ignore[arg-type]
        if self.distribution is Distribution.LOG_NORMAL:
            lo, hi = math.log(lo), math.log(hi)
        return (lo + hi) / 2, (hi - lo) / 6

    def _contains(self, value: Any) -> bool:
        if self.type is ParameterType.CATEGORICAL:
            return isinstance(value, str) and value in self.values
        if not is_finite(value):
            return False
        if self.type is ParameterType.DISCRETE:
            return any(value == entry for entry in self.values if is_real(entry))
        if self.type is ParameterType.INT:
            if not is_integral(value) and not float(value).is_integer():
                return False
            number, lo, hi = int(value), int(self.min), int(self.max)  # type: ignore[arg-type]
            return lo <= number <= hi and (number - lo) % int(self.step or 1) == 0
        if self.step is None:
            return self.min <= value <= self.max
        return _grid.on_grid(self, float(value))

    def _entry(self, value: object, shown: object) -> Value:
        """The list entry equal to ``value`` (numerically for DISCRETE) or SpaceError."""
        numeric = self.type is ParameterType.DISCRETE
        if numeric == is_real(value):
            for entry in self.values:
                if entry == value and is_real(entry) == numeric:
                    return entry
        listed = ", ".join(show(v) for v in self.values)
        raise SpaceError(
            f"parameter {self.name!r}: {show(shown)} is not in feasibleSpace.list [{listed}]"
        )


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters with unique names.

    ``parameters`` may be given as any iterable; it is stored as a tuple so the space is
    hashable. Only ``problems()``/``check()`` validate; ``grid()`` and ``grid_size()`` call
    ``check()`` first.
    """

    parameters: tuple[Parameter, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", tuple(self.parameters))

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise SpaceError(f"unknown parameter {name!r}; the space has {self._listing()}")

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def problems(self) -> list[Problem]:
        """Every rule the space breaks; fields are ``parameters[i].<field>``. Never raises."""
        return _rules.space_problems(self.parameters)

    def check(self) -> None:
        """Raise SpaceError naming every problem of the space, if it has any."""
        problems = self.problems()
        if problems:
            raise SpaceError("; ".join(map(str, problems)))

    def grid(self) -> Iterator[Assignment]:
        """Every point of the discretised space, first parameter varying slowest.

        Validates eagerly (SpaceError at the call, e.g. for a double without step), then
        yields lazily: no parameter's values are materialised.
        """
        self.check()
        return _grid.product([_grid.axis(p) for p in self.parameters])

    def grid_size(self) -> int:
        """The number of points ``grid()`` yields, computed without iterating."""
        self.check()
        return math.prod(_grid.axis(p).size for p in self.parameters)

    def contains(self, assignment: Mapping[str, Value]) -> bool:
        """Whether the assignment names exactly this space's parameters, each feasible."""
        if set(assignment) != set(self.names):
            return False
        return all(p.contains(assignment[p.name]) for p in self.parameters)

    def parse(self, wire: Mapping[str, str]) -> Assignment:
        """Typed values, in parameter order, from wire strings; SpaceError naming unknown or
        missing parameters, or the first value that does not parse."""
        self._check_names(wire)
        return {p.name: p.parse(wire[p.name]) for p in self.parameters}

    def format(self, assignment: Mapping[str, Value]) -> dict[str, str]:
        """Wire strings, in parameter order; SpaceError as ``parse``."""
        self._check_names(assignment)
        return {p.name: p.format(assignment[p.name]) for p in self.parameters}

    def _check_names(self, given: Mapping[str, object]) -> None:
        names = self.names
        unknown = [repr(k) for k in given if k not in names]
        missing = [repr(n) for n in names if n not in given]
        reasons = []
        if unknown:
            reasons.append("unknown parameter " + ", ".join(unknown))
        if missing:
            reasons.append("missing parameter " + ", ".join(missing))
        if reasons:
            raise SpaceError("; ".join(reasons) + f"; the space has {self._listing()}")

    def _listing(self) -> str:
        return ", ".join(repr(n) for n in self.names) or "no parameters"


def _enum(kind: type[enum.Enum], value: object, name: object, field_name: str) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except (TypeError, ValueError) as e:
        allowed = ", ".join(member.value for member in kind)
        raise SpaceError(
            f"parameter {name!r}: {field_name}: {value!r} is not one of {allowed}"
        ) from e


def _bound(raw: object, kind: ParameterType) -> Any:
    if raw is None or raw == "":
        return None
    return _plain(lenient_number(raw, keep_int=kind is not ParameterType.DOUBLE), kind)


def _plain(value: object, kind: ParameterType | None = None) -> Any:
    """Plain Python numbers (numpy scalars too); ints become floats for DOUBLE."""
    try:
        if is_integral(value):
            integer = int(value)  # type: ignore[call-overload]
            return float(integer) if kind is ParameterType.DOUBLE else integer
        if is_real(value):
            return float(value)  # type: ignore[arg-type]
    except OverflowError:
        pass
    return value
