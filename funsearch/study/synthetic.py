"""Studies where the truth is known: curves drawn from the law itself.

Each arm has true parameters (s_inf, a, alpha) and a seed noise: a run's
curve is the law plus a deviation that wanders along log-compute (an
Ornstein-Uhlenbeck process, correlation rho per half octave), which is the
noise model the fits assume. The tests check the fits against it, and
experiments/study_validation.py measures calibration with it; the
scheduler's simulator (funsearch/scheduling/simulation.py) is the check where the law
is only an approximation.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from funsearch.study.observe import RunCurve

_STEPS_PER_OCTAVE = 8
_OCTAVES = 6  # curves start at B / 64


@dataclasses.dataclass(frozen=True)
class TrueArm:
    """s(c) = s_inf - a (c / B)^-alpha; sd: one seed's deviation from it."""

    s_inf: float
    a: float
    alpha: float
    sd: float

    def value(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.s_inf - self.a * np.asarray(x, float) ** -self.alpha

    @property
    def at_budget(self) -> float:
        return self.s_inf - self.a


@dataclasses.dataclass(frozen=True)
class World:
    budget: float
    arms: dict[str, TrueArm]
    rho: float = 0.8  # correlation of a run's deviation over half an octave

    def best(self) -> str:
        return max(self.arms, key=lambda arm: self.arms[arm].at_budget)

    def run(self, arm: str, fraction: float, rng: np.random.Generator) -> RunCurve:
        """One seed's curve up to `fraction` x B."""
        truth = self.arms[arm]
        steps = int(math.floor((_OCTAVES + math.log2(fraction)) * _STEPS_PER_OCTAVE + 1e-9))
        x = 2.0 ** (-_OCTAVES + np.arange(steps + 1) / _STEPS_PER_OCTAVE)
        x = np.append(x[x < fraction], fraction)
        phi = self.rho ** (2.0 / _STEPS_PER_OCTAVE)  # per step of 1/8 octave
        deviation = np.empty(len(x))
        deviation[0] = rng.normal()
        for i in range(1, len(x)):
            deviation[i] = phi * deviation[i - 1] + math.sqrt(1 - phi ** 2) * rng.normal()
        scores = truth.value(x) + truth.sd * deviation
        return RunCurve(tuple(zip((x * self.budget).tolist(), scores.tolist(), strict=True)),
                        fraction * self.budget)


def random_world(rng: np.random.Generator, arms: int = 5, budget: float = 1000.0,
                 spread: float = 0.5) -> World:
    """Arms whose scores at B lie within a few seed sds of each other, so
    that which one is best is a real question. `spread`: sd of s(B) across
    arms, in units of the seed noise."""
    sd = 0.05
    names = [f"arm{k}" for k in range(arms)]
    truths = {}
    for name in names:
        alpha = float(rng.uniform(0.25, 1.0))
        a = float(rng.uniform(0.1, 0.4))
        at_budget = 1.0 + spread * sd * float(rng.normal())
        truths[name] = TrueArm(at_budget + a, a, alpha, sd * float(rng.uniform(0.7, 1.4)))
    return World(budget, truths)


@dataclasses.dataclass(frozen=True)
class SyntheticRuns:
    """A run function for the study runner that draws a run's curve from a
    world, seeded by the run's seed, instead of searching: studies in tests
    and demos take milliseconds (and it pickles, for Ray tasks)."""

    world: World

    def __call__(self, request):  # RunRequest -> RunOutcome
        from funsearch.study.runner import RunOutcome

        curve = self.world.run(request.arm, request.budget, np.random.default_rng(request.seed))
        return RunOutcome(curve, "budget reached (synthetic run)", str(request.run_dir))
