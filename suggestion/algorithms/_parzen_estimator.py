"""Optuna's Parzen estimator over columnar arrays: the kernels (centres, bandwidths with the
magic clip, weights, prior) of a set of observations, drawn from and read as log densities.

The estimator of one side (good or bad trials) for `_parzen.propose`; the normal-distribution
functions are SciPy's, so values agree with Optuna's to rounding, not bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def default_weights(n: int) -> np.ndarray:
    """Optuna's kernel weights, oldest first: a ramp for all but the newest 25."""
    if n == 0:
        return np.asarray([])
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - 25), np.ones(25)])


class Mixture:
    """A Parzen estimator: one kernel per observation (a row of ``obs``) plus the prior.

    Read jointly it is multivariate TPE's estimator; read one dimension at a time (with
    the same weights) it is the estimators of independent TPE, one per parameter.
    """

    mus: np.ndarray
    sigmas: np.ndarray
    log_mass: np.ndarray

    def __init__(self, obs: np.ndarray, dims: Sequence[Dimension], options: Options) -> None:
        """The estimator of the rows of ``obs``."""
        self.obs, self.dims, self.options = obs, dims, options
        self._weigh(obs.shape[0])
        # The numerical dimensions stacked, their kernels built as one array each: most of
        # the work is theirs (candidates x kernels). Categorical ones one by one.
        self.numeric = [j for j, d in enumerate(dims) if not d.choices]
        self.continuous = [j for j, d in enumerate(dims) if not d.choices and not d.step]
        self.categories = {j: self._categorical(j) for j, d in enumerate(dims) if d.choices}
        if not self.numeric:
            return
        stack = [dims[j] for j in self.numeric]
        self.log = np.array([d.log for d in stack])
        self.low, self.high = (np.array([d.bounds[i] for d in stack]) for i in (0, 1))
        self.columns = obs[:, self.numeric].T.copy()
        if self.log.any():
            self.columns[self.log] = np.log(self.columns[self.log])
        self.order = np.argsort(self.columns, axis=-1)
        self.ends = _ends(np.take_along_axis(self.columns, self.order, -1), self.low, self.high)
        # Per dimension, whether no two observations share a value: then each one's place in
        # the sorted order is its own, whatever the sort, and a new row can be slotted in.
        self.distinct = ~(self.ends[:, 2:-1] == self.ends[:, 1:-2]).any(axis=-1)
        self._kernels(None)

    def grown(self, row: np.ndarray) -> Mixture:
        """This estimator with one more observation ``row`` (before the prior kernel): the
        estimator of the rows and ``row``, bit for bit. The kernels ``row`` leaves alone
        (all but its neighbours' in each dimension) are taken from this one."""
        new = object.__new__(Mixture)
        new.dims, new.options = self.dims, self.options
        new.obs = np.vstack([self.obs, row[None, :]])
        m = new.obs.shape[0]
        new._weigh(m)
        new.numeric, new.continuous = self.numeric, self.continuous
        new.categories = {j: new._categorical(j) for j in self.categories}
        if not self.numeric:
            return new
        new.log, new.low, new.high = self.log, self.low, self.high
        v = row[self.numeric]
        if self.log.any():
            v[self.log] = np.log(v[self.log])
        new.columns = np.concatenate([self.columns, v[:, None]], axis=1)
        # Slot the new row in at its place in each dimension's sorted order; where values
        # repeat, the order among equal ones is np.argsort's, as for a fresh estimator.
        observed = self.ends[:, 1:-1]
        below = (observed < v[:, None]).sum(-1)
        new.distinct = self.distinct & (below == (observed <= v[:, None]).sum(-1))
        k, m0 = self.order.shape
        ends, order = np.empty((k, m0 + 3)), np.empty((k, m0 + 1), dtype=self.order.dtype)
        for r, at in enumerate(below.tolist()):  # (slices: cheaper than any numpy insert)
            ends[r, : at + 1], ends[r, at + 2 :] = self.ends[r, : at + 1], self.ends[r, at + 1 :]
            order[r, :at], order[r, at + 1 :] = self.order[r, :at], self.order[r, at:]
        lanes = np.arange(k)
        ends[lanes, below + 1], order[lanes, below] = v, m0
        new.ends, new.order = ends, order
        tied = np.flatnonzero(~new.distinct)
        if tied.size:
            columns = new.columns[tied]
            new.order[tied] = order = np.argsort(columns, axis=-1)
            new.ends[tied, 1:-1] = np.take_along_axis(columns, order, -1)
        new._kernels(self, below)
        return new

    def _weigh(self, m: int) -> None:
        weights = np.append(default_weights(m), self.options.prior_weight) if m else np.ones(1)
        self.weights = weights / weights.sum()
        self.log_weights = np.log(self.weights)

    def _categorical(self, j: int) -> np.ndarray:
        return _categorical(self.obs[:, j], self.dims[j].choices, self.options)

    def _kernels(self, earlier: Mixture | None, place: np.ndarray | None = None) -> None:
        """Kernel centres and bandwidths (Optuna's rules) of the numerical dimensions from the
        sorted observations, the prior kernel last; each kernel's log Gaussian mass inside the
        bounds, and what `log_pdf` reads of it. ``earlier``: the estimator of all rows but the
        last, whose place in each dimension's sorted order is ``place``; a kernel whose
        bandwidth the last row left alone keeps what it had there."""
        ends, low, high, options = self.ends, self.low, self.high, self.options
        k, m = self.columns.shape
        width = (high - low)[:, None]
        minsigma = self._minsigma(width, m)
        sigmas = np.empty((k, m + 1))
        sigmas[:, m:] = width
        mus = np.concatenate([self.columns, 0.5 * (low + high)[:, None]], axis=-1)
        self.mus, self.sigmas = mus, sigmas
        # What `log_pdf` reads of each kernel, in one array: its log mass, 1 / (sigma sqrt 2),
        # mu / (sigma sqrt 2) and log normaliser.
        self.derived = np.empty((4, k, m + 1))
        self.log_mass, self.scale, self.shift, self.log_norm = self.derived
        m0 = m - 1
        if (
            earlier is None
            or place is None
            or m0 < 3
            or not np.array_equal(minsigma, self._minsigma(width, m0))
        ):
            sorted_sigmas = self._sorted_sigmas(ends)
            np.put_along_axis(sigmas[:, :m], self.order, sorted_sigmas, -1)
            np.clip(sigmas[:, :m], minsigma, width, out=sigmas[:, :m])
            if earlier is None:
                self.log_mass[:] = _log_gauss_mass(
                    (low[:, None] - mus) / sigmas, (high[:, None] - mus) / sigmas
                )
                np.divide(1, sigmas * math.sqrt(2), out=self.scale)
                np.multiply(mus, self.scale, out=self.shift)
                self.log_norm[:] = self.log_mass + np.log(sigmas) + 0.5 * math.log(2 * math.pi)
                return
            # The new kernel and those whose bandwidth changed (all clipped ones while the
            # clip's floor moves with the number of rows).
            changed = np.ones(sigmas.shape, dtype=bool)
            np.not_equal(sigmas[:, :m0], earlier.sigmas[:, :m0], out=changed[:, :m0])
            changed[:, -1] = False
            rows, cols = np.nonzero(changed)
        else:
            # Only the new row and its two neighbours in each dimension's sorted order can
            # have a new bandwidth (the clip's floor stays), or any row of a dimension
            # whose values repeat (the order among equal values is np.argsort's).
            sigmas[:, :m0] = earlier.sigmas[:, :m0]
            lanes = np.arange(k)[:, None]
            at = np.clip(place[:, None] + np.array([-1, 0, 1]), 0, m - 1)
            near = np.maximum(
                ends[lanes, at + 1] - ends[lanes, at], ends[lanes, at + 2] - ends[lanes, at + 1]
            )
            if not options.consider_endpoints:
                near = np.where(at == 0, (ends[:, 2] - ends[:, 1])[:, None], near)
                near = np.where(at == m - 1, (ends[:, -2] - ends[:, -3])[:, None], near)
            cols = self.order[lanes, at]
            sigmas[lanes, cols] = np.clip(near, minsigma, width)
            rows = np.repeat(np.arange(k), at.shape[1])
            cols = cols.ravel()
            tied = np.flatnonzero(~self.distinct)
            if tied.size:
                sorted_sigmas = self._sorted_sigmas(ends[tied])
                again = np.empty((len(tied), m))
                np.put_along_axis(again, self.order[tied], sorted_sigmas, -1)
                sigmas[tied, :m] = np.clip(again, minsigma[tied], width[tied])
                rows = np.concatenate([rows, np.repeat(tied, m)])
                cols = np.concatenate([cols, np.tile(np.arange(m), len(tied))])
        # The same centres, in the same places, and the same prior kernel (last); the
        # kernels above computed again, elementwise alike.
        mu, sigma = mus[rows, cols], sigmas[rows, cols]
        log_mass = _log_gauss_mass((low[rows] - mu) / sigma, (high[rows] - mu) / sigma)
        scale = 1 / (sigma * math.sqrt(2))
        log_norm = log_mass + np.log(sigma) + 0.5 * math.log(2 * math.pi)
        self.derived[:, :, :m0] = earlier.derived[:, :, :m0]
        self.derived[:, :, -1] = earlier.derived[:, :, -1]
        self.derived[:, rows, cols] = (log_mass, scale, mu * scale, log_norm)

    def _minsigma(self, width: np.ndarray, m: int) -> np.ndarray:
        if self.options.consider_magic_clip:
            return width / min(100.0, 1.0 + m + 1)
        return np.full_like(width, _EPS)

    def _sorted_sigmas(self, ends: np.ndarray) -> np.ndarray:
        """Optuna's bandwidths of sorted observations (``ends``: each row between its bounds),
        before the clip."""
        sigmas = np.maximum(ends[:, 1:-1] - ends[:, :-2], ends[:, 2:] - ends[:, 1:-1])
        if not self.options.consider_endpoints and sigmas.shape[1] >= 2:
            sigmas[:, 0] = ends[:, 2] - ends[:, 1]
            sigmas[:, -1] = ends[:, -2] - ends[:, -3]
        return sigmas

    def sample(self, active: np.ndarray, quantiles: Sequence[np.ndarray]) -> np.ndarray:
        """Candidates (one row each, a column per dimension) from the kernels ``active[j]``
        of each dimension ``j`` with the uniform draws ``quantiles[j]``."""
        out = np.empty((active.shape[1], len(self.dims)))
        if self.numeric:
            rows = np.arange(len(self.numeric))[:, None]
            picked = active[self.numeric]
            mu, sigma = self.mus[rows, picked], self.sigmas[rows, picked]
            q = np.stack([quantiles[j] for j in self.numeric])
            a, b = (self.low[:, None] - mu) / sigma, (self.high[:, None] - mu) / sigma
            x = _truncnorm_ppf(q, a, b) * sigma + mu
            if self.log.any():
                x[self.log] = np.exp(x[self.log])
            for r, j in enumerate(self.numeric):
                d = self.dims[j]
                if d.step:
                    snapped = d.low + np.round((x[r] - d.low) / d.step) * d.step
                    x[r] = np.clip(snapped, d.low, d.high)
            out[:, self.numeric] = x.T
        for j, weights in self.categories.items():
            cum = np.cumsum(weights[active[j]], axis=-1)
            cum[:, -1] = 1
            out[:, j] = np.sum(cum < quantiles[j][:, None], axis=-1)
        return out

    def log_pdf(
        self, x: np.ndarray, *, joint: bool, buffer: np.ndarray | None = None
    ) -> np.ndarray:
        """Log density (mass, for stepped and categorical dimensions) at each row of ``x``:
        of the joint mixture (shape ``(n,)``), or of each dimension's own (``(n, dims)``).
        ``buffer``: a flat array with room for (continuous dimensions x n x kernels)
        doubles, written over (most of the work is there: no fresh pages for it)."""
        n = len(x)
        others = [j for j in range(len(self.dims)) if j not in self.continuous]
        if joint:
            total = np.tile(self.log_weights, (n, 1))
            if self.continuous:
                rows = self._continuous_rows()
                total -= self._gauss_terms(x[:, self.continuous].T, rows, buffer).sum(axis=0)
            for j in others:
                total += self._terms(j, x[:, j])
            return _logsumexp(total)
        out = np.empty((n, len(self.dims)))
        if self.continuous:
            rows = self._continuous_rows()
            terms = self._gauss_terms(x[:, self.continuous].T, rows, buffer)
            out[:, self.continuous] = _logsumexp(np.subtract(self.log_weights, terms, out=terms)).T
        for j in others:
            out[:, j] = _logsumexp(self.log_weights + self._terms(j, x[:, j]))
        return out

    def _gauss_terms(
        self, x: np.ndarray, rows: slice | list[int], buffer: np.ndarray | None
    ) -> np.ndarray:
        """(x - mu)^2 / (2 sigma^2) + log normaliser of each kernel of the numerical stack's
        ``rows`` at ``x`` (one row of points per stack row): (rows x points x kernels)."""
        scale, shift, log_norm = self.scale[rows], self.shift[rows], self.log_norm[rows]
        log = self.log[rows]
        if log.any():
            x = x.copy()
            x[log] = np.log(x[log])
        shape = (len(scale), x.shape[1], scale.shape[1])
        into = None if buffer is None else buffer[: math.prod(shape)].reshape(shape)
        terms = np.multiply(x[:, :, None], scale[:, None, :], out=into)
        terms -= shift[:, None, :]
        np.square(terms, out=terms)
        terms += log_norm[:, None, :]
        return terms

    def _continuous_rows(self) -> slice | list[int]:
        """The continuous dimensions' rows in the numerical stack."""
        if len(self.continuous) == len(self.numeric):
            return slice(None)
        return [r for r, j in enumerate(self.numeric) if not self.dims[j].step]

    def _terms(self, j: int, xj: np.ndarray) -> np.ndarray:
        """Each kernel's log mass at ``xj`` (candidates x kernels), for a stepped or a
        categorical dimension."""
        d = self.dims[j]
        if d.choices:
            return np.log(self.categories[j][:, xj.astype(np.int64)].T)
        r = self.numeric.index(j)
        mu, sigma, log_mass = self.mus[r], self.sigmas[r], self.log_mass[r]
        left, right = xj - d.step / 2, xj + d.step / 2
        if d.log:
            left, right = np.log(left), np.log(right)
        mass = _log_gauss_mass((left[:, None] - mu) / sigma, (right[:, None] - mu) / sigma)
        return mass - log_mass


def _ends(sorted_obs: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Each row of sorted observations between its low and high bound."""
    k, m = sorted_obs.shape
    ends = np.empty((k, m + 2))
    ends[:, 0], ends[:, 1:-1], ends[:, -1] = low, sorted_obs, high
    return ends


def _logsumexp(total: np.ndarray) -> np.ndarray:
    """log(sum(exp)) over the last axis; ``total`` is overwritten."""
    total = np.ascontiguousarray(total)  # (itself, as every caller's is: `flat` is a view)
    peak = np.maximum.reduce(total, axis=-1)
    nowhere = np.isneginf(peak)
    peak[nowhere] = 0
    total -= peak[..., None]
    # Terms below e^-60 of the largest (which is 1) cannot change the sum in doubles, and
    # exp is ten times slower where it underflows: raise them to e^-60. Most terms are
    # (kernels far from the point): exp only the others (exp is most of the time here),
    # found by index (masks as scattered as these cost several times more in numpy's
    # masked copies). Where nearly all are near, exp of all, raised to -60 first, is
    # cheaper and the same: exp(-60) is e^-60.
    near = total > -60.0
    if np.count_nonzero(near) > 0.75 * near.size:
        np.maximum(total, -60.0, out=total)
        np.exp(total, out=total)
    else:
        at = np.flatnonzero(near)
        flat = total.reshape(-1)
        kept = np.exp(flat.take(at))
        flat.fill(_EXP_M60)
        flat[at] = kept
    out = np.log(np.add.reduce(total, axis=-1)) + peak
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


def _log_gauss_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails (as Optuna's)."""
    if a.shape != b.shape:
        shape = np.broadcast_shapes(a.shape, b.shape)
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    out = np.empty(a.shape)
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
