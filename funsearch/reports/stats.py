"""Statistics for comparing runs: step functions of budget, intervals over seeds.

A run's best score is a step function of the budget spent (samples, seconds,
GPU-hours): it holds its value until the next improvement. Comparisons at an
equal budget read that step function, and their uncertainty is over seeds:
a handful of runs per group. A percentile bootstrap of so few values is too
narrow (with 2 runs it is their range), so the interval of a group's mean is
Student's t under BOOTSTRAP_FROM runs and a BCa bootstrap from there; the
difference of two groups is the t interval of the per-seed differences when
their seeds pair up, else Welch's, and P(better) is the share of the same
distribution above zero. Bootstraps draw from a seeded generator, so the
same runs always print the same intervals.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

RESAMPLES = 10_000
CONFIDENCE = 0.95
BOOTSTRAP_FROM = 10  # runs per group from which a bootstrap is trusted over t
FEW_RUNS = 5  # fewer runs in a group: its values are shown, and a warning printed


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean over runs with its confidence interval.

    Attributes:
      mean: the mean of the values.
      low, high: the interval's ends (equal to the mean when n == 1).
      n: how many values (runs) it is computed from.
      method: "t" (Student's t), "bca" (BCa bootstrap), "percentile"
        (percentile bootstrap), or "none" (one value: no interval).
      values: the values themselves, when there are fewer than FEW_RUNS.
    """

    mean: float
    low: float
    high: float
    n: int
    method: str = "percentile"
    values: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class Contrast:
    """One group against a reference: the difference of their means.

    Attributes:
      difference: the group's mean minus the reference's, with its interval.
      p_higher: the probability that the group's true mean is the higher
        (None: one of the two has a single run, so no spread is known).
      paired: whether runs were paired by seed (differences per seed).
    """

    difference: Interval
    p_higher: float | None
    paired: bool


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


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean_interval(values: Sequence[float | None], confidence: float = CONFIDENCE,
                  seed: int = 0) -> Interval | None:
    """The interval of the mean of `values` over runs: Student's t under
    BOOTSTRAP_FROM values, BCa bootstrap from there; None if there are none."""
    values = _finite(values)
    if not values:
        return None
    shown = tuple(values) if len(values) < FEW_RUNS else ()
    mean = float(np.mean(values))
    if len(values) == 1:
        return Interval(mean, mean, mean, 1, "none", shown)
    if len(values) < BOOTSTRAP_FROM or np.ptp(values) == 0:
        low, high = _t_interval(mean, _standard_error(values), len(values) - 1, confidence)
        return Interval(mean, low, high, len(values), "t", shown)
    low, high = _bca(np.array(values), confidence, seed)
    return Interval(mean, low, high, len(values), "bca", shown)


def _standard_error(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def _t_interval(center: float, se: float, df: float, confidence: float) -> tuple[float, float]:
    if se == 0:
        return center, center
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df)) * se
    return center - half, center + half


def _p_above_zero(center: float, se: float, df: float) -> float:
    """P(true value > 0) for an estimate `center` with a t-distributed error
    (the posterior of a normal mean under a flat prior)."""
    if se == 0:
        return 1.0 if center > 0 else 0.0 if center < 0 else 0.5
    return float(scipy_stats.t.cdf(center / se, df))


def _bca(values: np.ndarray, confidence: float, seed: int) -> tuple[float, float]:
    """The BCa bootstrap interval of the mean (the percentile one if BCa fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's own degenerate-data warnings: handled below
        result = scipy_stats.bootstrap((values,), np.mean, confidence_level=confidence,
                                       n_resamples=RESAMPLES, method="BCa",
                                       random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):
        _, lows, highs = bootstrap_means(values[:, None], confidence, RESAMPLES, seed)
        return float(lows[0]), float(highs[0])
    return float(low), float(high)


def difference(reference: Sequence[float], group: Sequence[float], paired: bool,
               confidence: float = CONFIDENCE, seed: int = 0) -> Contrast | None:
    """The group's mean minus the reference's. Paired: the two sequences are
    aligned by seed and the differences per seed are what varies. Unpaired:
    Welch's t interval, or a bootstrap of both groups when each has
    BOOTSTRAP_FROM runs. None if either is empty."""
    a, b = _finite(reference), _finite(group)
    if not a or not b:
        return None
    if paired and len(a) == len(b) and len(a) > 1:
        return _paired(np.array(b) - np.array(a), confidence, seed)
    shown = ()
    mean = float(np.mean(b) - np.mean(a))
    if min(len(a), len(b)) == 1:
        return Contrast(Interval(mean, mean, mean, len(a) + len(b), "none", shown), None, False)
    if min(len(a), len(b)) >= BOOTSTRAP_FROM:
        return _unpaired_bootstrap(np.array(a), np.array(b), confidence, seed)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se else 1.0
    low, high = _t_interval(mean, se, df, confidence)
    return Contrast(Interval(mean, low, high, len(a) + len(b), "t", shown),
                    _p_above_zero(mean, se, df), False)


def _paired(differences: np.ndarray, confidence: float, seed: int) -> Contrast:
    interval = mean_interval(list(differences), confidence, seed)
    assert interval is not None
    if interval.method == "bca":
        rng = np.random.default_rng(seed)
        means = rng.choice(differences, (RESAMPLES, len(differences))).mean(axis=1)
        p = float(np.mean(means > 0) + 0.5 * np.mean(means == 0))
    else:
        p = _p_above_zero(interval.mean, _standard_error(list(differences)),
                          len(differences) - 1)
    return Contrast(interval, p, True)


def _unpaired_bootstrap(a: np.ndarray, b: np.ndarray, confidence: float,
                        seed: int) -> Contrast:
    rng = np.random.default_rng(seed)
    means = (rng.choice(b, (RESAMPLES, len(b))).mean(axis=1)
             - rng.choice(a, (RESAMPLES, len(a))).mean(axis=1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    p = float(np.mean(means > 0) + 0.5 * np.mean(means == 0))
    interval = Interval(float(b.mean() - a.mean()), float(low), float(high), len(a) + len(b),
                        "percentile")
    return Contrast(interval, p, False)


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
