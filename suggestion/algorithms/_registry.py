"""The algorithms by Katib name, imported on first use so heavy libraries load only if needed.

Adding an algorithm is one module with an `Algorithm` subclass plus one line here.
"""

from __future__ import annotations

import importlib

from suggestion.algorithms._base import Algorithm, UnknownAlgorithmError

_REGISTRY: dict[str, str] = {
    "random": "suggestion.algorithms._random:RandomSearch",
    "grid": "suggestion.algorithms._grid:GridSearch",
    "sobol": "suggestion.algorithms._sobol:SobolSearch",
    "bayesianoptimization": "suggestion.algorithms._skopt:BayesianOptimization",
    "tpe": "suggestion.algorithms._tpe:TPE",
    "multivariate-tpe": "suggestion.algorithms._tpe:MultivariateTPE",
    "cmaes": "suggestion.algorithms._cmaes:CMAES",
}


def names() -> list[str]:
    """Every registered algorithm name, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Algorithm]:
    """The algorithm class registered as ``name``; UnknownAlgorithmError lists the known ones."""
    target = _REGISTRY.get(name)
    if target is None:
        raise UnknownAlgorithmError(name, names())
    module, _, attribute = target.partition(":")
    cls: type[Algorithm] = getattr(importlib.import_module(module), attribute)
    return cls
