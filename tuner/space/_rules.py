"""The rules a parameter definition and a search space must follow, as lists of problems.

Katib's webhook checks the shape (min/max for double and int, list for discrete and
categorical); we also check what its suggestion services would otherwise trip over later:
order of bounds, step, numbers that are not numbers, duplicates, log scales below zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tuner.space._base import Distribution, ParameterType, Problem
from tuner.space._numbers import exact, is_integral, is_real, show

if TYPE_CHECKING:
    from tuner.space._types import Parameter

_RANGE_TYPES = (ParameterType.INT, ParameterType.DOUBLE)
_LOG = (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL)


def parameter_problems(p: Parameter) -> list[Problem]:
    problems: list[Problem] = []
    if not isinstance(p.name, str) or not p.name:
        problems.append(Problem("name", "must not be empty"))
    if p.type in _RANGE_TYPES:
        problems.extend(_range_problems(p))
    else:
        problems.extend(_list_problems(p))
    return problems


def space_problems(parameters: Sequence[Parameter]) -> list[Problem]:
    if not parameters:
        return [Problem("parameters", "must list at least one parameter")]
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    for i, p in enumerate(parameters):
        for problem in parameter_problems(p):
            problems.append(Problem(f"parameters[{i}].{problem.field}", problem.message))
        if not isinstance(p.name, str) or not p.name:
            continue
        if p.name in first_index:
            problems.append(
                Problem(
                    f"parameters[{i}].name",
                    f"{p.name!r} duplicates parameters[{first_index[p.name]}].name;"
                    " parameter names must be unique",
                )
            )
        else:
            first_index[p.name] = i
    return problems


_INT64 = 2**63


def _number_problem(value: object, *, integer: bool) -> str | None:
    """Why ``value`` is not a usable bound or step, or None when it is."""
    if not is_real(value):
        return f"{show(value)} is not a number"
    if is_integral(value) and not -_INT64 <= int(value) < _INT64:  # type: ignore[call-overload]
        return f"{show(value)} is beyond the 64-bit integer range the store and wire hold"
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return f"{show(value)} is beyond the range of a double"
    if as_float != as_float or as_float in (float("inf"), float("-inf")):
        return f"{show(value)} is not a finite number"
    if integer and not is_integral(value):
        return f"{show(value)} is not an integer"
    return None


def _range_problems(p: Parameter) -> list[Problem]:
    kind = p.type.value
    integer = p.type is ParameterType.INT
    problems: list[Problem] = []
    bounds_ok = True
    for field, value in (("min", p.min), ("max", p.max)):
        if value is None:
            problems.append(
                Problem(f"feasibleSpace.{field}", f"is required for parameterType {kind}")
            )
            bounds_ok = False
            continue
        reason = _number_problem(value, integer=integer)
        if reason is not None:
            problems.append(Problem(f"feasibleSpace.{field}", reason))
            bounds_ok = False
    if p.values:
        problems.append(
            Problem(
                "feasibleSpace.list",
                f"{_show_list(p.values)} is not supported for parameterType {kind};"
                " set min and max instead",
            )
        )
    lo, hi = p.min, p.max
    if bounds_ok:
        assert lo is not None and hi is not None
        if lo > hi:
            problems.append(
                Problem("feasibleSpace.min", f"{show(lo)} is greater than max {show(hi)}")
            )
            bounds_ok = False
    if p.step is not None:
        reason = _number_problem(p.step, integer=integer)
        if reason is not None:
            problems.append(Problem("feasibleSpace.step", reason))
        elif p.step <= 0:
            problems.append(Problem("feasibleSpace.step", f"{show(p.step)} is not greater than 0"))
        elif bounds_ok and lo != hi and exact(p.step) > exact(hi) - exact(lo):  # type: ignore[arg-type]
            problems.append(
                Problem(
                    "feasibleSpace.step",
                    f"{show(p.step)} is larger than the range from min {show(lo)}"
                    f" to max {show(hi)}",
                )
            )
    if p.distribution in _LOG and bounds_ok and lo is not None and lo <= 0:
        problems.append(
            Problem(
                "feasibleSpace.min",
                f"{show(lo)} is not greater than 0, which distribution"
                f" {p.distribution.value} requires",
            )
        )
    return problems


def _list_problems(p: Parameter) -> list[Problem]:
    kind = p.type.value
    problems: list[Problem] = []
    for field, value in (("min", p.min), ("max", p.max), ("step", p.step)):
        if value is not None:
            problems.append(
                Problem(
                    f"feasibleSpace.{field}",
                    f"{show(value)} is not supported for parameterType {kind};"
                    " list the values in feasibleSpace.list",
                )
            )
    # "uniform" over a list is what every algorithm does anyway, so it is allowed.
    if p.distribution is not None and p.distribution is not Distribution.UNIFORM:
        problems.append(
            Problem(
                "feasibleSpace.distribution",
                f"{p.distribution.value!r} is not supported for parameterType {kind};"
                " distributions other than uniform apply to double and int only",
            )
        )
    if not p.values:
        problems.append(
            Problem("feasibleSpace.list", f"must not be empty for parameterType {kind}")
        )
        return problems
    first_index: dict[object, int] = {}
    for j, entry in enumerate(p.values):
        reason = _entry_problem(p.type, entry)
        if reason is not None:
            problems.append(Problem(f"feasibleSpace.list[{j}]", reason))
            continue
        # Numeric equality on purpose: 1 and 1.0 are the same discrete value.
        if entry in first_index:
            problems.append(
                Problem(
                    f"feasibleSpace.list[{j}]",
                    f"{show(entry)} duplicates list[{first_index[entry]}]; list values must be"
                    " unique",
                )
            )
        else:
            first_index[entry] = j
    return problems


def _entry_problem(kind: ParameterType, value: object) -> str | None:
    if kind is ParameterType.CATEGORICAL:
        return None if isinstance(value, str) else f"{show(value)} is not a string"
    return _number_problem(value, integer=False)


def _show_list(values: Sequence[object]) -> str:
    return "[" + ", ".join(show(v) for v in values) + "]"
