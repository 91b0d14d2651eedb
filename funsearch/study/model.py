"""A study's runs, fitted: the noise model, each arm's law by maximum
likelihood and by least squares, and P(best at B) under each.

Pure: curves in, numbers out, the same numbers every time, so `funsearch
study show` recomputes from the log exactly what the study saw when it chose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from funsearch.study import law, noise
from funsearch.study.observe import Grid, RunCurve, Sampled
from funsearch.study.posterior import Estimate, Posterior, entropy, laplace, p_best


@dataclasses.dataclass(frozen=True)
class ArmFit:
    arm: str
    runs: tuple[Sampled, ...]
    ml: Posterior
    ls: Posterior


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Everything fitted from the runs so far. Arms without runs are left out."""

    grid: Grid
    scale: law.Scale
    noise: noise.Noise
    arms: dict[str, ArmFit]
    p_best: dict[str, float]
    p_best_ls: dict[str, float]

    @property
    def entropy(self) -> float:
        return entropy(np.array(list(self.p_best.values())))

    def best(self) -> str:
        """The arm the study would name now: the highest P(best at B)."""
        return max(self.p_best, key=self.p_best.__getitem__)

    def to_json(self) -> dict:
        """The fits as the study log records them (score units, 90% intervals)."""
        arms = {}
        for arm, fit in self.arms.items():
            estimates = fit.ml.estimates()
            arms[arm] = {"runs": len(fit.runs),
                         **{name: _rounded(e) for name, e in estimates.items()},
                         "s_B_ls": _rounded(fit.ls.estimates()["s_B"]),
                         "p_best": round(self.p_best[arm], 4),
                         "p_best_ls": round(self.p_best_ls[arm], 4)}
        return {"arms": arms, "best": self.best() if self.arms else None,
                "noise": self.noise.to_json(), "entropy": round(self.entropy, 4)}

    def decision_moments(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Arms, and the mean and variance of each one's s(B) (normalised)."""
        names = list(self.arms)
        moments = [self.arms[name].ml.decision() for name in names]
        return names, np.array([m for m, _ in moments]), np.array([v for _, v in moments])


def analyse(curves: Mapping[str, Sequence[RunCurve]], grid: Grid,
            prior: law.Prior = law.DEFAULT_PRIOR) -> Analysis:
    """Fits every arm that has at least one run with a point on the grid."""
    sampled = {arm: tuple(s for s in map(grid.sample, arm_curves) if len(s.index))
               for arm, arm_curves in curves.items()}
    sampled = {arm: runs for arm, runs in sampled.items() if runs}
    values = np.concatenate([run.y for runs in sampled.values() for run in runs]) \
        if sampled else np.zeros(0)
    scale = law.Scale.of(values)
    ls = {arm: law.fit_ls(runs, grid, scale) for arm, runs in sampled.items()}
    normalised = {arm: [Sampled(run.index, scale.to(run.y)) for run in runs]
                  for arm, runs in sampled.items()}
    model = noise.estimate(normalised, grid)
    arms = {}
    for arm, runs in sampled.items():
        ml = law.fit_ml(runs, grid, lambda index, arm=arm: model.covariance(arm, index), scale,
                        prior)
        arms[arm] = ArmFit(arm, runs, laplace(ml, model.df),
                           laplace(ls[arm], max(ls[arm].points - len(law.THETA), 1)))
    return Analysis(grid, scale, model, arms, _p_best(arms, "ml"), _p_best(arms, "ls"))


def _rounded(estimate: Estimate) -> list[float]:
    return [round(estimate.value, 6), round(estimate.low, 6), round(estimate.high, 6)]


def _p_best(arms: Mapping[str, ArmFit], method: str) -> dict[str, float]:
    if not arms:
        return {}
    moments = [getattr(fit, method).decision() for fit in arms.values()]
    mu = np.array([m for m, _ in moments])
    sd = np.sqrt(np.array([v for _, v in moments]))
    return dict(zip(arms, map(float, p_best(mu, sd)), strict=True))
