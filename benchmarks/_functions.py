"""Standard optimisation test functions with their domains and known minima, for the benchmarks.

Domains and optima follow the Virtual Library of Simulation Experiments (Surjanovic & Bingham,
https://www.sfu.ca/~ssurjano/): Branin on [-5, 10] x [0, 15], Hartmann6 on [0, 1]^6,
Rosenbrock on [-5, 10]^d. All are minimised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TestFunction:
    """A function of named double parameters, its box domain and its known minimum."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    bounds: tuple[tuple[str, float, float], ...]
    """(parameter name, min, max) per dimension."""
    optimum: float
    function: Callable[[Sequence[float]], float]

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.bounds]

    def __call__(self, x: Sequence[float]) -> float:
        return float(self.function(x))

    def regret(self, value: float) -> float:
        """Simple regret of a best-found value; clipped at 0 against rounding in `optimum`."""
        return max(0.0, value - self.optimum)


def branin(x: Sequence[float]) -> float:
    x1, x2 = x
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(x: Sequence[float]) -> float:
    inner = np.sum(_H_A * (np.asarray(x, dtype=float) - _H_P) ** 2, axis=1)
    return float(-np.sum(_H_ALPHA * np.exp(-inner)))


def rosenbrock(x: Sequence[float]) -> float:
    v = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2))


FUNCTIONS: dict[str, TestFunction] = {
    "branin": TestFunction(
        "branin", (("x1", -5.0, 10.0), ("x2", 0.0, 15.0)), 0.39788735772973816, branin
    ),
    "hartmann6": TestFunction(
        "hartmann6",
        tuple((f"x{i}", 0.0, 1.0) for i in range(1, 7)),
        -3.3223680114155147,
        hartmann6,
    ),
    "rosenbrock4": TestFunction(
        "rosenbrock4", tuple((f"x{i}", -5.0, 10.0) for i in range(1, 5)), 0.0, rosenbrock
    ),
}
