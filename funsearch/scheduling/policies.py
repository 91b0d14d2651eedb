"""Which sampler serves the next prompt: fixed weights, round robin, or a bandit.

The bandits treat each sampler as an arm whose pulls cost something (see
budget.in_unit) and sometimes improve the search. For a fixed budget the best
arm is the one with the most improvements per unit of cost, so both bandits
rank arms by (improvement rate) / (mean cost):

- `ucb`: the improvement rate's KL upper confidence bound at level
  exploration x ln(observations) (tight for the rare successes of a search:
  a Bernoulli bound, not Hoeffding's);
- `thompson`: a draw from the rate's Beta posterior, widened or narrowed by
  `exploration`.

The search moves from easy improvements to hard ones, and which sampler is
best can change with it, so the statistics are discounted by budget spent:
an observation that cost c multiplies every arm's counts by
discount^(c / mean cost), so they span about 1 / (1 - discount) samples'
worth of budget whichever sampler spent it (a per-observation discount would
let a cheap sampler's many samples flush the memory, and cheap samplers
would be explored for ever). An arm that is not pulled loses weight, its
uncertainty grows, and it is tried again. No arm is judged before it has
`min_pulls` observations.

The defaults (discount 0.999, exploration 0.25, min_pulls 20) come from the
simulated study in experiments/scheduler_study.py.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from funsearch.scheduling.budget import FREE_COST_FRACTION


@dataclasses.dataclass
class Arm:
    """One sampler's statistics.

    Attributes:
      n, reward, cost: discounted sums of observations, rewards and costs.
      pulls: observations (samples whose outcome is known), not discounted.
      picks: prompts sent to this sampler.
      in_flight: its prompts in flight now (the scheduler sets it).
      index: the value the policy gave it at its last decision (for the log).
    """

    name: str
    weight: float = 1.0
    batch: int = 1  # samples per prompt
    in_flight: int = 0
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

    def __init__(self, batches: dict[str, int], weights: dict[str, float], discount: float):
        self.arms = [Arm(name, weights.get(name, 1.0), batch) for name, batch in batches.items()]
        self._by_name = {arm.name: arm for arm in self.arms}
        self._discount = discount
        self.version = 0  # observations so far: what a cached index depends on
        self._observations = 0
        self._costs = 0.0

    def __getitem__(self, name: str) -> Arm:
        return self._by_name[name]

    def observe(self, name: str, reward: float, cost: float) -> None:
        self._observations += 1
        self._costs += cost
        mean = self._costs / self._observations
        factor = self._discount ** (cost / mean) if mean > 0 else self._discount
        for arm in self.arms:
            arm.n *= factor
            arm.reward *= factor
            arm.cost *= factor
        arm = self._by_name[name]
        arm.n += 1.0
        arm.reward += reward
        arm.cost += cost
        arm.pulls += 1
        self.version += 1

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
        self._cached: tuple[int, Arm] | None = None

    def choose(self, available: list[Arm]) -> tuple[Arm | None, str]:
        raise NotImplementedError


class Fixed(Policy):
    """Each prompt to a sampler drawn with the configured weights."""

    def choose(self, available: list[Arm]) -> tuple[Arm | None, str]:
        total = sum(arm.weight for arm in available)
        if total <= 0:
            return None, "no weighted sampler has room"
        draw = self._rng.random() * total
        for arm in available:
            draw -= arm.weight
            if draw < 0 and arm.weight > 0:
                return arm, "weights"
        return next(arm for arm in reversed(available) if arm.weight > 0), "weights"


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
    """What UCB and Thompson share: the minimum pulls, then the best index.

    A sampler with fewer than `min_pulls` outcomes first gets prompts for that
    many samples (fewest prompts first), and no more until they are back: a
    slow sampler's first outcomes take long, and fast samplers must not spend
    the budget meanwhile. The judged samplers (`min_pulls` outcomes) are
    ranked by index, and a prompt goes to the best one or nowhere: while it
    has no room the prompt waits, because a worse sampler would spend the
    budget less well than waiting does.
    """

    def choose(self, available: list[Arm]) -> tuple[Arm | None, str]:
        short = self._min_pulls
        explore = [arm for arm in available if arm.pulls < short
                   and (arm.picks * arm.batch < short or arm.in_flight == 0)]
        if explore:
            return min(explore, key=lambda arm: arm.picks), "minimum pulls"
        judged = [arm for arm in self.arms.arms if arm.pulls >= short]
        if not judged:
            return None, "waiting for first outcomes"
        best = self._best(judged)
        if best not in available:
            return None, f"waiting for room at {best.name}"
        return best, "index"

    def _best(self, judged: list[Arm]) -> Arm:
        floor = self.arms.cost_floor()
        for arm in judged:
            arm.index = self._rate_index(arm) / max(arm.mean_cost, floor)
        return max(judged, key=lambda arm: arm.index)

    def _rate_index(self, arm: Arm) -> float:
        raise NotImplementedError


class UCB(Bandit):
    """Optimism: the upper KL confidence bound of the improvement rate."""

    def _best(self, judged: list[Arm]) -> Arm:
        # The same until the next observation: the engine asks far more often.
        if self._cached is None or self._cached[0] != self.arms.version:
            self._cached = (self.arms.version, super()._best(judged))
        return self._cached[1]

    def _rate_index(self, arm: Arm) -> float:
        level = self._exploration * math.log(max(math.e, self.arms.total()))
        return kl_upper_bound(arm.rate, arm.n, level)


class Thompson(Bandit):
    """Sampling: a draw from the rate's Beta(1/2 + improvements, 1/2 + failures)
    posterior, its counts divided by `exploration` (a larger value, a wider
    posterior; below 1, narrower than the data alone would make it)."""

    def _rate_index(self, arm: Arm) -> float:
        scale = 1.0 / max(self._exploration, 1e-9)
        successes = min(arm.reward, arm.n) * scale
        failures = (arm.n - min(arm.reward, arm.n)) * scale
        return float(self._rng.beta(0.5 + successes, 0.5 + failures))


POLICIES: dict[str, type[Policy]] = {
    "fixed": Fixed, "round_robin": RoundRobin, "ucb": UCB, "thompson": Thompson}


def kl_upper_bound(rate: float, n: float, level: float) -> float:
    """The largest q >= rate with n * KL(rate || q) <= level (Bernoulli KL)."""
    if n <= 0:
        return 1.0
    p = min(max(rate, 0.0), 1.0)
    if p == 0.0:  # KL(0 || q) = -log(1 - q): solved exactly
        return -math.expm1(-level / n)
    if p == 1.0:
        return 1.0
    budget = level / n
    own = p * math.log(p) + (1 - p) * math.log(1 - p)  # the q-free part of the KL
    low, high = p, 1.0
    for _ in range(24):  # bisection to ~1e-7, inlined: the engine asks often
        q = (low + high) / 2
        if own - p * math.log(q) - (1 - p) * math.log(1 - q) > budget:
            high = q
        else:
            low = q
    return low
