"""The Python API: build an Experiment with snake_case arguments and plain types, run it in
this process, read results back (docs/python-api.md).

>>> from tuner import Experiment, Double, Int, Categorical  # doctest: +SKIP

Exports load on first use, like ``tuner``'s: a trial process that imports
``tuner.api._fn_runner`` pays for ``tuner.space`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports

if TYPE_CHECKING:
    from tuner.api._errors import InvalidExperimentError, RunError
    from tuner.api._experiment import (
        Experiment,
        delete,
        load,
    )
    from tuner.api._params import (
        Categorical,
        Discrete,
        Double,
        Int,
    )
    from tuner.api._result import (
        Result,
        TrialResult,
    )
    from tuner.errors import TunerError
    from tuner.store import ExperimentNotFoundError

_LAZY = {
    "Categorical": "tuner.api._params",
    "Discrete": "tuner.api._params",
    "Double": "tuner.api._params",
    "Int": "tuner.api._params",
    "Experiment": "tuner.api._experiment",
    "load": "tuner.api._experiment",
    "delete": "tuner.api._experiment",
    "Result": "tuner.api._result",
    "TrialResult": "tuner.api._result",
    "ExperimentNotFoundError": "tuner.store",
    "InvalidExperimentError": "tuner.api._errors",
    "RunError": "tuner.api._errors",
    "TunerError": "tuner.errors",
}

__all__ = [
    "Categorical",
    "Discrete",
    "Double",
    "Experiment",
    "ExperimentNotFoundError",
    "Int",
    "InvalidExperimentError",
    "Result",
    "RunError",
    "TrialResult",
    "TunerError",
    "delete",
    "load",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
