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
_EXP_M60 = float(np.exp(np.full(1, -60.0))[0])  # as np.exp gives it in an array


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
    """A Parzen estimator: one kernel per observation (a row of ``obs``) plus the prior.

    Read jointly it is multivariate TPE's estimator; read one dimension at a time (with
    the same weights) it is the estimators of independent TPE, one per parameter.
    """

    mus: np.ndarray
    sigmas: np.ndarray
    log_mass: np.ndarray

    def __init__(
        self,
        obs: np.ndarray,
        dims: Sequence[Dimension],
        options: Options,
        earlier: _Mixture | None = None,
    ) -> None:
        """The estimator of the rows of ``obs``; ``earlier``, if given, is the estimator of
        its first rows (the same dimensions and options), whose kernels the new rows left
        unchanged are taken from it."""
        m = obs.shape[0]
        weights = np.append(default_weights(m), options.prior_weight) if m else np.ones(1)
        self.weights = weights / weights.sum()
        self.log_weights = np.log(self.weights)
        self.dims = dims
        # Continuous dimensions stacked, their kernels built as one array each: most of the
        # work is theirs (candidates x kernels). Stepped and categorical ones one by one.
        self.continuous = [j for j, d in enumerate(dims) if not d.choices and not d.step]
        self.kernels: list[tuple[np.ndarray, ...]] = [()] * len(dims)
        if self.continuous:
            cont = [dims[j] for j in self.continuous]
            self.log = np.array([d.log for d in cont])
            self.low, self.high = (np.array([d.bounds[i] for d in cont]) for i in (0, 1))
            columns = obs[:, self.continuous].T.copy()
            if self.log.any():
                columns[self.log] = np.log(columns[self.log])
            self.mus, self.sigmas, self.log_mass = _kernels(
                columns,
                self.low,
                self.high,
                options,
                None if earlier is None else (earlier.sigmas, earlier.log_mass),
            )
            self.scale = 1 / (self.sigmas * math.sqrt(2))
            self.shift = self.mus * self.scale
            self.log_norm = self.log_mass + np.log(self.sigmas) + 0.5 * math.log(2 * math.pi)
        for j, d in enumerate(dims):
            if d.choices:
                self.kernels[j] = (_categorical(obs[:, j], d.choices, options),)
            elif d.step:
                low, high = d.bounds
                mus = obs[None, :, j]
                if d.log:
                    mus = np.log(mus)
                mus, sigmas, log_mass = _kernels(mus, np.array([low]), np.array([high]), options)
                self.kernels[j] = (mus[0], sigmas[0], log_mass[0])

    def sample(self, active: np.ndarray, quantiles: Sequence[np.ndarray]) -> np.ndarray:
        """Candidates (one column per dimension) from the kernels ``active[j]`` of each
        dimension ``j`` with the uniform draws ``quantiles[j]``."""
        out = np.empty((active.shape[1], len(self.dims)))
        if self.continuous:
            rows = np.arange(len(self.continuous))[:, None]
            picked = active[self.continuous]
            mu, sigma = self.mus[rows, picked], self.sigmas[rows, picked]
            q = np.stack([quantiles[j] for j in self.continuous])
            a, b = (self.low[:, None] - mu) / sigma, (self.high[:, None] - mu) / sigma
            x = _truncnorm_ppf(q, a, b) * sigma + mu
            if self.log.any():
                x[self.log] = np.exp(x[self.log])
            out[:, self.continuous] = x.T
        for j, (d, kernel, q) in enumerate(zip(self.dims, self.kernels, quantiles, strict=True)):
            if d.choices:
                cum = np.cumsum(kernel[0][active[j]], axis=-1)
                cum[:, -1] = 1
                out[:, j] = np.sum(cum < q[:, None], axis=-1)
            elif d.step:
                lo, hi = d.bounds
                mu, sigma = kernel[0][active[j]], kernel[1][active[j]]
                x = _truncnorm_ppf(q, (lo - mu) / sigma, (hi - mu) / sigma) * sigma + mu
                if d.log:
                    x = np.exp(x)
                out[:, j] = np.clip(d.low + np.round((x - d.low) / d.step) * d.step, d.low, d.high)
        return out

    def log_pdf(self, x: np.ndarray, *, joint: bool) -> np.ndarray:
        """Log density (mass, for stepped and categorical dimensions) at each row of ``x``:
        of the joint mixture (shape ``(n,)``), or of each dimension's own (``(n, dims)``)."""
        n = len(x)
        if self.continuous:
            xc = x[:, self.continuous].T
            if self.log.any():
                xc[self.log] = np.log(xc[self.log])
            # -((x - mu) / (sigma sqrt 2))^2 - log normaliser, in place.
            cont = np.multiply(xc[:, :, None], self.scale[:, None, :])
            cont -= self.shift[:, None, :]
            np.square(cont, out=cont)
            cont += self.log_norm[:, None, :]
        if joint:
            total = np.tile(self.log_weights, (n, 1))
            if self.continuous:
                total -= cont.sum(axis=0)
            for j in range(len(self.dims)):
                if j not in self.continuous:
                    total += self._terms(j, x[:, j])
            return _logsumexp(total)
        out = np.empty((n, len(self.dims)))
        if self.continuous:
            np.subtract(self.log_weights, cont, out=cont)
            out[:, self.continuous] = _logsumexp(cont).T
        for j in range(len(self.dims)):
            if j not in self.continuous:
                out[:, j] = _logsumexp(self.log_weights + self._terms(j, x[:, j]))
        return out

    def _terms(self, j: int, xj: np.ndarray) -> np.ndarray:
        """Each kernel's log mass at ``xj`` (candidates x kernels), for a stepped or a
        categorical dimension."""
        d, kernel = self.dims[j], self.kernels[j]
        if d.choices:
            return np.log(kernel[0][:, xj.astype(np.int64)].T)
        mu, sigma, log_norm = kernel[:3]
        left, right = xj - d.step / 2, xj + d.step / 2
        if d.log:
            left, right = np.log(left), np.log(right)
        mass = _log_gauss_mass((left[:, None] - mu) / sigma, (right[:, None] - mu) / sigma)
        return mass - log_norm


def _logsumexp(total: np.ndarray) -> np.ndarray:
    """log(sum(exp)) over the last axis; ``total`` is overwritten."""
    peak = total.max(axis=-1)
    nowhere = np.isneginf(peak)
    peak[nowhere] = 0
    total -= peak[..., None]
    # Terms below e^-60 of the largest (which is 1) cannot change the sum in doubles, and
    # exp is ten times slower where it underflows: raise them to e^-60. Most terms are
    # (kernels far from the point): exp only the others (exp is most of the time here).
    near = total > -60.0
    kept = np.exp(np.compress(near.ravel(), total))
    total.fill(_EXP_M60)
    np.place(total, near, kept)
    out = np.log(total.sum(axis=-1)) + peak
    out[nowhere] = -np.inf
    return out


def _categorical(column: np.ndarray, n_choices: int, options: Options) -> np.ndarray:
    if len(column) == 0:
        return np.full((1, n_choices), 1.0 / n_choices)
    n_kernels = len(column) + 1
    weights = np.full((n_kernels, n_choices), options.prior_weight / n_kernels)
    weights[np.arange(len(column)), column.astype(int)] += 1
    sums = weights.sum(axis=1, keepdims=True)
    return weights / np.where(sums == 0, 1, sums)


def _kernels(
    mus: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    options: Options,
    earlier: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kernel centres and bandwidths (Optuna's rules) of numerical dimensions, one per row
    of ``mus`` (observations, on the log scale for a log dimension) with its bounds in
    ``low`` and ``high``, the prior kernel last; and each kernel's log Gaussian mass inside
    the bounds. ``earlier``: the bandwidths and masses this gave for the first observations
    only; a kernel whose bandwidth a later observation left alone keeps its mass."""
    k, m = mus.shape
    order = np.argsort(mus, axis=-1)
    ends = np.empty((k, m + 2))
    ends[:, 0], ends[:, 1:-1], ends[:, -1] = low, np.take_along_axis(mus, order, -1), high
    sorted_sigmas = np.maximum(ends[:, 1:-1] - ends[:, :-2], ends[:, 2:] - ends[:, 1:-1])
    if not options.consider_endpoints and m >= 2:
        sorted_sigmas[:, 0] = ends[:, 2] - ends[:, 1]
        sorted_sigmas[:, -1] = ends[:, -2] - ends[:, -3]
    sigmas = np.empty((k, m + 1))
    np.put_along_axis(sigmas[:, :m], order, sorted_sigmas, -1)
    width = (high - low)[:, None]
    if options.consider_magic_clip:
        minsigma = width / min(100.0, 1.0 + m + 1)
    else:
        minsigma = np.full_like(width, _EPS)
    np.clip(sigmas[:, :m], minsigma, width, out=sigmas[:, :m])
    sigmas[:, m:] = width
    mus = np.concatenate([mus, 0.5 * (low + high)[:, None]], axis=-1)
    if earlier is None:
        log_mass = _log_gauss_mass((low[:, None] - mus) / sigmas, (high[:, None] - mus) / sigmas)
        return mus, sigmas, log_mass
    # The same centres, in the same places, and the same prior kernel (last); new kernels
    # and those whose bandwidth changed (an observation's neighbours) computed again.
    old_sigmas, old_mass = earlier
    m0 = old_sigmas.shape[1] - 1
    log_mass = np.empty_like(sigmas)
    log_mass[:, :m0], log_mass[:, -1] = old_mass[:, :m0], old_mass[:, -1]
    changed = np.ones(sigmas.shape, dtype=bool)
    np.not_equal(sigmas[:, :m0], old_sigmas[:, :m0], out=changed[:, :m0])
    changed[:, -1] = False
    rows = np.nonzero(changed)[0]
    mu, sigma = mus[changed], sigmas[changed]
    log_mass[changed] = _log_gauss_mass((low[rows] - mu) / sigma, (high[rows] - mu) / sigma)
    return mus, sigmas, log_mass


def _log_gauss_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails (as Optuna's)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    a, b = np.broadcast_to(a, out.shape), np.broadcast_to(b, out.shape)
    left = b <= 0
    right = a > 0
    central = ~(left | right)
    # Most kernels straddle zero: no logs of tiny numbers there, and one special function.
    out[central] = np.log1p(-ndtr(a[central]) - ndtr(-b[central]))
    tails = ~central
    if tails.any():
        # Mirror the right tail onto the left.
        at, bt, rt = a[tails], b[tails], right[tails]
        lo, hi = np.where(rt, -bt, at), np.where(rt, -at, bt)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_hi = log_ndtr(hi)
            out[tails] = log_hi + np.log1p(-np.exp(log_ndtr(lo) - log_hi))
    return out


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
    above_rows = rows[above_idx]
    n_ei = options.n_ei_candidates
    below = _Mixture(rows[below_idx], dims, options)
    numeric = [j for j, d in enumerate(dims) if not d.choices]
    # ``rng.choice(len(p), p=p, size=n_ei)`` is ``cdf.searchsorted(rng.random_sample(n_ei),
    # side="right")``, the same draws, without checking ``p`` for every dimension of every ask.
    cdf = below.weights.cumsum()
    cdf /= cdf[-1]
    asked: list[np.ndarray] = []
    above: _Mixture | None = None
    for _ in range(count):
        # Optuna's draws, in its order: per estimator (all dimensions for multivariate,
        # each for independent) the kernels, then a uniform per categorical dimension, then
        # one block of uniforms for the numerical ones.
        active = np.empty((len(dims), n_ei), dtype=np.int64)
        quantiles: list[np.ndarray] = [np.empty(0)] * len(dims)
        if multivariate:
            active[:] = cdf.searchsorted(rng.random_sample(n_ei), side="right")
            for j, d in enumerate(dims):
                if d.choices:
                    quantiles[j] = rng.rand(n_ei)
            block = rng.uniform(low=0, high=1, size=(len(numeric), n_ei))
            for row, j in enumerate(numeric):
                quantiles[j] = block[row]
        else:
            for j, d in enumerate(dims):
                active[j] = cdf.searchsorted(rng.random_sample(n_ei), side="right")
                quantiles[j] = (
                    rng.rand(n_ei) if d.choices else rng.uniform(low=0, high=1, size=(1, n_ei))[0]
                )
        samples = below.sample(active, quantiles)
        # The bad side gains the previous ask's point: its estimator is the previous one's
        # but near that point.
        above = _Mixture(np.vstack([above_rows, *asked]), dims, options, earlier=above)
        score = below.log_pdf(samples, joint=multivariate) - above.log_pdf(
            samples, joint=multivariate
        )
        if multivariate:
            point = samples[int(np.argmax(score))]
        else:
            point = samples[np.argmax(score, axis=0), np.arange(len(dims))]
        asked.append(point[None, :])
    return np.vstack(asked)
