"""Optuna's TPE (independent and multivariate, single objective) over columnar arrays.

The same algorithm as Optuna's ``TPESampler`` with ``constant_liar=True`` and the settings
tuner exposes: the same split into good and bad trials, kernel weights, bandwidths with the
magic clip, prior kernel, truncated-normal and categorical kernels, the same draws from a
``RandomState`` seeded alike, in the same order. It works on one (trials x parameters)
array instead of Optuna trials in a study, and computes each ask's estimators for all
parameters at once; the normal-distribution functions are SciPy's, so values agree with
Optuna's to rounding (Optuna uses its own), not bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri_exp

_EPS = 1e-12


@dataclass(frozen=True)
class Dimension:
    """One parameter in Optuna's internal representation: a number (``step`` 0 when
    continuous) or a category index (``choices`` > 0)."""

    low: float = 0.0
    high: float = 0.0
    step: float = 0.0
    log: bool = False
    choices: int = 0

    @property
    def bounds(self) -> tuple[float, float]:
        """The kernels' truncation interval, on the log scale for a log dimension."""
        low, high = self.low - self.step / 2, self.high + self.step / 2
        return (math.log(low), math.log(high)) if self.log else (low, high)


@dataclass(frozen=True)
class Options:
    n_ei_candidates: int = 24
    prior_weight: float = 1.0
    consider_magic_clip: bool = True
    consider_endpoints: bool = False


def default_gamma(n: int) -> int:
    """Optuna's number of good trials among ``n``."""
    return min(math.ceil(0.1 * n), 25)


def default_weights(n: int) -> np.ndarray:
    """Optuna's kernel weights, oldest first: a ramp for all but the newest 25."""
    if n == 0:
        return np.asarray([])
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - 25), np.ones(25)])


def split(values: np.ndarray, n_below: int, maximize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the good and the bad completed trials, each in trial order (stable
    in ties, as Optuna's sort)."""
    order = np.argsort(-values if maximize else values, kind="stable")
    n_below = min(n_below, len(values))
    return np.sort(order[:n_below]), np.sort(order[n_below:])


class _Mixture:
    """A Parzen estimator: one kernel per observation (a row of ``obs``) plus the prior."""

    def __init__(self, obs: np.ndarray, dims: Sequence[Dimension], options: Options) -> None:
        m = obs.shape[0]
        weights = np.append(default_weights(m), options.prior_weight) if m else np.ones(1)
        self.log_weights = np.log(weights / weights.sum())
        self.weights = weights / weights.sum()
        self.dims = dims
        self.kernels: list[tuple[np.ndarray, ...]] = []
        for j, d in enumerate(dims):
            column = obs[:, j]
            if d.choices:
                self.kernels.append((_categorical(column, d.choices, options),))
            else:
                self.kernels.append(_numerical(column, d, options))

    def sample(self, active: np.ndarray, quantiles: Sequence[np.ndarray]) -> np.ndarray:
        """Candidates (one column per dimension) from the kernels ``active`` with the
        uniform draws ``quantiles`` (one array per dimension)."""
        out = np.empty((len(active), len(self.dims)))
        for j, (d, kernel, q) in enumerate(zip(self.dims, self.kernels, quantiles, strict=True)):
            if d.choices:
                cum = np.cumsum(kernel[0][active], axis=-1)
                cum[:, -1] = 1
                out[:, j] = np.sum(cum < q[:, None], axis=-1)
                continue
            mu, sigma = kernel[:2]
            lo, hi = d.bounds
            mu, sigma = mu[active], sigma[active]
            x = _truncnorm_ppf(q, (lo - mu) / sigma, (hi - mu) / sigma) * sigma + mu
            if d.log:
                x = np.exp(x)
            if d.step:
                x = np.clip(d.low + np.round((x - d.low) / d.step) * d.step, d.low, d.high)
            out[:, j] = x
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density (mass, for stepped and categorical dimensions) at each row of ``x``."""
        total = np.tile(self.log_weights, (len(x), 1))
        for j, (d, kernel) in enumerate(zip(self.dims, self.kernels, strict=True)):
            xj = x[:, j]
            if d.choices:
                total += np.log(kernel[0][:, xj.astype(np.int64)].T)
                continue
            mu, sigma, log_norm = kernel[:3]
            total -= log_norm
            if d.step:
                left, right = xj - d.step / 2, xj + d.step / 2
                if d.log:
                    left, right = np.log(left), np.log(right)
                total += _log_gauss_mass(
                    (left[:, None] - mu) / sigma, (right[:, None] - mu) / sigma
                )
            else:
                # In place, multiplications only: this is most of a call's time
                # (candidates x kernels). z / sqrt(2) = x * scale - shift.
                scale, shift = kernel[3], kernel[4]
                z = np.multiply.outer(np.log(xj) if d.log else xj, scale)
                z -= shift
                np.square(z, out=z)
                total -= z
        peak = total.max(axis=1)
        peak[np.isneginf(peak)] = 0
        total -= peak[:, None]
        np.exp(total, out=total)
        with np.errstate(divide="ignore"):
            return np.log(total.sum(axis=1)) + peak


def _categorical(column: np.ndarray, n_choices: int, options: Options) -> np.ndarray:
    if len(column) == 0:
        return np.full((1, n_choices), 1.0 / n_choices)
    n_kernels = len(column) + 1
    weights = np.full((n_kernels, n_choices), options.prior_weight / n_kernels)
    weights[np.arange(len(column)), column.astype(int)] += 1
    sums = weights.sum(axis=1, keepdims=True)
    return weights / np.where(sums == 0, 1, sums)


def _numerical(column: np.ndarray, d: Dimension, options: Options) -> tuple[np.ndarray, ...]:
    """Kernel centres and bandwidths (Optuna's rules), each kernel's log normaliser (its
    log Gaussian mass inside the bounds, on the log scale for a log dimension; for a
    continuous one plus log sigma and log sqrt(2 pi)) and, continuous only, the scale and
    shift that give (x - mu) / (sigma sqrt 2) by one multiplication and one subtraction."""
    low, high = d.bounds
    mus = np.log(column) if d.log else column
    order = np.argsort(mus)
    ends = np.empty(len(mus) + 2)
    ends[0], ends[1:-1], ends[-1] = low, mus[order], high
    sorted_sigmas = np.maximum(ends[1:-1] - ends[:-2], ends[2:] - ends[1:-1])
    if not options.consider_endpoints and len(ends) >= 4:
        sorted_sigmas[0] = ends[2] - ends[1]
        sorted_sigmas[-1] = ends[-2] - ends[-3]
    sigmas = sorted_sigmas[np.argsort(order)]
    if options.consider_magic_clip:
        minsigma = (high - low) / min(100.0, 1.0 + len(mus) + 1)
    else:
        minsigma = _EPS
    sigmas = np.clip(sigmas, minsigma, high - low)
    mus = np.append(mus, 0.5 * (low + high))
    sigmas = np.append(sigmas, high - low)
    log_mass = _log_gauss_mass((low - mus) / sigmas, (high - mus) / sigmas)
    if d.step:
        return mus, sigmas, log_mass
    scale = 1 / (sigmas * math.sqrt(2))
    log_norm = log_mass + np.log(sigmas) + 0.5 * math.log(2 * math.pi)
    return mus, sigmas, log_norm, scale, mus * scale


def _log_gauss_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails (as Optuna's)."""
    left = b <= 0
    right = a > 0
    # Mirror the right tail onto the left; the central case needs no logs of tiny numbers.
    lo = np.where(right, -b, a)
    hi = np.where(right, -a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_hi, log_lo = log_ndtr(hi), log_ndtr(lo)
        tail = log_hi + np.log1p(-np.exp(log_lo - log_hi))
        central = np.log1p(-ndtr(a) - ndtr(-b))
    return np.where(left | right, tail, central)


def _truncnorm_ppf(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The standard normal truncated to [a, b]: the point below which lies ``q`` of it."""
    log_mass = _log_gauss_mass(a, b)
    left = a < 0
    with np.errstate(divide="ignore"):
        from_left = ndtri_exp(np.logaddexp(log_ndtr(a), np.log(q) + log_mass))
        from_right = -ndtri_exp(np.logaddexp(log_ndtr(-b), np.log1p(-q) + log_mass))
    out = np.where(left, from_left, from_right)
    out = np.where(q == 0, a, out)
    return np.where(q == 1, b, out)


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
    below_rows, above_rows = rows[below_idx], rows[above_idx]
    n_ei = options.n_ei_candidates
    groups = [list(range(len(dims)))] if multivariate else [[j] for j in range(len(dims))]
    below = [_Mixture(below_rows[:, g], [dims[j] for j in g], options) for g in groups]
    asked: list[np.ndarray] = []
    for _ in range(count):
        above_all = np.vstack([above_rows, *asked]) if asked else above_rows
        point = np.empty(len(dims))
        for g, mpe_below in zip(groups, below, strict=True):
            gdims = [dims[j] for j in g]
            active = rng.choice(len(mpe_below.weights), p=mpe_below.weights, size=n_ei)
            quantiles: list[np.ndarray] = [np.empty(0)] * len(g)
            for k, d in enumerate(gdims):
                if d.choices:
                    quantiles[k] = rng.rand(n_ei)
            numeric = [k for k, d in enumerate(gdims) if not d.choices]
            if numeric:
                drawn = rng.uniform(low=0, high=1, size=(len(numeric), n_ei))
                for row, k in enumerate(numeric):
                    quantiles[k] = drawn[row]
            samples = mpe_below.sample(active, quantiles)
            mpe_above = _Mixture(above_all[:, g], gdims, options)
            score = mpe_below.log_pdf(samples) - mpe_above.log_pdf(samples)
            point[g] = samples[int(np.argmax(score))]
        asked.append(point[None, :])
    return np.vstack(asked)
