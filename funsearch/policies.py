"""Which sampler serves the next prompt: fixed weights, round robin, or a bandit.

The bandits treat each sampler as an arm whose pulls cost something (see
budget.in_unit) and sometimes improve the search. For a fixed budget the best
arm is the one with the most improvements per unit of cost, so both bandits
rank arms by (improvement rate) / (mean cost):

- `ucb`: the improvement rate's KL upper confidence bound (tight for the rare
  successes of a search: a Bernoulli bound, not Hoeffding's);
- `thompson`: a draw from the rate's Beta posterior.

The search moves from easy improvements to hard ones, and which sampler is
best can change with it, so the statistics are discounted: each observation
(of any arm) multiplies every arm's counts by `discount`. An arm that is not
pulled for a while loses weight, its uncertainty grows, and it is tried
again. No arm is judged before it has `min_pulls` observations.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from funsearch.budget import FREE_COST_FRACTION


@dataclasses.dataclass
class Arm:
    """One sampler's statistics.

    Attributes:
      n, reward, cost: discounted sums of observations, rewards and costs.
      pulls: observations (samples whose outcome is known), not discounted.
      picks: prompts sent to this sampler.
      index: the value the policy gave it at its last decision (for the log).
    """

    name: str
    weight: float = 1.0
    n: float = 0.0
    reward: float = 0.0
    cost: float = 0.0
    pulls: int = 0
    picks: int = 0
    index: float | None = None

    @property
    def rate(self) -> float:
        """Discounted improvements per observation."""
        return self.reward / self.n if self.n > 0 else 0.0

    @property
    def mean_cost(self) -> float:
        return self.cost / self.n if self.n > 0 else 0.0

    def estimates(self, cost_floor: float) -> dict[str, Any]:
        cost = max(self.mean_cost, cost_floor)
        return {"picks": self.picks, "pulls": self.pulls, "n": round(self.n, 2),
                "rate": round(self.rate, 5), "cost": round(self.mean_cost, 6),
                "efficiency": round(self.rate / cost, 6) if cost > 0 else None,
                "index": None if self.index is None else round(self.index, 6)}


class Arms:
    """The arms and their discounted statistics (shared by all policies)."""

    def __init__(self, names: list[str], weights: dict[str, float], discount: float):
        self.arms = [Arm(name, weights.get(name, 1.0)) for name in names]
        self._by_name = {arm.name: arm for arm in self.arms}
        self._discount = discount

    def __getitem__(self, name: str) -> Arm:
        return self._by_name[name]

    def observe(self, name: str, reward: float, cost: float) -> None:
        for arm in self.arms:
            arm.n *= self._discount
            arm.reward *= self._discount
            arm.cost *= self._discount
        arm = self._by_name[name]
        arm.n += 1.0
        arm.reward += reward
        arm.cost += cost
        arm.pulls += 1

    def cost_floor(self) -> float:
        """The least mean cost an arm is credited with (see FREE_COST_FRACTION)."""
        dearest = max((arm.mean_cost for arm in self.arms), default=0.0)
        return max(dearest * FREE_COST_FRACTION, 1e-12)

    def total(self) -> float:
        return sum(arm.n for arm in self.arms)


class Policy:
    """Chooses an arm among the available ones; returns (arm, reason)."""

    def __init__(self, arms: Arms, rng: np.random.Generator, min_pulls: int = 0,
                 exploration: float = 1.0):
        self.arms = arms
        self._rng = rng
        self._min_pulls = min_pulls
        self._exploration = exploration

    def choose(self, available: list[Arm]) -> tuple[Arm | None, str]:
        raise NotImplementedError


class Fixed(Policy):
    """Each prompt to a sampler drawn with the configured weights."""

    def choose(self, available: list[Arm]) -> tuple[Arm | None, str]:
        weights = np.array([arm.weight for arm in available], float)
        if not available or weights.sum() <= 0:
            return None, "no weighted sampler has room"
        index = self._rng.choice(len(available), p=weights / weights.sum())
        return available[index], "weights"


class RoundRobin(Policy):
    """Prompts to the samplers in turn (skipping a sampler that has no room)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._next = 0

    def choose(self, available: list[Arm]) -> tuple[Arm | None, str]:
        order = self.arms.arms
        for step in range(len(order)):
            arm = order[(self._next + step) % len(order)]
            if arm in available:
                self._next = (order.index(arm) + 1) % len(order)
                return arm, "turn"
        return None, "no sampler has room"


class Bandit(Policy):
    """What UCB and Thompson share: the minimum pulls, then the best index."""

    def choose(self, available: list[Arm]) -> tuple[Arm | None, str]:
        if not available:
            return None, "no sampler has room"
        unjudged = [arm for arm in available if arm.pulls < self._min_pulls]
        if unjudged:
            # Fewest prompts first: the samples of earlier prompts may still be in flight.
            return min(unjudged, key=lambda arm: arm.picks), "minimum pulls"
        floor = self.arms.cost_floor()
        for arm in available:
            arm.index = self._rate_index(arm) / max(arm.mean_cost, floor)
        return max(available, key=lambda arm: arm.index), "index"

    def _rate_index(self, arm: Arm) -> float:
        raise NotImplementedError


class UCB(Bandit):
    """Optimism: the upper KL confidence bound of the improvement rate."""

    def _rate_index(self, arm: Arm) -> float:
        level = self._exploration * math.log(max(math.e, self.arms.total()))
        return kl_upper_bound(arm.rate, arm.n, level)


class Thompson(Bandit):
    """Sampling: a draw from Beta(1/2 + improvements, 1/2 + failures)."""

    def _rate_index(self, arm: Arm) -> float:
        successes = min(arm.reward, arm.n)
        return float(self._rng.beta(0.5 + successes, 0.5 + arm.n - successes))


POLICIES: dict[str, type[Policy]] = {
    "fixed": Fixed, "round_robin": RoundRobin, "ucb": UCB, "thompson": Thompson}


def kl_upper_bound(rate: float, n: float, level: float) -> float:
    """The largest q >= rate with n * KL(rate || q) <= level (Bernoulli KL)."""
    if n <= 0:
        return 1.0
    rate = min(max(rate, 0.0), 1.0)
    low, high = rate, 1.0
    for _ in range(40):  # bisection to ~1e-12
        middle = (low + high) / 2
        if n * _bernoulli_kl(rate, middle) > level:
            high = middle
        else:
            low = middle
    return low


def _bernoulli_kl(p: float, q: float) -> float:
    eps = 1e-15
    q = min(max(q, eps), 1 - eps)
    result = 0.0
    if p > 0:
        result += p * math.log(p / q)
    if p < 1:
        result += (1 - p) * math.log((1 - p) / (1 - q))
    return result
