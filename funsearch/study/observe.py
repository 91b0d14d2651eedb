"""What one run tells a study: its best score as a step function of the compute
it spent, read at a fixed grid of compute points.

A run's best-so-far curve is the observation. Every fit of a study reads
curves at the same log-spaced grid, up to the decision budget B, so runs of
different lengths are prefixes of one another and seeds can be compared point
by point. This module is also the study's one door to the run directory
format (funsearch.reports.rundata), so a move of that module is a one-line change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from funsearch.reports import rundata

# The fits read runs from B / 2^DEFAULT_OCTAVES to B. A run's early curve is
# its initial program and first lucky jumps, not the law: on the simulator, fits
# over five octaves put s(B) 2-3 seed sds too low, over two about right.
DEFAULT_OCTAVES = 2.0
# Units a run can be stopped at (its `scheduler.budget` keys) and that a run's
# best points are counted in.
UNITS = tuple(rundata.UNITS)


@dataclasses.dataclass(frozen=True)
class RunCurve:
    """The best score of one run, rising at `points` (cost, score), ascending in
    cost; `extent`: the cost the run spent in all."""

    points: tuple[tuple[float, float], ...]
    extent: float

    def at(self, cost: float) -> float | None:
        """The best score once `cost` was spent; None before the first point or
        beyond what the run spent."""
        values = self.read(np.array([cost]))
        return None if np.isnan(values[0]) else float(values[0])

    def read(self, costs: np.ndarray) -> np.ndarray:
        """`at` for many costs at once; NaN where there is no value."""
        steps = np.array([point[0] for point in self.points], dtype=float)
        scores = np.array([point[1] for point in self.points] + [np.nan], dtype=float)
        index = np.searchsorted(steps, costs, side="right") - 1
        values = scores[index]  # index -1 reads the NaN at the end
        return np.where(costs > self.extent * (1 + 1e-9) + 1e-12, np.nan, values)

    def to_json(self) -> dict:
        return {"points": [list(point) for point in self.points], "extent": self.extent}

    @classmethod
    def from_json(cls, data: dict) -> RunCurve:
        return cls(tuple((float(c), float(s)) for c, s in data["points"]),
                   float(data["extent"]))


@dataclasses.dataclass(frozen=True)
class Sampled:
    """A run read at the grid: the grid indices it reached and its best there."""

    index: np.ndarray
    y: np.ndarray


@dataclasses.dataclass(frozen=True)
class Grid:
    """Compute points x = cost / B, log-spaced and ending at 1 (the decision
    budget). Half-octave steps keep neighbouring points distinct without
    making one run look like many independent observations (the noise model
    correlates them)."""

    budget: float
    x: np.ndarray

    @classmethod
    def log_spaced(cls, budget: float, octaves: float = DEFAULT_OCTAVES,
                   per_octave: int = 2) -> Grid:
        steps = int(round(octaves * per_octave))
        return cls(float(budget), 2.0 ** (-np.arange(steps, -1, -1) / per_octave))

    def __len__(self) -> int:
        return len(self.x)

    @property
    def costs(self) -> np.ndarray:
        return self.x * self.budget

    def reached(self, fraction: float) -> np.ndarray:
        """Indices a run of budget `fraction` x B reaches."""
        return np.flatnonzero(self.x <= fraction * (1 + 1e-9))

    def sample(self, curve: RunCurve) -> Sampled:
        values = curve.read(self.costs)
        index = np.flatnonzero(~np.isnan(values))
        return Sampled(index, values[index])


def read_curve(run_dir: str | Path, unit: str) -> RunCurve:
    """The best-so-far curve of a run directory in `unit` (samples, wall,
    gpu_hours, usd), as `funsearch show` and `compare` read it."""
    run = rundata.read_run(run_dir)
    points = tuple((point.at(unit), point.score) for point in run.best)
    return RunCurve(points, run.extent(unit))
