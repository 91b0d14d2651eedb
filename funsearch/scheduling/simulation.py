"""Simulated samplers and evaluators on a simulated clock, to study the scheduler.

No model and no sandbox: each sampler (a model size) has a known latency and
a known chance that a sample improves the search, and evaluations take a
known time on a fixed number of workers. The loop is the engine's loop in
miniature (fill while the scheduler has room and the evaluation slots are not
full; report prompts, samples, outcomes and the evaluations in flight), so a
policy or the balance controller can be measured over thousands of decisions
in a fraction of a second, with every number known in advance.

The search: the best score after k improvements is 1 - (1 - step)^k, so each
improvement adds less than the one before, and a sampler's chance of an
improvement falls as the search goes on, `success * exp(-k / depth)`: a
bigger model (larger depth) keeps finding improvements after a smaller one
has run dry, so the best size can change during a run.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections import deque

import numpy as np

from funsearch.config import SamplerConfig, SchedulerConfig
from funsearch.scheduling.budget import Cost
from funsearch.scheduling.scheduler import Emit, Scheduler


@dataclasses.dataclass(frozen=True)
class SimulatedSampler:
    """One model size.

    Attributes:
      latency: seconds one request takes (all its samples together).
      success: chance that one sample improves the search at its start.
      depth: improvements after which that chance has fallen by a factor e
        (inf: it never falls).
      valid: chance that a sample parses (the rest are rejected unevaluated).
      gpus: GPUs a request occupies: a sample costs gpus x latency / samples
        GPU-seconds.
      concurrency: requests served at once; more wait in line.
    """

    name: str
    latency: float
    success: float
    depth: float = math.inf
    samples_per_prompt: int = 1
    valid: float = 1.0
    gpus: float = 1.0
    concurrency: int = 8

    def config(self) -> SamplerConfig:
        return SamplerConfig(name=self.name, samples_per_prompt=self.samples_per_prompt,
                             gpus_per_replica=self.gpus, max_concurrency=self.concurrency)

    def chance(self, improvements: int) -> float:
        return self.success * math.exp(-improvements / self.depth)


@dataclasses.dataclass
class Trace:
    """What a simulated run did.

    Attributes:
      curve: (cost spent, best score) after each improvement, from (0, 0).
      spent: cost spent in the scheduler's unit; wall: simulated seconds.
      utilization: busy evaluator time / (workers x wall) over the measured
        span (after `warmup` seconds).
      max_evaluations, max_prompts: the most evaluations (queued or running)
        and prompts in flight at any time.
    """

    curve: list[tuple[float, float]]
    improvements: int
    spent: float
    wall: float
    utilization: float
    max_evaluations: int
    max_prompts: int
    scheduler: Scheduler

    def best_at(self, budget: float) -> float:
        """The best score once `budget` had been spent."""
        best = 0.0
        for spent, score in self.curve:
            if spent > budget:
                break
            best = score
        return best


class Simulation:
    """The engine's loop against simulated samplers and evaluators."""

    def __init__(self, samplers: list[SimulatedSampler], config: SchedulerConfig,
                 workers: int = 4, evaluation_seconds: float = 1.0, step: float = 0.05,
                 seed: int = 0, emit: Emit | None = None):
        self._samplers = {sampler.name: sampler for sampler in samplers}
        self._workers = workers
        self._evaluation_seconds = evaluation_seconds
        self._step = step
        self._rng = np.random.default_rng(seed)
        self.now = 0.0
        self.scheduler = Scheduler(config, [s.config() for s in samplers], seed=seed,
                                   workers=workers, slots=2 * workers,  # as the backends have it
                                   emit=emit, clock=lambda: self.now)
        self._events: list[tuple[float, int, str, tuple]] = []
        self._order = itertools.count()
        self._serving = dict.fromkeys(self._samplers, 0)
        self._lines: dict[str, deque] = {name: deque() for name in self._samplers}
        self._prompts = dict.fromkeys(self._samplers, 0)  # in flight, as the engine counts
        self._evaluating = 0  # evaluations sent and not returned
        self._running = 0
        self._queue: deque = deque()
        self._next_sample = 0
        self._improvements = 0

    def run(self, budget: float | None = None, until: float | None = None,
            warmup: float = 0.0, poll: float = 0.2) -> Trace:
        """Runs until `budget` (in the scheduler's cost unit) is spent or the
        clock reaches `until`, then lets the work in flight finish. Like the
        engine, the loop wakes at least every `poll` seconds."""
        curve = [(0.0, 0.0)]
        self._push(poll, "poll", ())
        busy = 0.0
        max_evaluations = max_prompts = 0
        while True:
            spent = self._spent()
            done = ((budget is not None and spent >= budget)
                    or (until is not None and self.now >= until))
            if not done:
                self.scheduler.tick(self._evaluating)
                self._fill()
            max_evaluations = max(max_evaluations, self._evaluating)
            max_prompts = max(max_prompts, sum(self._prompts.values()))
            if not self._events:
                break
            time, _, kind, payload = heapq.heappop(self._events)
            if self.now >= warmup and (until is None or self.now < until):
                span_end = time if until is None else min(time, until)
                busy += (span_end - self.now) * self._running
            self.now = time
            if kind == "poll":
                if not done:
                    self._push(self.now + poll, "poll", ())
            elif kind == "request":
                self._on_request(*payload)
            else:
                if self._on_evaluation(*payload):
                    curve.append((self._spent(), self.best_score))
        self.scheduler.finish()
        span = (self.now if until is None else until) - warmup
        return Trace(curve, self._improvements, self._spent(), self.now,
                     busy / (self._workers * span) if span > 0 else 0.0,
                     max_evaluations, max_prompts, self.scheduler)

    @property
    def best_score(self) -> float:
        return 1.0 - (1.0 - self._step) ** self._improvements

    def _spent(self) -> float:
        return sum(ledger.cost for ledger in self.scheduler.ledger.values())

    def _fill(self) -> None:
        while True:
            name = self.scheduler.pick(self._prompts, self._evaluating)
            if name is None:
                return
            self._prompts[name] += 1
            self._lines[name].append(self.now)
            self._serve(name)

    def _serve(self, name: str) -> None:
        sampler = self._samplers[name]
        while self._lines[name] and self._serving[name] < sampler.concurrency:
            sent = self._lines[name].popleft()
            self._serving[name] += 1
            latency = sampler.latency * self._rng.uniform(0.8, 1.2)
            self._push(self.now + latency, "request", (name, sent, latency))

    def _on_request(self, name: str, sent: float, latency: float) -> None:
        sampler = self._samplers[name]
        self._serving[name] -= 1
        self._prompts[name] -= 1
        n = sampler.samples_per_prompt
        cost = Cost(seconds=latency / n, gpu_seconds=sampler.gpus * latency / n)
        started = 0
        for _ in range(n):
            sample_id, self._next_sample = self._next_sample, self._next_sample + 1
            self.scheduler.on_sample(sample_id, name, cost)
            if self._rng.random() >= sampler.valid:
                self.scheduler.observe(sample_id, improved=False)
                continue
            started += 1
            self._evaluating += 1
            self._queue.append((sample_id, name))
        self.scheduler.on_prompt(name, self.now - sent, started)
        self._serve(name)
        self._start_evaluations()

    def _start_evaluations(self) -> None:
        while self._queue and self._running < self._workers:
            sample_id, name = self._queue.popleft()
            self._running += 1
            seconds = self._evaluation_seconds * self._rng.uniform(0.8, 1.2)
            self._push(self.now + seconds, "evaluation", (sample_id, name, seconds))

    def _on_evaluation(self, sample_id: int, name: str, seconds: float) -> bool:
        self._running -= 1
        self._evaluating -= 1
        improved = bool(self._rng.random() < self._samplers[name].chance(self._improvements))
        self._improvements += improved
        self.scheduler.observe(sample_id, improved=improved, evaluation_seconds=seconds)
        self._start_evaluations()
        return improved

    def _push(self, time: float, kind: str, payload: tuple) -> None:
        heapq.heappush(self._events, (time, next(self._order), kind, payload))
