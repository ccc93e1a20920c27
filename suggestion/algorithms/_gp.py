"""A Gaussian-process surrogate with scikit-optimize's model, fitted once per call.

The kernel is scikit-optimize's default for ``base_estimator=GP`` (constant x Matern 5/2
with one length scale per input, plus white noise, targets normalised, three optimiser
starts, scikit-learn's marginal likelihood), but its hyperparameters are fitted here with an
analytic gradient on at most `FIT_LIMIT` trials (a subset drawn from the request's seed),
and the posterior is then conditioned on every
trial with one Cholesky factorisation. Fantasised points (pending trials, earlier points of
the same reply) are added with that fitted kernel by a block update of the inverse, O(n^2)
each, instead of refitting a copy per point as scikit-optimize does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import fmin_l_bfgs_b
from scipy.special import ndtr

FIT_LIMIT = 200
"""Most trials the kernel hyperparameters are fitted on (the posterior uses all of them)."""

_SQRT5 = math.sqrt(5.0)
_JITTER = 1e-10  # scikit-learn's default ``alpha``


def _no_check() -> None:
    return None


PREDICT_BLOCK = 1_000
"""Candidates predicted per block; the caller's check runs between blocks."""


class GaussianProcess:
    """Posterior of a GP with fixed, fitted hyperparameters, in normalised target units.

    Inputs are rows in the unit cube (one-hot blocks for categories). Not thread-safe.
    """

    def __init__(
        self, X: np.ndarray, y: np.ndarray, *, seed: int, check: Callable[[], None] = _no_check
    ) -> None:
        self.y_mean = float(np.mean(y))
        self.y_std = float(np.std(y)) or 1.0
        z = (y - self.y_mean) / self.y_std
        self.amplitude, self.length_scale, self.noise = _fit_hyperparameters(X, z, seed, check)
        K = self._k(X, X)
        K[np.diag_indices_from(K)] += self.noise + _JITTER
        try:
            factor = cho_factor(K, lower=True, check_finite=False)
            self.K_inv = cho_solve(factor, np.eye(len(X)), check_finite=False)
        except np.linalg.LinAlgError:
            self.K_inv = np.linalg.pinv(K)
        self.X = X
        self.z = z
        self.alpha = self.K_inv @ z

    # -- kernel ---------------------------------------------------------------------

    def _scaled_distance(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        a, b = A / self.length_scale, B / self.length_scale
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return np.sqrt(np.maximum(sq, 0.0))

    def _k(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        r = _SQRT5 * self._scaled_distance(A, B)
        return self.amplitude * (1.0 + r + r * r / 3.0) * np.exp(-r)

    # -- posterior ------------------------------------------------------------------

    def normalise(self, y: float) -> float:
        return (y - self.y_mean) / self.y_std

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and variance (normalised units, noise-free) at the rows of ``Z``, and the
        cross term ``W = k(Z, X) K^-1`` that `Candidates` keeps up to date."""
        k = self._k(Z, self.X)
        W = k @ self.K_inv
        mean = k @ self.alpha
        var = np.maximum(self.amplitude - np.einsum("ij,ij->i", W, k), 0.0)
        return mean, var, W

    def predict_with_gradient(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients at one point ``x``."""
        diff = x[None, :] - self.X  # (n, D)
        scaled = diff / self.length_scale
        r = _SQRT5 * np.sqrt((scaled * scaled).sum(1))
        e = np.exp(-r)
        k = self.amplitude * (1.0 + r + r * r / 3.0) * e
        # d k / d x = -(5/3) c (1 + sqrt5 r') exp(-sqrt5 r') (x - x') / l^2, r' unscaled
        dk = (-(5.0 / 3.0) * self.amplitude * (1.0 + r) * e)[:, None] * (
            diff / (self.length_scale**2)
        )
        v = self.K_inv @ k
        mean = float(k @ self.alpha)
        var = float(self.amplitude - k @ v)
        return mean, max(var, 0.0), dk.T @ self.alpha, -2.0 * (dk.T @ v)

    def add(self, x: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Condition on one more (fantasised) observation ``z`` (normalised) at ``x``.

        Returns ``(k(X, x), K^-1 k(X, x), s)`` of the old state for `Candidates.add`.
        """
        kx = self._k(self.X, x[None, :])[:, 0]
        b = self.K_inv @ kx
        s = max(self.amplitude + self.noise + _JITTER - float(kx @ b), 1e-12)
        n = len(self.X)
        K_inv = np.empty((n + 1, n + 1))
        K_inv[:n, :n] = self.K_inv + np.outer(b, b) / s
        K_inv[:n, n] = K_inv[n, :n] = -b / s
        K_inv[n, n] = 1.0 / s
        self.K_inv = K_inv
        self.X = np.vstack([self.X, x])
        self.z = np.append(self.z, z)
        self.alpha = self.K_inv @ self.z
        return kx, b, s


class Candidates:
    """Random points with their posterior, updated in O(m n) per fantasised observation."""

    def __init__(
        self, gp: GaussianProcess, Z: np.ndarray, check: Callable[[], None] = _no_check
    ) -> None:
        self.gp = gp
        self.Z = Z
        blocks = []
        for start in range(0, len(Z), PREDICT_BLOCK):
            check()
            blocks.append(gp.predict(Z[start : start + PREDICT_BLOCK]))
        self.mean = np.concatenate([b[0] for b in blocks])
        self.var = np.concatenate([b[1] for b in blocks])
        self._W = np.vstack([b[2] for b in blocks])

    def add(self, x: np.ndarray, z: float) -> None:
        mean_x, var_x, _, _ = self.gp.predict_with_gradient(x)
        kx, b, s = self.gp.add(x, z)
        k_cx = self.gp._k(self.Z, x[None, :])[:, 0]
        cov = k_cx - self._W @ kx  # posterior covariance with x before the update
        self.mean = self.mean + cov * (z - mean_x) / s
        self.var = np.maximum(self.var - cov * cov / s, 0.0)
        self._W = np.hstack([self._W - np.outer(cov, b) / s, (cov / s)[:, None]])


def acquisition(
    name: str,
    mean: np.ndarray,
    var: np.ndarray,
    best: float,
    *,
    xi: float = 0.01,
    kappa: float = 1.96,
) -> np.ndarray:
    """scikit-optimize's acquisition functions as values to minimise (normalised units)."""
    std = np.sqrt(var)
    if name == "LCB":
        return mean - kappa * std
    with np.errstate(divide="ignore", invalid="ignore"):
        improve = best - xi - mean
        zscore = np.where(std > 0, improve / np.where(std > 0, std, 1.0), 0.0)
    if name == "EI":
        return -np.where(std > 0, improve * ndtr(zscore) + std * _pdf(zscore), 0.0)
    return -np.where(std > 0, ndtr(zscore), 0.0)  # PI


def acquisition_with_gradient(
    gp: GaussianProcess, name: str, best: float, *, xi: float = 0.01, kappa: float = 1.96
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """f(x) -> (value, gradient) of `acquisition` for scipy's L-BFGS-B."""

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        mean, var, dmean, dvar = gp.predict_with_gradient(x)
        std = math.sqrt(var)
        if std <= 1e-12:
            value = mean if name == "LCB" else 0.0
            return value, (dmean if name == "LCB" else np.zeros_like(x))
        dstd = dvar / (2.0 * std)
        if name == "LCB":
            return mean - kappa * std, dmean - kappa * dstd
        zscore = (best - xi - mean) / std
        cdf, pdf = float(ndtr(zscore)), float(_pdf(zscore))
        if name == "EI":
            return -((best - xi - mean) * cdf + std * pdf), cdf * dmean - pdf * dstd
        return -cdf, pdf * (dmean + zscore * dstd) / std

    return f


def _pdf(z: np.ndarray | float) -> np.ndarray:
    return np.exp(-0.5 * np.square(z)) / math.sqrt(2.0 * math.pi)


# Hyperparameter bounds of scikit-optimize's GP kernel, on the log scale the fit works in.
_AMPLITUDE_BOUNDS = (math.log(0.01), math.log(1000.0))
_LENGTH_BOUNDS = (math.log(0.01), math.log(100.0))
_NOISE_BOUNDS = (math.log(1e-5), math.log(1e5))
_FIT_STARTS = 3  # scikit-optimize: n_restarts_optimizer=2 besides the default start


def _fit_hyperparameters(
    X: np.ndarray, z: np.ndarray, seed: int, check: Callable[[], None] = _no_check
) -> tuple[float, np.ndarray, float]:
    """(amplitude, length scales, noise) by maximum marginal likelihood, scikit-optimize's
    kernel, bounds and starts, on at most `FIT_LIMIT` rows drawn with ``seed``.

    The same objective as scikit-learn's `GaussianProcessRegressor.fit`, with the gradient
    computed from one (n, n, dims) tensor of squared differences instead of per-parameter
    kernel gradients: 5-10x fewer operations per evaluation.
    """
    rng = np.random.default_rng(seed)
    if len(X) > FIT_LIMIT:
        rows = np.sort(rng.choice(len(X), FIT_LIMIT, replace=False))
        X, z = X[rows], z[rows]
    n, dims = X.shape
    sq_diff = (X[:, None, :] - X[None, :, :]) ** 2  # (n, n, dims)
    eye = np.eye(n)

    def negative_lml(theta: np.ndarray) -> tuple[float, np.ndarray]:
        check()
        amplitude, noise = math.exp(theta[0]), math.exp(theta[-1])
        inv_l2 = np.exp(-2.0 * theta[1:-1])
        r = _SQRT5 * np.sqrt(np.maximum(sq_diff @ inv_l2, 0.0))
        e = np.exp(-r)
        Kf = amplitude * (1.0 + r + r * r / 3.0) * e
        K = Kf + (noise + _JITTER) * eye
        try:
            L, lower = cho_factor(K, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return 1e25, np.zeros_like(theta)
        alpha = cho_solve((L, lower), z, check_finite=False)
        K_inv = cho_solve((L, lower), eye, check_finite=False)
        lml = (
            -0.5 * float(z @ alpha)
            - float(np.log(np.diag(L)).sum())
            - 0.5 * n * math.log(2.0 * math.pi)
        )
        Q = np.outer(alpha, alpha) - K_inv
        grad = np.empty_like(theta)
        grad[0] = 0.5 * float(np.einsum("ij,ij->", Q, Kf))
        G = Q * (amplitude * (5.0 / 3.0) * (1.0 + r) * e)
        grad[1:-1] = 0.5 * np.einsum("ij,ijd->d", G, sq_diff) * inv_l2
        grad[-1] = 0.5 * noise * float(np.trace(Q))
        return -lml, -grad

    bounds = [_AMPLITUDE_BOUNDS] + [_LENGTH_BOUNDS] * dims + [_NOISE_BOUNDS]
    low, high = np.array(bounds).T
    starts = [np.zeros(dims + 2)]  # scikit-optimize's initial kernel: 1.0, ones, 1.0
    starts += [rng.uniform(low, high) for _ in range(_FIT_STARTS - 1)]
    best_theta, best_value = starts[0], math.inf
    for start in starts:
        theta, value, _ = fmin_l_bfgs_b(negative_lml, start, bounds=bounds)
        if value < best_value:
            best_theta, best_value = theta, float(value)
    return (
        math.exp(best_theta[0]),
        np.exp(best_theta[1:-1]),
        math.exp(best_theta[-1]),
    )
