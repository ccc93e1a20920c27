"""Search-space types shared by the controller, the spec model and the suggestion services.

Values are parsed once at the boundary (YAML or protobuf strings become ``int``, ``float``
or ``str``) and formatted back to Katib's wire strings only when they leave the process.
"""

from __future__ import annotations

from tuner.space._direction import Direction
from tuner.space._objectives import (
    OBJECTIVES_METADATA,
    OBJECTIVES_SETTING,
    ObjectivesError,
    format_objectives,
    non_dominated,
    parse_objectives,
)
from tuner.space._types import (
    Assignment,
    Distribution,
    Parameter,
    ParameterType,
    Problem,
    SearchSpace,
    SpaceError,
    Value,
)

__all__ = [
    "OBJECTIVES_METADATA",
    "OBJECTIVES_SETTING",
    "ObjectivesError",
    "Assignment",
    "Direction",
    "Distribution",
    "Parameter",
    "ParameterType",
    "Problem",
    "SearchSpace",
    "SpaceError",
    "Value",
    "format_objectives",
    "non_dominated",
    "parse_objectives",
]
