"""Which sampler serves the next prompt, how many prompts are in flight, and
what every sampler has cost: the engine's one counterpart for spending a budget.

The engine reports what happens (a prompt sent and returned, what each sample
cost, whether its program improved on its parents, how long evaluations took,
how many are in flight); the scheduler answers with the next sampler, or None
while no sampler has room. The arithmetic is pure and the clock is passed in,
so tests and studies drive it with simulated samplers on a simulated clock.

An improvement is a sample whose program scores higher than the best parent
in its prompt (reward 1, else 0; rejected, failed and duplicate samples are
0). Its cost is in the unit `budget.cost_unit` chooses. Decisions and the
estimates behind them go to the event log as "scheduler" events: one per
`log_decisions` decisions or `log_period` seconds, one at every change of
the in-flight limits, and the per-sampler ledger at the end.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from funsearch.config import SamplerConfig, SchedulerConfig
from funsearch.scheduling.budget import Cost, Spent, cost_unit, exhausted, in_unit
from funsearch.scheduling.controller import Controller
from funsearch.scheduling.policies import POLICIES, Arms
from funsearch.scheduling.request_size import RequestSizer

__all__ = ["Ledger", "Outcome", "Scheduler", "Spent", "exhausted"]

Emit = Callable[..., Any]  # (action=..., **fields): a "scheduler" event, or a test's list

# Backends for which n samples of one prompt cost less than n prompts.
BATCHED_BACKENDS = ("openai", "vllm")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the scheduler learns from one sample."""

    sampler: str
    cost: Cost
    improved: bool  # its program beat its prompt's best parent
    evaluation_seconds: float  # 0 when no evaluation ran (rejected, duplicate)
    index: int = 0  # its place in its request
    request: int = 1  # samples in its request


@dataclasses.dataclass
class Ledger:
    """What one sampler has cost and brought so far (samples with a known outcome)."""

    prompts: int = 0
    samples: int = 0
    improvements: int = 0
    seconds: float = 0.0
    gpu_seconds: float = 0.0
    tokens: int = 0
    usd: float = 0.0
    evaluation_seconds: float = 0.0
    cost: float = 0.0  # in the bandits' unit

    def add(self, cost: Cost, evaluation_seconds: float, cost_in_unit: float,
            improved: bool) -> None:
        self.samples += 1
        self.improvements += improved
        self.seconds += cost.seconds
        self.gpu_seconds += cost.gpu_seconds
        self.tokens += cost.tokens
        self.usd += cost.usd
        self.evaluation_seconds += evaluation_seconds
        self.cost += cost_in_unit


class Scheduler:
    """Policy, balance controller and cost ledger behind one interface."""

    def __init__(self, config: SchedulerConfig, samplers: list[SamplerConfig], seed: int = 0,
                 workers: int = 1, slots: int = 2, emit: Emit | None = None,
                 clock: Callable[[], float] = time.monotonic):
        names = [sampler.name for sampler in samplers]
        unknown = set(config.weights) - set(names)
        if unknown:
            raise ValueError(f"scheduler.weights: unknown samplers {sorted(unknown)}")
        self.config = config
        self.unit = cost_unit(config, samplers)
        self._arms = Arms({s.name: s.samples_per_prompt for s in samplers}, config.weights,
                          config.discount)
        self._policy = POLICIES[config.policy](
            self._arms, np.random.default_rng(seed), min_pulls=config.min_pulls,
            exploration=config.exploration)
        self._clock = clock
        self._emit = emit or (lambda **fields: None)
        self.controller = Controller(samplers, workers, slots, config.max_in_flight,
                                     config.target_utilization, adaptive=config.balance,
                                     now=clock())
        self.ledger = {name: Ledger() for name in names}
        rng = np.random.default_rng([seed, 1])
        self.sizers = {s.name: RequestSizer(s.samples_per_prompt, rng) for s in samplers
                       if config.adapt_samples_per_prompt and s.backend in BATCHED_BACKENDS
                       and s.samples_per_prompt > 1}
        self._sizes = {s.name: s.samples_per_prompt for s in samplers}
        self._open: dict[int, tuple] = {}  # sample id -> sampler, cost, index, request
        self.decisions = 0
        self._since: Counter[str] = Counter()
        self._last_decision: dict[str, str] = {}
        self._last_emit = clock()
        self._emit(action="controller", **self.controller.estimates())

    # What the engine asks.

    def pick(self, in_flight: Mapping[str, int], evaluations: int = 0) -> str | None:
        """The sampler for the next prompt, or None while none may take one.

        `in_flight`: prompts being sampled per sampler; `evaluations`: programs
        sent to evaluation and not back."""
        setting = self.controller.setting
        if sum(in_flight.values()) >= setting.total:
            return None
        allowed = self.controller.allowed(evaluations, in_flight)
        for arm in self._arms.arms:
            arm.in_flight = in_flight.get(arm.name, 0)
        available = [arm for arm in self._arms.arms
                     if arm.in_flight < setting.limits[arm.name] and arm.name in allowed]
        arm, reason = self._policy.choose(available)
        if arm is None:
            return None
        arm.picks += 1
        self.controller.sent(arm.name)
        self.ledger[arm.name].prompts += 1
        self.decisions += 1
        self._since[arm.name] += 1
        self._last_decision = {"sampler": arm.name, "reason": reason}
        if (sum(self._since.values()) >= self.config.log_decisions
                or self._clock() - self._last_emit >= self.config.log_period):
            self._emit_decisions()
        return arm.name

    def request_size(self, sampler: str) -> int:
        """Samples to ask of the sampler's next prompt."""
        sizer = self.sizers.get(sampler)
        if sizer is None:
            return self._sizes[sampler]
        chosen = sizer.chosen
        size = sizer.size()
        if sizer.chosen != chosen:
            self._emit(action="samples_per_prompt", sampler=sampler, **sizer.estimates())
        return size

    # What the engine tells.

    def tick(self, evaluations_in_flight: int) -> None:
        """The evaluations in flight now (sent and not returned)."""
        if self.controller.tick(self._clock(), evaluations_in_flight):
            self._emit(action="controller", **self.controller.estimates())

    def on_prompt(self, sampler: str, latency: float, evaluations: int,
                  failed: bool = False) -> None:
        """A prompt returned after `latency` seconds and started `evaluations`;
        `failed`: the sampler raised instead of returning samples, which the
        bandits count as one fruitless pull (a broken sampler is not the best)."""
        self.controller.on_prompt(sampler, latency, evaluations)
        if failed:
            self._arms.observe(sampler, 0.0, in_unit(self.unit, Cost(seconds=latency), 0.0))

    def on_sample(self, sample_id: int, sampler: str, cost: Cost, index: int = 0,
                  request: int = 1) -> None:
        """A sample arrived, the `index`-th of a request of `request`; its
        reward comes with `observe`."""
        self._open[sample_id] = (sampler, cost, index, request)

    def observe(self, sample_id: int, improved: bool, evaluation_seconds: float = 0.0) -> None:
        """The outcome of a sample: did its program improve on its prompt's best
        parent, and how long did its evaluation take (0 if none ran)."""
        opened = self._open.pop(sample_id, None)
        if opened is None:  # a sample of an earlier session of a resumed run
            return
        sampler, cost, index, request = opened
        self.learn(Outcome(sampler, cost, improved, evaluation_seconds, index, request))

    def learn(self, outcome: Outcome) -> None:
        """One sample's outcome for the policy, the controller and the ledger;
        also how a resumed run gets back what its earlier sessions learnt."""
        if outcome.sampler not in self.ledger:  # a sampler the config no longer has
            return
        if outcome.evaluation_seconds > 0:
            self.controller.on_evaluation(outcome.evaluation_seconds)
        amount = in_unit(self.unit, outcome.cost, outcome.evaluation_seconds)
        self._arms.observe(outcome.sampler, float(outcome.improved), amount)
        self.ledger[outcome.sampler].add(outcome.cost, outcome.evaluation_seconds, amount,
                                         outcome.improved)
        sizer = self.sizers.get(outcome.sampler)
        if sizer is not None:
            if outcome.index == 0:  # once per request: what all its samples cost
                cost = outcome.cost
                proposal = cost.gpu_seconds or cost.cpu_seconds or cost.seconds
                sizer.on_request(outcome.request, proposal * outcome.request)
            sizer.on_sample(outcome.index, outcome.improved, outcome.evaluation_seconds)

    def finish(self) -> None:
        """Logs the decisions not yet logged and every sampler's ledger."""
        if self._since:
            self._emit_decisions()
        self._emit(action="ledger", unit=self.unit, samplers={
            name: _rounded(dataclasses.asdict(ledger)) for name, ledger in self.ledger.items()})

    # What the log shows.

    def shares(self) -> dict[str, float]:
        """Each sampler's share of the cost spent so far (in the bandits' unit)."""
        total = sum(ledger.cost for ledger in self.ledger.values())
        return {name: ledger.cost / total if total > 0 else 0.0
                for name, ledger in self.ledger.items()}

    def estimates(self) -> dict[str, dict[str, Any]]:
        floor = self._arms.cost_floor()
        shares = self.shares()
        return {arm.name: {**arm.estimates(floor), "share": round(shares[arm.name], 4)}
                for arm in self._arms.arms}

    def _emit_decisions(self) -> None:
        self._emit(action="decisions", policy=self.config.policy, unit=self.unit,
                   decisions=self.decisions, since=dict(self._since), last=self._last_decision,
                   samplers=self.estimates())
        self._since.clear()
        self._last_emit = self._clock()


def _rounded(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 6) if isinstance(value, float) else value
            for key, value in fields.items()}
