"""What is known about an arm's law, and about which arm is best at B.

The uncertainty of an arm's parameters is a Laplace approximation: a normal
distribution around the fit's mode with the inverse of its information
matrix as covariance (in theta = (s_inf, log a, log alpha), so a and alpha
get log-normal intervals). The noise scale behind that covariance is itself
estimated from a few repeats, so intervals use Student's t with the noise
model's degrees of freedom, and the decision's variance is widened by the
t's variance factor df / (df - 2). The decision needs only one number per arm,
s(B) = s_inf - a, whose distribution is normal with the variance the delta
method gives; the probability that an arm is best at B follows from those
normals, with the arms independent (each is fitted on its own runs).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import special, stats

from funsearch.study.law import Fit, jacobian, mean

LEVEL = 0.9  # the level of the intervals reports show
MIN_DF = 3.0  # a noise scale from no repeats at all still gets a finite widening
_QUANTILES = 128  # points per arm of the P(best) integral


@dataclasses.dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Posterior:
    """One arm's fit with its Laplace covariance (normalised units)."""

    fit: Fit
    covariance: np.ndarray
    df: float = math.inf  # of the noise scale the covariance rests on

    @property
    def theta(self) -> np.ndarray:
        return self.fit.theta

    @property
    def widening(self) -> float:
        """Variance of a t with `df` degrees of freedom over a normal's."""
        return self.df / (self.df - 2) if math.isfinite(self.df) else 1.0

    def decision(self) -> tuple[float, float]:
        """Mean and variance of s(B), normalised."""
        mu, var = decision_moments(self.theta, self.covariance)
        return mu, var * self.widening

    def decision_variance(self, information: np.ndarray) -> float:
        """The variance of s(B) were the fit's information `information`
        (the design's question: what would one more run leave?)."""
        gradient = decision_gradient(self.theta)
        covariance = np.linalg.pinv(information + 1e-10 * np.eye(len(self.theta)))
        return float(gradient @ covariance @ gradient) * self.widening

    def _quantile(self, level: float) -> float:
        if math.isfinite(self.df):
            return float(stats.t.ppf(0.5 + level / 2, self.df))
        return float(stats.norm.ppf(0.5 + level / 2))

    def estimates(self, level: float = LEVEL) -> dict[str, Estimate]:
        """s_inf, a, alpha and s(B) with intervals, in the runs' score units."""
        z = self._quantile(level)
        scale, theta = self.fit.scale, self.theta
        sd = np.sqrt(np.maximum(np.diag(self.covariance), 0.0))
        s_inf = Estimate(*(float(scale.back(theta[0] + k * z * sd[0])) for k in (0, -1, 1)))
        a = Estimate(*(scale.unit * _exp(theta[1] + k * z * sd[1]) for k in (0, -1, 1)))
        alpha = Estimate(*(_exp(theta[2] + k * z * sd[2]) for k in (0, -1, 1)))
        mu, var = decision_moments(theta, self.covariance)
        at_b = Estimate(*(float(scale.back(mu + k * z * math.sqrt(var))) for k in (0, -1, 1)))
        return {"s_inf": s_inf, "a": a, "alpha": alpha, "s_B": at_b}

    def band(self, x: np.ndarray, level: float = LEVEL
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The law at points x = c / B with a pointwise interval for its mean
        (not for one seed's curve), in score units."""
        z = self._quantile(level)
        centre = mean(self.theta, x)
        rows = jacobian(self.theta, x)
        sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", rows, self.covariance, rows), 0.0))
        scale = self.fit.scale
        return scale.back(centre), scale.back(centre - z * sd), scale.back(centre + z * sd)


def _exp(value: float) -> float:
    """exp, saturating at infinity (an unidentified parameter's interval)."""
    return math.exp(min(value, 700.0))


def laplace(fit: Fit, df: float = math.inf) -> Posterior:
    """The normal approximation at the fit's mode; `df`: of its noise scale."""
    information = fit.information + 1e-10 * np.eye(len(fit.theta))
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        covariance = np.linalg.pinv(information)
    return Posterior(fit, 0.5 * (covariance + covariance.T), max(df, MIN_DF))


def decision_gradient(theta: np.ndarray) -> np.ndarray:
    """d s(B) / d theta: s(B) = s_inf - a does not depend on alpha."""
    return np.array([1.0, -math.exp(theta[1]), 0.0])


def decision_moments(theta: np.ndarray, covariance: np.ndarray) -> tuple[float, float]:
    gradient = decision_gradient(theta)
    return float(theta[0] - math.exp(theta[1])), float(gradient @ covariance @ gradient)


def p_best(mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """P(arm j has the highest value) for independent normals N(mu_j, sd_j^2);
    leading dimensions of `mu` and `sd` are cases computed at once.

    For each j, the chance that every other arm is below a draw of arm j,
    averaged over evenly spaced quantiles of arm j (exact for a spike, and
    without the sharp integrands a fixed grid of x gets wrong)."""
    mu = np.asarray(mu, float)
    sd = np.maximum(np.broadcast_to(np.asarray(sd, float), mu.shape), 1e-12)
    quantiles = stats.norm.ppf((np.arange(_QUANTILES) + 0.5) / _QUANTILES)
    draws = mu[..., :, None] + sd[..., :, None] * quantiles  # ... x arm j x quantile
    # ndtr is the normal CDF, without the overhead of scipy.stats.
    below = special.ndtr((draws[..., :, None, :] - mu[..., None, :, None])
                         / sd[..., None, :, None])  # ... x j x other arm x quantile
    arms = mu.shape[-1]
    below[..., np.arange(arms), np.arange(arms), :] = 1.0
    chance = np.prod(below, axis=-2).mean(axis=-1)
    total = chance.sum(axis=-1, keepdims=True)
    return np.where(total > 0, chance / np.where(total > 0, total, 1.0), 1.0 / arms)


def entropy(p: np.ndarray) -> np.ndarray | float:
    """In bits, over the last dimension."""
    p = np.asarray(p, float)
    terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    total = terms.sum(axis=-1)
    return float(total) if np.ndim(total) == 0 else total
