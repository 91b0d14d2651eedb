"""Which sampler serves the next prompt, and when the budget is spent.

The arithmetic here is pure: the engine tells the scheduler what each sample
cost and whether it improved anything; the scheduler answers with the next
sampler's name and whether the run should stop.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from funsearch.config import Budget, SamplerConfig, SchedulerConfig


@dataclasses.dataclass
class Spent:
    """What the run has used so far."""

    samples: int = 0
    wall: float = 0.0
    gpu_seconds: float = 0.0
    usd: float = 0.0


def exhausted(budget: Budget, spent: Spent, best_score: float | None) -> str | None:
    """The reason the run must stop, or None while budget is left."""
    if budget.samples is not None and spent.samples >= budget.samples:
        return f"sample budget reached ({spent.samples} samples)"
    if budget.wall is not None and spent.wall >= budget.wall:
        return f"wall-time budget reached ({spent.wall:.0f} s)"
    if budget.gpu_hours is not None and spent.gpu_seconds >= budget.gpu_hours * 3600:
        return f"GPU budget reached ({spent.gpu_seconds / 3600:.2f} GPU-hours)"
    if budget.usd is not None and spent.usd >= budget.usd:
        return f"cost budget reached (${spent.usd:.2f})"
    if (budget.target_score is not None and best_score is not None
            and best_score >= budget.target_score):
        return f"target score reached ({best_score:g} >= {budget.target_score:g})"
    return None


class Scheduler:
    """Chooses the sampler for each prompt: `round_robin` or `fixed` weights."""

    def __init__(self, config: SchedulerConfig, samplers: list[SamplerConfig], seed: int = 0):
        self._names = [sampler.name for sampler in samplers]
        self._policy = config.policy
        self._rng = np.random.default_rng(seed)
        self._cycle = itertools.cycle(self._names)
        unknown = set(config.weights) - set(self._names)
        if unknown:
            raise ValueError(f"scheduler.weights: unknown samplers {sorted(unknown)}")
        weights = np.array([config.weights.get(name, 1.0) for name in self._names], float)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("scheduler.weights: need non-negative weights, not all zero")
        self._probabilities = weights / weights.sum()

    def pick(self) -> str:
        if self._policy == "fixed":
            return str(self._rng.choice(self._names, p=self._probabilities))
        return next(self._cycle)

    def observe(self, sampler: str, improved: bool, cost: float) -> None:
        """Feedback after an evaluation; the adaptive policies learn from it."""
