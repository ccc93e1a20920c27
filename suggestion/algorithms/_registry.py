"""The algorithms by Katib name, imported on first use so heavy libraries load only if needed.

Adding an algorithm is one module with an `Algorithm` subclass plus one line here.
"""

from __future__ import annotations

from suggestion.algorithms._base import Algorithm, UnknownAlgorithmError
from tuner.registry import Registry

ALGORITHMS: Registry[type[Algorithm]] = Registry(
    "algorithm",
    {
        "random": "suggestion.algorithms._random:RandomSearch",
        "grid": "suggestion.algorithms._grid:GridSearch",
        "sobol": "suggestion.algorithms._sobol:SobolSearch",
        "bayesianoptimization": "suggestion.algorithms._skopt:BayesianOptimization",
        "tpe": "suggestion.algorithms._tpe:TPE",
        "multivariate-tpe": "suggestion.algorithms._tpe:MultivariateTPE",
        "cmaes": "suggestion.algorithms._cmaes:CMAES",
        "hyperband": "suggestion.algorithms._hyperband:Hyperband",
        "nsga2": "suggestion.algorithms._nsga2:NSGA2",
        "pbt": "suggestion.algorithms._pbt:PopulationBasedTraining",
    },
    unknown=UnknownAlgorithmError,
)


def names() -> list[str]:
    """Every registered algorithm name, sorted."""
    return ALGORITHMS.names()


def multi_objective_names() -> list[str]:
    """The algorithms that serve several objectives (their class says `multi_objective`)."""
    return [name for name in names() if ALGORITHMS.get(name).multi_objective]


def get(name: str) -> type[Algorithm]:
    """The algorithm class registered as ``name``; UnknownAlgorithmError lists the known ones."""
    return ALGORITHMS.get(name)
