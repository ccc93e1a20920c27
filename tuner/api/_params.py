"""Search-space parameters for the Python API: ``Double``, ``Int``, ``Discrete``,
``Categorical``, each turned into Katib's ``spec.parameters[]`` entry (numbers as strings)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuner.space import Distribution, ParameterType
from tuner.spec import SpecError, SpecIssue


def _distribution(log: bool, distribution: str | Distribution | None, at: str) -> str | None:
    if log and distribution is not None:
        raise SpecError(
            [SpecIssue(at, "give log=True or distribution=..., not both (log=True is logUniform)")]
        )
    if log:
        return Distribution.LOG_UNIFORM.value
    if isinstance(distribution, Distribution):
        return distribution.value
    return distribution


def _float_text(value: Any, at: str) -> str:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise SpecError([SpecIssue(at, f"{value!r} is not a number")])
    if not math.isfinite(float(value)):
        raise SpecError([SpecIssue(at, f"{value!r} is not a finite number")])
    # repr: the shortest text that reads back to the same double (Katib's wire form).
    return repr(float(value))


def _int_text(value: Any, at: str) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise SpecError([SpecIssue(at, f"{value!r} is not an integer")])


def _number_text(value: Any, at: str) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    return _float_text(value, at)


def _values(values: Any, at: str) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise SpecError([SpecIssue(at, f"{values!r} is not a list of values")])
    return list(values)


@dataclass(frozen=True)
class Double:
    """A float parameter in ``[min, max]``; it arrives in the objective as a ``float``.

    ``log=True`` samples on a log scale (Katib's ``logUniform``); ``distribution`` takes
    Katib's names (``uniform``, ``logUniform``, ``normal``, ``logNormal``); ``step`` puts
    the values on the grid ``min + k*step`` (needed by the ``grid`` algorithm).

    >>> Double(1e-4, 1e-1, log=True).to_katib("lr")["feasibleSpace"]
    {'min': '0.0001', 'max': '0.1', 'distribution': 'logUniform'}
    """

    min: float
    max: float
    log: bool = False
    step: float | None = None
    distribution: str | Distribution | None = None

    def to_katib(self, name: str) -> dict[str, Any]:
        """The ``spec.parameters[]`` entry named ``name``."""
        at = f"parameters[{name!r}]"
        space = {
            "min": _float_text(self.min, f"{at}.min"),
            "max": _float_text(self.max, f"{at}.max"),
        }
        if self.step is not None:
            space["step"] = _float_text(self.step, f"{at}.step")
        dist = _distribution(self.log, self.distribution, at)
        if dist is not None:
            space["distribution"] = dist
        return {"name": name, "parameterType": ParameterType.DOUBLE.value, "feasibleSpace": space}


@dataclass(frozen=True)
class Int:
    """An integer parameter in ``[min, max]`` (both included); it arrives as an ``int``.

    ``step`` (default 1) and ``log``/``distribution`` as for ``Double``.

    >>> Int(1, 4).to_katib("layers")["feasibleSpace"]
    {'min': '1', 'max': '4'}
    """

    min: int
    max: int
    step: int | None = None
    log: bool = False
    distribution: str | Distribution | None = None

    def to_katib(self, name: str) -> dict[str, Any]:
        """The ``spec.parameters[]`` entry named ``name``."""
        at = f"parameters[{name!r}]"
        space = {"min": _int_text(self.min, f"{at}.min"), "max": _int_text(self.max, f"{at}.max")}
        if self.step is not None:
            space["step"] = _int_text(self.step, f"{at}.step")
        dist = _distribution(self.log, self.distribution, at)
        if dist is not None:
            space["distribution"] = dist
        return {"name": name, "parameterType": ParameterType.INT.value, "feasibleSpace": space}


@dataclass(frozen=True)
class Discrete:
    """One of a list of numbers; it arrives with the type it has in the list (``16`` an
    ``int``, ``0.5`` a ``float``).

    >>> Discrete([16, 32, 0.5]).to_katib("bs")["feasibleSpace"]
    {'list': ['16', '32', '0.5']}
    """

    values: Sequence[float]

    def to_katib(self, name: str) -> dict[str, Any]:
        """The ``spec.parameters[]`` entry named ``name``."""
        at = f"parameters[{name!r}].values"
        entries = [_number_text(v, f"{at}[{i}]") for i, v in enumerate(_values(self.values, at))]
        return {
            "name": name,
            "parameterType": ParameterType.DISCRETE.value,
            "feasibleSpace": {"list": entries},
        }


@dataclass(frozen=True)
class Categorical:
    """One of a list of strings; it arrives as a ``str``. Numbers belong in ``Discrete``.

    >>> Categorical(["sgd", "adam"]).to_katib("opt")["feasibleSpace"]
    {'list': ['sgd', 'adam']}
    """

    values: Sequence[str]

    def to_katib(self, name: str) -> dict[str, Any]:
        """The ``spec.parameters[]`` entry named ``name``."""
        at = f"parameters[{name!r}].values"
        entries = _values(self.values, at)
        issues = [
            SpecIssue(
                f"{at}[{i}]",
                f"{v!r} is not a string: categorical values arrive as strings; use Discrete "
                "for numbers, or quote the value",
            )
            for i, v in enumerate(entries)
            if not isinstance(v, str)
        ]
        if issues:
            raise SpecError(issues)
        return {
            "name": name,
            "parameterType": ParameterType.CATEGORICAL.value,
            "feasibleSpace": {"list": entries},
        }


Param = Double | Int | Discrete | Categorical
PARAM_TYPES = (Double, Int, Discrete, Categorical)
