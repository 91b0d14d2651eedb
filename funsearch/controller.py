"""Proposals against evaluations: how many prompts each sampler may have in flight.

Too few prompts in flight and the evaluators wait for proposals (a slow, big
model); too many and proposals pile up as evaluations waiting in memory (a
fast proposer), each made from an older state of the database. The
controller aims at evaluators busy `target_utilization` of the time with a
short queue, by Little's law plus a correction from what it measures:

  evaluations needed per second  R = gain * workers / evaluation_seconds
  prompts sampler s needs        k_s = ceil(R * latency_s / evaluations_per_prompt_s)

k_s is what sampler s would need in flight to keep the evaluators busy on its
own, so whichever sampler the policy prefers can do that; the engine stops
sending prompts while the evaluation slots are full, which bounds the queue
when several samplers are in flight at once. `gain` starts at 1 and moves
when the measurements disagree with the model: up while the evaluators idle
with nothing queued, down while a long queue waits. k_s is capped by the
sampler's concurrency (replicas x max_concurrency: more would only wait
inside the sampler) and by `scheduler.max_in_flight`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from funsearch.config import SamplerConfig

_ALPHA = 0.2  # weight of a new observation in the moving averages
_GAIN_RANGE = (0.5, 8.0)
_MIN_YIELD = 0.1  # a sampler whose samples are all rejected still gets a bounded k


@dataclasses.dataclass(frozen=True)
class Setting:
    """The controller's answer: prompts in flight per sampler, and in total."""

    limits: dict[str, int]
    total: int


class Controller:
    """Sets prompts in flight per sampler from the evaluators' load (see module doc).

    Times are passed in (`now`), so the same arithmetic runs on the wall clock
    in the engine and on a simulated clock in tests and studies.
    """

    def __init__(self, samplers: list[SamplerConfig], workers: int, max_in_flight: int,
                 target_utilization: float = 0.9, adaptive: bool = True,
                 period: float = 1.0, now: float = 0.0):
        self.workers = max(1, workers)
        self._max = max_in_flight
        self._target = target_utilization
        self._adaptive = adaptive
        self._min_period = period
        self._capacity = {s.name: min(max_in_flight, s.replicas * s.max_concurrency)
                          for s in samplers}
        if adaptive:
            start = {name: min(cap, self.workers) for name, cap in self._capacity.items()}
        else:  # the fixed bound of earlier versions: max_in_flight prompts, any sampler
            start = {name: max_in_flight for name in self._capacity}
        self.setting = Setting(start, max_in_flight)
        self.gain = 1.0
        self.evaluation_seconds: float | None = None
        self.latency: dict[str, float] = {}
        self.evaluations_per_prompt: dict[str, float] = {}
        self.utilization: float | None = None  # measured over the last period
        self.queue: float | None = None  # mean evaluations waiting over the last period
        self._count = 0  # evaluations in flight at the last tick
        self._last = now
        self._period_start = now
        self._busy = 0.0  # integral of busy workers / workers over the period
        self._waiting = 0.0  # integral of evaluations waiting over the period

    def on_prompt(self, sampler: str, latency: float, evaluations: int) -> None:
        """A prompt came back after `latency` seconds and started `evaluations`."""
        self.latency[sampler] = _average(self.latency.get(sampler), latency)
        self.evaluations_per_prompt[sampler] = _average(
            self.evaluations_per_prompt.get(sampler), float(evaluations))

    def on_evaluation(self, seconds: float) -> None:
        """An evaluation finished after `seconds` in the sandbox."""
        self.evaluation_seconds = _average(self.evaluation_seconds, seconds)

    def tick(self, now: float, evaluations_in_flight: int) -> bool:
        """Integrates the load since the last tick; at the end of a period sets
        new limits. True when the setting changed."""
        elapsed = max(0.0, now - self._last)
        self._busy += elapsed * min(self._count, self.workers) / self.workers
        self._waiting += elapsed * max(0, self._count - self.workers)
        self._count, self._last = evaluations_in_flight, now
        period = now - self._period_start
        if period < self._period():
            return False
        self.utilization = self._busy / period
        self.queue = self._waiting / period
        self._busy = self._waiting = 0.0
        self._period_start = now
        if not self._adaptive or self.evaluation_seconds is None:
            return False
        return self._update()

    def estimates(self) -> dict[str, Any]:
        """What the setting was computed from (for the event log)."""
        return {"limits": dict(self.setting.limits), "gain": round(self.gain, 3),
                "workers": self.workers, "utilization": _round(self.utilization),
                "queue": _round(self.queue), "evaluation_seconds": _round(self.evaluation_seconds),
                "latency": {k: round(v, 4) for k, v in self.latency.items()},
                "evaluations_per_prompt": {
                    k: round(v, 3) for k, v in self.evaluations_per_prompt.items()}}

    def _period(self) -> float:
        # At least two evaluations per worker per period, so utilization is measured, not guessed.
        return max(self._min_period, 2 * (self.evaluation_seconds or 0.0))

    def _update(self) -> bool:
        limits = self.setting.limits
        starving = self.utilization < self._target and self.queue < 0.5
        if starving and any(limits[name] < cap for name, cap in self._capacity.items()):
            self.gain = min(self.gain * 1.25, _GAIN_RANGE[1])
        elif self.queue > 0.75 * self.workers:
            self.gain = max(self.gain * 0.8, _GAIN_RANGE[0])
        needed = self.gain * self.workers / max(self.evaluation_seconds, 1e-9)
        new = dict(limits)
        for name, cap in self._capacity.items():
            if name in self.latency:
                per_prompt = max(self.evaluations_per_prompt[name], _MIN_YIELD)
                wanted = math.ceil(needed * self.latency[name] / per_prompt)
                new[name] = max(1, min(cap, wanted))
        if new == limits:
            return False
        self.setting = Setting(new, self._max)
        return True


def _average(old: float | None, new: float) -> float:
    return new if old is None else (1 - _ALPHA) * old + _ALPHA * new


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
