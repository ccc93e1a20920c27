"""Leaf types of the search space: value aliases, enums, the error and the problem record.

They live apart from ``Parameter`` so the private helper modules can import them without a
cycle; ``tuner.space._types`` re-exports every name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tuner.errors import TunerError

Value = int | float | str
"""A parameter value with its real Python type: int, float or (categorical) str."""

Assignment = dict[str, Value]
"""One parameter set: parameter name -> typed value."""


class ParameterType(str, enum.Enum):
    """Katib's parameter types; the enum value is the YAML spelling."""

    DOUBLE = "double"
    INT = "int"
    DISCRETE = "discrete"
    CATEGORICAL = "categorical"


class Distribution(str, enum.Enum):
    """Katib's feasibleSpace.distribution values; the enum value is the YAML spelling."""

    UNIFORM = "uniform"
    LOG_UNIFORM = "logUniform"
    NORMAL = "normal"
    LOG_NORMAL = "logNormal"


class SpaceError(TunerError, ValueError):
    """A value or space definition that breaks a rule of the search space."""


@dataclass(frozen=True)
class Problem:
    """One rule a parameter definition breaks.

    ``field`` is relative to the parameter, e.g. ``"feasibleSpace.min"``; the spec layer
    prefixes it with ``spec.parameters[i].``.
    """

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message
