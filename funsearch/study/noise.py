"""The noise model: how far one seed's curve strays from its arm's law.

Seeds of one configuration differ a lot (three quick-start seeds at 400
samples ranged from -7.01 to -6.46), and a run's deviation persists: a seed
that is ahead at 100 samples is likely still ahead at 141. So a run is one
draw of a correlated deviation along the grid, not a dozen independent
points: sd_j at grid point j, correlation rho^|i-j| between points i and j.

The scale comes from the spread between seeds: at each grid point, the
variance of the runs of an arm around their own mean there, pooled over
arms (and over neighbouring points, which share most of their runs' steps).
While there are few repeats it is shrunk towards the spread of each arm's
first run around a law fitted to it alone, which needs no repeats (one
repeat is a poor guide: in the quick-start study two seeds agreed to 0.01
where seeds differ by 0.12); each arm's scale is the pooled one times a
factor shrunk towards 1 by the same rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from funsearch.study import law
from funsearch.study.observe import Grid, Sampled

# Weight, in repeats, of the residual-based scale against the seed spread.
PRIOR_DF = 2.0
# A grid point where every seed agrees (all runs still at the initial
# program) still gets this share of the largest sd.
SD_FLOOR = 0.1
RHO_RANGE = (0.0, 0.97)
DEFAULT_RHO = 0.8
RHO_PRIOR_PAIRS = 8


@dataclasses.dataclass(frozen=True)
class Noise:
    """sd per grid point (normalised scores, pooled over arms), correlation
    between neighbouring points, each arm's factor, and where it came from."""

    sd: np.ndarray
    rho: float
    factors: Mapping[str, float]
    source: str
    repeats: int  # runs beyond the first of each arm, over all arms

    @property
    def df(self) -> float:
        """Degrees of freedom of the scale: a repeat is one more curve's
        worth of spread; the residuals' scale counts as PRIOR_DF of them."""
        return self.repeats + PRIOR_DF

    def covariance(self, arm: str, index: np.ndarray) -> np.ndarray:
        sd = self.sd[index] * self.factors.get(arm, 1.0)
        lag = np.abs(index[:, None] - index[None, :])
        return np.outer(sd, sd) * self.rho ** lag + 1e-12 * np.eye(len(index))

    def to_json(self) -> dict:
        return {"sd": [round(float(v), 6) for v in self.sd], "rho": round(self.rho, 4),
                "factors": {arm: round(f, 4) for arm, f in self.factors.items()},
                "source": self.source, "repeats": self.repeats}


@dataclasses.dataclass(frozen=True)
class _Spread:
    """Sums of squared deviations from the arm's mean and their degrees of
    freedom, per grid point; lag-1 cross products for the correlation."""

    squares: np.ndarray
    df: np.ndarray
    lagged: list[tuple[float, float, int]]  # a run's (deviation at j, at j + 1, j)

    @classmethod
    def of(cls, runs: Sequence[Sampled], size: int) -> _Spread:
        table = np.full((len(runs), size), np.nan)
        for row, run in enumerate(runs):
            table[row, run.index] = run.y
        count = np.sum(~np.isnan(table), axis=0)
        centre = np.nansum(table, axis=0) / np.maximum(count, 1)
        deviation = table - centre
        squares = np.nansum(np.where(count >= 2, deviation ** 2, 0.0), axis=0)
        df = np.maximum(count - 1, 0).astype(float)
        inflate = np.sqrt(np.where(count >= 2, count / np.maximum(count - 1, 1), 0.0))
        lagged = [(deviation[r, j] * inflate[j], deviation[r, j + 1] * inflate[j + 1], j)
                  for r in range(len(runs)) for j in range(size - 1)
                  if count[j] >= 2 and count[j + 1] >= 2
                  and not np.isnan(deviation[r, j]) and not np.isnan(deviation[r, j + 1])]
        return cls(squares, df, lagged)


def estimate(runs: Mapping[str, Sequence[Sampled]], grid: Grid) -> Noise:
    """The noise model from the runs of every arm (normalised scores)."""
    size = len(grid)
    spreads = {arm: _Spread.of(arm_runs, size) for arm, arm_runs in runs.items()}
    lagged = [item for spread in spreads.values() for item in spread.lagged]
    squares = sum((s.squares for s in spreads.values()), np.zeros(size))
    df = sum((s.df for s in spreads.values()), np.zeros(size))
    kernel = np.array([0.25, 0.5, 0.25])  # pool neighbouring points
    pooled_squares = np.convolve(squares, kernel, mode="same")
    pooled_df = np.convolve(df, kernel, mode="same")
    seed_sd = np.sqrt(pooled_squares / np.maximum(pooled_df, 1e-9))
    rho = _correlation(lagged, np.maximum(seed_sd, 1e-12))
    base = _residual_variance(runs, grid)
    variance = (pooled_squares + PRIOR_DF * base) / (pooled_df + PRIOR_DF)
    sd = np.sqrt(np.maximum(variance, 0.0))
    sd = np.maximum(sd, SD_FLOOR * max(float(sd.max()), 1e-9))
    repeats = sum(max(len(arm_runs) - 1, 0) for arm_runs in runs.values())
    factors = {arm: _factor(spreads[arm], sd, len(runs[arm])) for arm in runs}
    source = (f"seed spread ({repeats} repeats), shrunk towards the residuals' scale"
              if repeats else "residuals around the least-squares laws (no repeats yet; "
              f"correlation assumed {DEFAULT_RHO})")
    return Noise(sd, rho, factors, source, repeats)


def _residual_variance(runs: Mapping[str, Sequence[Sampled]], grid: Grid) -> float:
    """The seed variance implied by each arm's first run around a law fitted
    to it alone, so that it is a prior independent of the seed spread (later
    runs enter through that). A smooth law absorbs most of a correlated
    deviation, so the residual sum of squares is divided by its expectation
    per unit variance, trace((I - H) R): H the fit's hat matrix, R the run's
    correlation at DEFAULT_RHO (unbiased, were rho that)."""
    total_squares = total_trace = 0.0
    for arm_runs in runs.values():
        first = arm_runs[0]
        if len(first.index) <= len(law.THETA):
            continue
        fit = law.fit_ls([first], grid, law.Scale(0.0, 1.0))
        (residual,) = law.residuals(fit, [first], grid, normalised=True)
        design = law.jacobian(fit.theta, grid.x[first.index])
        hat = design @ np.linalg.pinv(design.T @ design) @ design.T
        correlation = DEFAULT_RHO ** np.abs(first.index[:, None] - first.index[None, :])
        total_squares += float(residual @ residual)
        total_trace += float(np.trace((np.eye(len(first.index)) - hat) @ correlation))
    return total_squares / total_trace if total_trace > 1e-9 else 0.0


def _correlation(lagged: list[tuple[float, float, int]], sd: np.ndarray) -> float:
    """Lag-1 correlation of the seeds' deviations, shrunk towards DEFAULT_RHO
    by RHO_PRIOR_PAIRS pairs: one repeat's few pairs say little, and a low
    correlation would also shrink the residuals' scale (see _residual_variance)."""
    products = sum(a * b / (sd[j] * sd[j + 1]) for a, b, j in lagged)
    squares = sum(0.5 * ((a / sd[j]) ** 2 + (b / sd[j + 1]) ** 2) for a, b, j in lagged)
    observed = products / squares if squares > 0 else DEFAULT_RHO
    weight = len(lagged) / (len(lagged) + RHO_PRIOR_PAIRS)
    return float(np.clip(weight * observed + (1 - weight) * DEFAULT_RHO, *RHO_RANGE))


def _factor(spread: _Spread, sd: np.ndarray, runs: int) -> float:
    """The arm's sd relative to the pooled one, shrunk towards 1."""
    expected = float(spread.df @ sd ** 2)
    if expected <= 0:
        return 1.0
    ratio = float(spread.squares.sum()) / expected
    repeats = max(runs - 1, 0)
    return float(np.sqrt((repeats * ratio + PRIOR_DF) / (repeats + PRIOR_DF)))
