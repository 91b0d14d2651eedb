"""The law of best score against compute, and its two fits.

    s(c) = s_inf - a * (c / B)^(-alpha)

The best score approaches s_inf as compute grows; `a` is the gap still left
at the decision budget B and `alpha` how fast it closes. Writing the law in
c / B makes the decision's number, s(B) = s_inf - a, a plain difference of
two parameters. Fits work on theta = (s_inf, log a, log alpha) in scores
normalised by the study's `Scale`, so a and alpha stay positive and the
optimiser sees numbers near 1.

- `fit_ml`: maximum likelihood. A run's curve on the grid is normal around
  the law with the noise model's covariance (the spread between seeds,
  correlated along a run), plus a weak prior on log a and log alpha so one
  run gives a finite answer. Returns the mode and the information matrix,
  which posterior.py turns into a Laplace approximation.
- `fit_ls`: ordinary least squares over every point of every run as if
  they were independent, with one residual variance: the textbook fit. It
  counts a run of a dozen grid points as a dozen observations, so its
  intervals are too narrow; `funsearch study show` prints both.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize

from funsearch.study.observe import Grid, Sampled

THETA = ("s_inf", "log_a", "log_alpha")
_ALPHA_STARTS = np.geomspace(0.03, 3.0, 24)
_BOUNDS = ([-np.inf, -20.0, math.log(1e-3)], [np.inf, 8.0, math.log(20.0)])
Covariance = Callable[[np.ndarray], np.ndarray]  # grid indices -> noise covariance


def mean(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The law at compute points x = c / B (normalised scores)."""
    return theta[0] - math.exp(theta[1]) * x ** -math.exp(theta[2])


def jacobian(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d mean / d theta, one row per point."""
    a, alpha = math.exp(theta[1]), math.exp(theta[2])
    gap = a * x ** -alpha
    return np.column_stack([np.ones_like(x), -gap, gap * alpha * np.log(x)])


@dataclasses.dataclass(frozen=True)
class Scale:
    """Scores as the fits see them: (score - ref) / unit, one scale per study
    so every arm is fitted, and compared, in the same units."""

    ref: float
    unit: float

    @classmethod
    def of(cls, values: np.ndarray) -> Scale:
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            return cls(0.0, 1.0)
        spread = float(np.std(values))
        return cls(float(np.median(values)), spread if spread > 1e-12 else 1.0)

    def to(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=float) - self.ref) / self.unit

    def back(self, y: np.ndarray | float) -> np.ndarray | float:
        return self.ref + self.unit * y


@dataclasses.dataclass(frozen=True)
class Prior:
    """Weak normal priors on log a (normalised units) and log alpha. Without
    them a single flat run would send a to zero and alpha anywhere."""

    log_a: tuple[float, float] = (0.0, 2.0)
    log_alpha: tuple[float, float] = (math.log(0.5), 1.0)

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        return np.array([(theta[1] - self.log_a[0]) / self.log_a[1],
                         (theta[2] - self.log_alpha[0]) / self.log_alpha[1]])

    def jacobian(self) -> np.ndarray:
        return np.array([[0.0, 1 / self.log_a[1], 0.0], [0.0, 0.0, 1 / self.log_alpha[1]]])


DEFAULT_PRIOR = Prior()


@dataclasses.dataclass(frozen=True)
class Fit:
    """One arm's fitted law.

    Attributes:
      method: "ml" or "ls".
      theta: (s_inf, log a, log alpha), normalised scores.
      information: Hessian of the negative log likelihood (with the prior,
        for ML) at theta, Gauss-Newton: the inverse is the Laplace covariance.
      scale: the normalisation the fit used.
      points: grid points fitted (over all runs).
      residual_sd: LS: the fitted residual sd; ML: the RMS of the whitened
        residuals (near 1 when the noise model fits the runs).
    """

    method: str
    theta: np.ndarray
    information: np.ndarray
    scale: Scale
    points: int
    residual_sd: float


@dataclasses.dataclass(frozen=True)
class _Block:
    """One run as the optimiser sees it: points, normalised scores, and the
    inverse Cholesky factor of its noise covariance (None: independent, sd 1),
    kept as a matrix: a product is far cheaper than a triangular solve."""

    x: np.ndarray
    y: np.ndarray
    whitener: np.ndarray | None

    def whiten(self, values: np.ndarray) -> np.ndarray:
        return values if self.whitener is None else self.whitener @ values


def fit_ml(runs: Sequence[Sampled], grid: Grid, covariance: Covariance, scale: Scale,
           prior: Prior = DEFAULT_PRIOR) -> Fit:
    """Maximum likelihood (with the weak prior) under the noise covariance."""
    blocks = [_Block(grid.x[run.index], scale.to(run.y), whitener(covariance(run.index)))
              for run in runs if len(run.index)]
    theta, jac, whitened = _solve(blocks, prior)
    return Fit("ml", theta, jac.T @ jac, scale, _points(blocks),
               float(np.sqrt(np.mean(whitened ** 2))) if whitened.size else 0.0)


def fit_ls(runs: Sequence[Sampled], grid: Grid, scale: Scale) -> Fit:
    """Ordinary least squares, every point independent, one residual variance."""
    blocks = [_Block(grid.x[run.index], scale.to(run.y), None) for run in runs if len(run.index)]
    theta, jac, residuals = _solve(blocks, None)
    points = _points(blocks)
    variance = float(residuals @ residuals) / max(points - len(THETA), 1)
    variance = max(variance, 1e-12)
    return Fit("ls", theta, jac.T @ jac / variance, scale, points, math.sqrt(variance))


def whitener(covariance: np.ndarray) -> np.ndarray:
    """W with W C W^T = I: residuals times W are independent with sd 1."""
    return np.linalg.inv(np.linalg.cholesky(covariance))


def residuals(fit: Fit, runs: Sequence[Sampled], grid: Grid,
              normalised: bool = False) -> list[np.ndarray]:
    """Each run's normalised distance from the fitted law, point by point
    (`normalised`: the runs' scores are normalised already)."""
    return [(run.y if normalised else fit.scale.to(run.y)) - mean(fit.theta, grid.x[run.index])
            for run in runs]


def _points(blocks: list[_Block]) -> int:
    return sum(len(block.x) for block in blocks)


def _solve(blocks: list[_Block], prior: Prior | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mode, the Jacobian of the whitened residuals there (prior rows
    included), and the whitened data residuals."""

    def residual(theta: np.ndarray) -> np.ndarray:
        parts = [block.whiten(block.y - mean(theta, block.x)) for block in blocks]
        if prior is not None:
            parts.append(prior.residuals(theta))
        return np.concatenate(parts)

    def jac(theta: np.ndarray) -> np.ndarray:
        parts = [block.whiten(-jacobian(theta, block.x)) for block in blocks]
        if prior is not None:
            parts.append(prior.jacobian())
        return np.vstack(parts)

    start = _start(blocks, prior, residual)
    result = optimize.least_squares(residual, start, jac=jac, bounds=_BOUNDS, method="trf",
                                    x_scale="jac", max_nfev=400)
    theta = result.x
    data = sum(len(block.x) for block in blocks)
    return theta, jac(theta), residual(theta)[:data]


def _start(blocks: list[_Block], prior: Prior | None,
           residual: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The best of a profile over alpha: for a fixed alpha the law is linear in
    (s_inf, a), so each start is one weighted linear least squares."""
    best, best_cost = np.array([0.0, 0.0, math.log(0.5)]), math.inf
    for alpha in _ALPHA_STARTS:
        design = np.vstack([block.whiten(np.column_stack([np.ones_like(block.x),
                                                          -block.x ** -alpha]))
                            for block in blocks])
        target = np.concatenate([block.whiten(block.y) for block in blocks])
        (s_inf, a), *_ = np.linalg.lstsq(design, target, rcond=None)
        theta = np.array([s_inf, math.log(min(max(a, 1e-6), 1e3)), math.log(alpha)])
        cost = float(np.sum(residual(theta) ** 2))
        if cost < best_cost:
            best, best_cost = theta, cost
    return best
