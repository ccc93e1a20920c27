"""Optuna's TPE (independent and multivariate, single objective) over columnar arrays.

The same algorithm as Optuna's ``TPESampler`` with ``constant_liar=True`` and the settings
tuner exposes: the same split into good and bad trials, kernel weights, bandwidths with the
magic clip, prior kernel, truncated-normal and categorical kernels, the same draws from a
``RandomState`` seeded alike, in the same order. It works on one (trials x parameters)
array instead of Optuna trials in a study, and computes each ask's estimators
(`_parzen_estimator`) for all parameters at once; the normal-distribution functions are
SciPy's, so values agree with Optuna's to rounding (Optuna uses its own), not bit for bit.
The asks of one call share what does not change between them: the good side's estimator,
the draws and the candidates' good-side densities (all computed first), and the bad side's
estimator, which each ask takes from the previous one with that ask's point slotted in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

# Relative: benchmarks/bench_parzen.py loads a directory's copy of both modules as a package
# of its own, beside another copy.
from ._parzen_estimator import Dimension, Mixture, Options


def default_gamma(n: int) -> int:
    """Optuna's number of good trials among ``n``."""
    return min(math.ceil(0.1 * n), 25)


def split(values: np.ndarray, n_below: int, maximize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the good and the bad completed trials, each in trial order (stable
    in ties, as Optuna's sort)."""
    order = np.argsort(-values if maximize else values, kind="stable")
    n_below = min(n_below, len(values))
    return np.sort(order[:n_below]), np.sort(order[n_below:])


def propose(
    rows: np.ndarray,
    values: np.ndarray,
    pending: np.ndarray,
    dims: Sequence[Dimension],
    *,
    count: int,
    maximize: bool,
    gamma: Callable[[int], int],
    multivariate: bool,
    options: Options,
    rng: np.random.RandomState,
) -> np.ndarray:
    """``count`` points (rows in the internal representation) as ``count`` asks of
    Optuna's TPESampler would give them, each ask lying that the earlier ones are bad.

    ``rows``: every completed and pending trial, in trial order; ``values``: the objective
    of each row (ignored where ``pending``). Multivariate dimensions must come sorted by
    parameter name, as Optuna's search space orders them; independent ones in ask order.
    """
    done = np.flatnonzero(~pending)
    below_idx, above_idx = split(values[done], gamma(len(done)), maximize)
    below_idx = done[below_idx]
    above_idx = np.sort(np.concatenate([done[above_idx], np.flatnonzero(pending)]))
    below = Mixture(rows[below_idx], dims, options)
    # An ask's draws and candidates do not depend on the earlier asks' points (only its
    # bad side does): every ask's are drawn first, and the good side read at all at once.
    n_ei = options.n_ei_candidates
    active, quantiles = _draws(below.weights, dims, count, n_ei, multivariate, rng)
    samples = below.sample(active, quantiles)
    good = below.log_pdf(samples, joint=multivariate)
    above = Mixture(rows[above_idx], dims, options)
    buffer = np.empty(len(above.continuous) * n_ei * (len(above_idx) + count))
    points = np.empty((count, len(dims)))
    for ask in range(count):
        if ask:
            # The bad side gains the previous ask's point: its estimator is the previous
            # one's but near that point.
            above = above.grown(points[ask - 1])
        at = slice(ask * n_ei, (ask + 1) * n_ei)
        score = good[at] - above.log_pdf(samples[at], joint=multivariate, buffer=buffer)
        candidates = samples[at]
        if multivariate:
            points[ask] = candidates[int(np.argmax(score))]
        else:
            points[ask] = candidates[np.argmax(score, axis=0), np.arange(len(dims))]
    return points


def _draws(
    weights: np.ndarray,
    dims: Sequence[Dimension],
    count: int,
    n_ei: int,
    multivariate: bool,
    rng: np.random.RandomState,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The kernels (a row per dimension) and uniforms (an array per dimension) of ``count``
    asks of ``n_ei`` candidates each, ask after ask, in Optuna's order: per estimator (all
    dimensions for multivariate, each for independent) the kernels, then a uniform per
    categorical dimension, then one block of uniforms for the numerical ones."""
    # ``rng.choice(len(p), p=p, size=n_ei)`` is ``cdf.searchsorted(rng.random_sample(n_ei),
    # side="right")``, the same draws, without checking ``p`` for every dimension of every ask.
    cdf = weights.cumsum()
    cdf /= cdf[-1]
    numeric = [j for j, d in enumerate(dims) if not d.choices]
    active = np.empty((len(dims), count * n_ei), dtype=np.int64)
    quantiles = [np.empty(count * n_ei) for _ in dims]
    for ask in range(count):
        at = slice(ask * n_ei, (ask + 1) * n_ei)
        if multivariate:
            active[:, at] = cdf.searchsorted(rng.random_sample(n_ei), side="right")
            for j, d in enumerate(dims):
                if d.choices:
                    quantiles[j][at] = rng.rand(n_ei)
            block = rng.uniform(low=0, high=1, size=(len(numeric), n_ei))
            for row, j in enumerate(numeric):
                quantiles[j][at] = block[row]
        else:
            for j, d in enumerate(dims):
                active[j, at] = cdf.searchsorted(rng.random_sample(n_ei), side="right")
                quantiles[j][at] = (
                    rng.rand(n_ei) if d.choices else rng.uniform(low=0, high=1, size=(1, n_ei))[0]
                )
    return active, quantiles
