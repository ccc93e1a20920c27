"""Bayesian optimisation's GP path: encode trials, fit `GaussianProcess`, optimise the
acquisition over vectorised candidates and refine with L-BFGS, constant liar for batches.

It follows scikit-optimize's `Optimizer` with ``base_estimator="GP"``: inputs scaled to the
unit cube (log scale for logUniform, one-hot for lists), 10,000 random candidates (fewer
when the request holds many trials, see `candidate_count`), the five best refined by
L-BFGS-B with 20 iterations when ``acq_optimizer`` is lbfgs/auto, ``xi`` 0.01, ``kappa``
1.96, and "cl_min" for several points. Unlike scikit-optimize it keeps no state between
calls: gp_hedge picks among EI, LCB and PI with equal odds from the request's seed (its
gains would depend on the call history), so a cold server answers like a warm one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import fmin_l_bfgs_b

from suggestion.algorithms._gp import Candidates, GaussianProcess, acquisition
from suggestion.algorithms._gp import acquisition_with_gradient as _acq_grad
from suggestion.algorithms._unit import Coordinate
from tuner.space import Assignment, Distribution, Value

CANDIDATES = 10_000
"""Random candidates per call, scikit-optimize's ``n_points``."""

CANDIDATE_FLOPS = 2e9
"""Bound on candidates x trials^2 (the posterior variance of the candidates)."""

RESTARTS = 5  # scikit-optimize's n_restarts_optimizer for the acquisition
XI = 0.01  # scikit-optimize's EI/PI margin, in the objective's units
HEDGE = ("EI", "LCB", "PI")


def candidate_count(n_trials: int) -> int:
    """10,000 while cheap; at least 1,000 (L-BFGS refines the best ones anyway)."""
    return int(min(CANDIDATES, max(1_000, CANDIDATE_FLOPS / max(n_trials, 1) ** 2)))


class UnitEncoding:
    """Assignments <-> rows in the unit cube; lists become one-hot blocks."""

    def __init__(self, coordinates: Sequence[Coordinate]) -> None:
        self.coordinates = tuple(coordinates)
        self.columns: list[slice] = []
        self._scale: list[tuple[float, float, bool]] = []
        width = 0
        for c in self.coordinates:
            size = len(c.values) if c.is_list else 1
            self.columns.append(slice(width, width + size))
            width += size
            if c.is_list:
                self._scale.append((0.0, 1.0, False))
                continue
            top = float(c.value_at(c.size - 1)) if c.size is not None else c.hi
            log = c.distribution is Distribution.LOG_UNIFORM and c.lo > 0
            lo, hi = (math.log(c.lo), math.log(top)) if log else (c.lo, top)
            self._scale.append((lo, hi, log))
        self.width = width
        self.numeric = np.zeros(width, dtype=bool)
        for c, cols in zip(self.coordinates, self.columns, strict=True):
            self.numeric[cols] = not c.is_list

    def encode(self, assignments: Sequence[Mapping[str, Value]]) -> np.ndarray:
        X = np.zeros((len(assignments), self.width))
        for c, cols, (lo, hi, log) in zip(self.coordinates, self.columns, self._scale, strict=True):
            if c.is_list:
                index = {v: i for i, v in enumerate(c.values)}
                rows = [index.get(c.canonical(a[c.name]), 0) for a in assignments]
                X[np.arange(len(assignments)), cols.start + np.asarray(rows, dtype=int)] = 1.0
                continue
            x = np.array([float(a[c.name]) for a in assignments])
            if log:
                x = np.log(np.maximum(x, c.lo))
            X[:, cols.start] = np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else 0.5
        return X

    def decode(self, row: np.ndarray) -> Assignment:
        point: Assignment = {}
        for c, cols, (lo, hi, log) in zip(self.coordinates, self.columns, self._scale, strict=True):
            if c.is_list:
                point[c.name] = c.values[int(np.argmax(row[cols]))]
                continue
            x = lo + float(np.clip(row[cols.start], 0.0, 1.0)) * (hi - lo)
            point[c.name] = c.snap(math.exp(x) if log else x)
        return point

    def random(self, rng: np.random.Generator, m: int) -> np.ndarray:
        Z = np.zeros((m, self.width))
        for c, cols in zip(self.coordinates, self.columns, strict=True):
            if c.is_list:
                Z[np.arange(m), cols.start + rng.integers(len(c.values), size=m)] = 1.0
            else:
                Z[:, cols.start] = rng.random(m)
        return Z


def propose(
    encoding: UnitEncoding,
    completed: Sequence[tuple[Mapping[str, Value], float]],
    pending: Sequence[Mapping[str, Value]],
    count: int,
    *,
    acq_func: str,
    acq_optimizer: str,
    rng: np.random.Generator,
    check: Callable[[], None],
) -> list[Assignment]:
    """``count`` points by the GP model; ``completed`` values are to be minimised."""
    X = encoding.encode([a for a, _ in completed])
    y = np.array([v for _, v in completed], dtype=float)
    lie = float(y.min())
    check()
    gp = GaussianProcess(X, y, seed=int(rng.integers(2**31 - 1)), check=check)
    check()
    z_lie = gp.normalise(lie)
    best = z_lie  # the incumbent in normalised units; lies equal it (cl_min)
    # scikit-optimize's xi is in the objective's units; the model here works normalised.
    xi = XI / gp.y_std
    if pending:
        for x in encoding.encode(list(pending)):
            gp.add(x, z_lie)
    check()
    candidates = Candidates(gp, encoding.random(rng, candidate_count(len(gp.X))), check)
    bounds: list[tuple[float | None, float | None]] = [
        (0.0, 1.0) if numeric else (None, None) for numeric in encoding.numeric
    ]
    chosen: list[Assignment] = []
    for i in range(count):
        check()
        name = HEDGE[int(rng.integers(len(HEDGE)))] if acq_func == "gp_hedge" else acq_func
        values = acquisition(name, candidates.mean, candidates.var, best, xi=xi)
        if acq_optimizer == "sampling":
            x = candidates.Z[int(np.argmin(values))]
        else:
            starts = candidates.Z[np.argsort(values)[:RESTARTS]]
            x = _refine(gp, name, best, xi, starts, bounds, check)
        chosen.append(encoding.decode(x))
        if i + 1 < count:
            candidates.add(x, z_lie)
    return chosen


def _refine(
    gp: GaussianProcess,
    name: str,
    best: float,
    xi: float,
    starts: np.ndarray,
    bounds: list[tuple[float | None, float | None]],
    check: Callable[[], None],
) -> np.ndarray:
    f = _acq_grad(gp, name, best, xi=xi)
    winner, winner_value = starts[0], math.inf
    for start in starts:
        check()
        # One-hot columns stay as sampled: scikit-optimize relaxes them continuously and
        # takes the argmax, which is the same point for a start already one-hot.
        fixed = [b if b[0] is not None else (v, v) for b, v in zip(bounds, start, strict=True)]
        x, value, _ = fmin_l_bfgs_b(f, start, bounds=fixed, maxiter=20)
        if value < winner_value:
            winner, winner_value = np.clip(x, 0.0, 1.0), float(value)
    return winner
