"""Proposals against evaluations: may a prompt go now, and how many may be out.

Too few prompts and the evaluators wait for proposals (a slow, big model);
too many and proposals pile up as evaluations waiting in memory (a fast
proposer), each made from an older state of the database. Deciding from the
evaluation queue alone fails for a slow model: what is sent now arrives a
latency later, so a full queue stops the sending, the pipe empties, and a
latency later the evaluators idle; waves of work and idleness follow.

So the controller counts what is on its way, as a stock is reordered with a
delivery delay ("order up to"): the work position is

  evaluations in flight + sum over samplers of prompts out x evaluations per prompt

and a prompt may go while the position is below

  target = slots + gain x rate x latency,   rate = workers / evaluation_seconds,

the evaluation slots (what the backend can usefully hold: inline a round of
evaluations running and one waiting, with Ray two calls of two rounds) plus
what the evaluators consume during one latency, where latency is the mean
of the samplers' latencies weighted by their recent share of the
evaluations sent (what sits in the pipe by Little's law). The target is the
same whichever sampler the policy chose, so the policy's shares hold (a
round robin stays a round robin). Each finished evaluation makes room for
the next prompt, so prompts go out as fast as the evaluators work, whatever
the latency; the position, and with it the queue and memory, never exceeds
the target by more than one prompt's samples. Latencies, evaluation times and
evaluations per prompt (samples neither rejected nor duplicates) are
measured moving averages. When the target grows (the first latency is
measured, a slower sampler is chosen) the pipe is filled at 1.5 x rate, not
at once, so that its prompts do not come back as one wave.

`gain` corrects the estimates from what is measured, once per period (long
enough to see the last change work: two evaluations per worker and the
slowest sampler's latency): up while the evaluators idle more than
`target_utilization` allows with less than a round of evaluations waiting,
down while they never idle and more than two rounds wait. A sampler's
limit of prompts out is target / evaluations per prompt, capped by its
concurrency (replicas x max_concurrency: more would only wait inside the
sampler) and by `scheduler.max_in_flight`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from funsearch.config import SamplerConfig

_ALPHA = 0.2  # weight of a new observation in the moving averages
_SHARE_ALPHA = 0.02  # ... and of a prompt in the samplers' shares (about the last 50)
_GAIN = (1.0, 0.5, 4.0)  # start, least, most
_MIN_YIELD = 0.1  # a sampler whose samples are all rejected still gets a bounded limit


@dataclasses.dataclass(frozen=True)
class Setting:
    """The controller's answer: prompts in flight per sampler, and in total."""

    limits: dict[str, int]
    total: int


class Controller:
    """Decides whether a prompt may go (see the module docstring).

    Times are passed in (`now`), so the same arithmetic runs on the wall clock
    in the engine and on a simulated clock in tests and studies. With
    `adaptive` off it keeps the fixed rule of earlier versions: up to
    max_in_flight prompts while fewer than `slots` evaluations are in flight.
    """

    def __init__(self, samplers: list[SamplerConfig], workers: int, slots: int,
                 max_in_flight: int, target_utilization: float = 0.9, adaptive: bool = True,
                 period: float = 1.0, now: float = 0.0):
        self.workers = max(1, workers)
        self.slots = max(1, slots)
        self.adaptive = adaptive
        self._max = max_in_flight
        self._target = target_utilization
        self._min_period = period
        self._batch = {s.name: s.samples_per_prompt for s in samplers}
        self._capacity = {s.name: min(max_in_flight, s.replicas * s.max_concurrency)
                          for s in samplers}
        self.setting = Setting(dict(self._capacity) if adaptive
                               else dict.fromkeys(self._capacity, max_in_flight), max_in_flight)
        self.gain = _GAIN[0]
        self.tokens = float(self.slots)  # evaluations' worth of prompts that may go at once
        self.evaluation_seconds: float | None = None
        self.latency: dict[str, float] = {}
        self.evaluations_per_prompt: dict[str, float] = {}
        self._shares = dict.fromkeys(self._batch, 0.0)  # recent evaluations sent, by sampler
        self.utilization: float | None = None  # measured over the last period
        self.queue: float | None = None  # mean evaluations waiting over the last period
        self._count = 0  # evaluations in flight at the last tick
        self._last = now
        self._period_start = now
        self._busy = 0.0  # integral of busy workers / workers over the period
        self._waiting = 0.0  # integral of evaluations waiting over the period

    def allowed(self, evaluations: int, prompts: Mapping[str, int]) -> list[str]:
        """The samplers a prompt may go to now, with `evaluations` in flight and
        `prompts` out per sampler (their limits are checked by the caller)."""
        if not self.adaptive:
            return list(self._batch) if evaluations < self.slots else []
        position = evaluations + sum(count * self._expected(name)
                                     for name, count in prompts.items())
        # Any room will do, so that a sampler of many samples per prompt is not
        # starved by one of few: the position overshoots by less than a prompt.
        # With nothing out something must go, whatever the estimates say.
        if position == 0 or (position < self.target() and self.tokens > 0):
            return list(self._batch)
        return []

    def sent(self, sampler: str) -> None:
        """A prompt to `sampler` went out."""
        for name in self._shares:
            self._shares[name] *= 1 - _SHARE_ALPHA
        self._shares[sampler] += _SHARE_ALPHA * self._expected(sampler)
        if self.adaptive:
            self.tokens -= self._expected(sampler)

    def target(self) -> float:
        """The work position up to which prompts may go."""
        return self.slots + self.rate() * self.mean_latency()

    def mean_latency(self) -> float:
        """Latency weighted by the samplers' recent shares of the evaluations sent."""
        weights = {name: share for name, share in self._shares.items() if name in self.latency}
        total = sum(weights.values())
        if total <= 0:
            return max(self.latency.values(), default=0.0)
        return sum(share * self.latency[name] for name, share in weights.items()) / total

    def rate(self) -> float:
        """Evaluations per second the evaluators are estimated to take, times gain."""
        if self.evaluation_seconds is None:
            return 0.0
        return self.gain * self.workers / max(self.evaluation_seconds, 1e-9)

    def on_prompt(self, sampler: str, latency: float, evaluations: int) -> None:
        """A prompt came back after `latency` seconds and started `evaluations`."""
        self.latency[sampler] = _average(self.latency.get(sampler), latency)
        self.evaluations_per_prompt[sampler] = _average(
            self.evaluations_per_prompt.get(sampler), float(evaluations))

    def on_evaluation(self, seconds: float) -> None:
        """An evaluation finished after `seconds` in the sandbox."""
        self.evaluation_seconds = _average(self.evaluation_seconds, seconds)

    def tick(self, now: float, evaluations_in_flight: int) -> bool:
        """Integrates the load since the last tick; at the end of a period
        corrects the gain and sets new limits. True when the limits changed."""
        elapsed = max(0.0, now - self._last)
        self._busy += elapsed * min(self._count, self.workers) / self.workers
        self._waiting += elapsed * max(0, self._count - self.workers)
        self._count, self._last = evaluations_in_flight, now
        if self.adaptive and self.evaluation_seconds is None:
            self.tokens = float(self.slots)  # no rate known yet: the target alone decides
        elif self.adaptive:
            self.tokens = min(self.tokens + elapsed * 1.5 * self.rate(), float(self.slots))
        period = now - self._period_start
        if period < self._period():
            return False
        self.utilization = self._busy / period
        self.queue = self._waiting / period
        self._busy = self._waiting = 0.0
        self._period_start = now
        if not self.adaptive or self.evaluation_seconds is None:
            return False
        if self.utilization < self._target and self.queue < self.workers:
            self.gain = min(self.gain * 1.1, _GAIN[2])
        elif self.utilization > 0.98 and self.queue > 2 * self.workers:
            self.gain = max(self.gain / 1.1, _GAIN[1])
        limits = {name: max(1, min(cap, math.ceil(self.target() / self._expected(name))))
                  for name, cap in self._capacity.items()}
        if limits == self.setting.limits:
            return False
        self.setting = Setting(limits, self._max)
        return True

    def estimates(self) -> dict[str, Any]:
        """What the setting was computed from (for the event log)."""
        return {"limits": dict(self.setting.limits), "gain": round(self.gain, 3),
                "rate": round(self.rate(), 4), "target": round(self.target(), 2),
                "workers": self.workers, "slots": self.slots,
                "utilization": _round(self.utilization), "queue": _round(self.queue),
                "evaluation_seconds": _round(self.evaluation_seconds),
                "latency": {k: round(v, 4) for k, v in self.latency.items()},
                "evaluations_per_prompt": {
                    k: round(v, 3) for k, v in self.evaluations_per_prompt.items()}}

    def _expected(self, sampler: str) -> float:
        return max(self.evaluations_per_prompt.get(sampler, self._batch[sampler]), _MIN_YIELD)

    def _period(self) -> float:
        slowest = max(self.latency.values(), default=0.0)
        return max(self._min_period, 2 * (self.evaluation_seconds or 0.0), slowest)


def _average(old: float | None, new: float) -> float:
    return new if old is None else (1 - _ALPHA) * old + _ALPHA * new


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
