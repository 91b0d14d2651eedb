"""Statistics for comparing runs: step functions of budget, bootstrap intervals.

A run's best score is a step function of the budget spent (samples, seconds,
GPU-hours): it holds its value until the next improvement. Comparisons at an
equal budget read that step function; their uncertainty over seeds is a
percentile bootstrap of the mean, drawn from a seeded generator so that the same
runs always print the same intervals.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence

import numpy as np

RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean over runs with its bootstrap confidence interval.

    Attributes:
      mean: the mean of the values.
      low, high: the interval's ends (equal to the mean when n == 1).
      n: how many values (runs) it is computed from.
    """

    mean: float
    low: float
    high: float
    n: int


def step_value(xs: Sequence[float], ys: Sequence[float], at: float) -> float | None:
    """The value of the step function through (xs, ys) at `at`: the y of the
    last point with x <= at, or None before the first point. xs ascending."""
    index = bisect.bisect_right(xs, at)
    return ys[index - 1] if index else None


def first_reaching(xs: Sequence[float], ys: Sequence[float], threshold: float) -> float | None:
    """The first x whose y is >= threshold (scores: higher is better), or None."""
    for x, y in zip(xs, ys, strict=True):
        if y >= threshold:
            return x
    return None


def bootstrap_mean(values: Sequence[float], confidence: float = CONFIDENCE,
                   resamples: int = RESAMPLES, seed: int = 0) -> Interval | None:
    """Percentile-bootstrap interval of the mean of `values`; None if empty."""
    values = [float(value) for value in values if value is not None and math.isfinite(value)]
    if not values:
        return None
    mean, low, high = bootstrap_means(np.array(values)[:, None], confidence, resamples, seed)
    return Interval(float(mean[0]), float(low[0]), float(high[0]), len(values))


def bootstrap_means(matrix: np.ndarray, confidence: float = CONFIDENCE,
                    resamples: int = RESAMPLES, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and interval ends per column of `matrix` (rows: runs, columns:
    budget points). The same resampled rows serve every column, so a curve's
    band is one bootstrap, not independent ones per point. A column with a NaN
    (a run without a value there) gives NaN."""
    matrix = np.asarray(matrix, dtype=float)
    runs = matrix.shape[0]
    mean = matrix.mean(axis=0)
    if runs == 1:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    # How often each run is drawn in each resample: resamples x runs.
    counts = rng.multinomial(runs, np.full(runs, 1 / runs), size=resamples)
    means = counts @ matrix / runs  # resamples x columns
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return mean, low, high
