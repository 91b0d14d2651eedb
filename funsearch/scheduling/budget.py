"""What a run has spent, what each sample cost, and when the budget is reached.

A sample's cost is known in several units at once: the seconds its request
took (shared by the samples of that request), the GPU-seconds the backend
attributed to it, its tokens, and its price. An evaluation adds the seconds
the sandbox spent on it. Budgets can be set in any of these units; the
scheduler's bandits compare samplers in one of them (`cost_unit`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from funsearch.config import Budget, SamplerConfig, SchedulerConfig
    from funsearch.samplers.base import Sample

# A sampler that reports no cost in the bandit's unit still costs something
# (it takes a turn of the evaluators): its mean cost is floored at this
# fraction of the dearest sampler's, so no sampler looks infinitely efficient.
FREE_COST_FRACTION = 1e-3


@dataclasses.dataclass
class Spent:
    """What the run has used so far (all samplers together).

    Attributes:
      samples: samples received.
      wall: run time in seconds (over all sessions of a resumed run).
      gpu_seconds: GPU-seconds the backends attributed to the samples.
      usd: price of the samples (see `Cost.usd`).
      tokens: prompt plus completion tokens.
      evaluation_seconds: seconds the sandbox spent evaluating (duplicates
        reuse a result and cost none).
    """

    samples: int = 0
    wall: float = 0.0
    gpu_seconds: float = 0.0
    usd: float = 0.0
    tokens: int = 0
    evaluation_seconds: float = 0.0

    def charge(self, cost: Cost) -> None:
        self.samples += 1
        self.gpu_seconds += cost.gpu_seconds
        self.usd += cost.usd
        self.tokens += cost.tokens


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one sample cost on the proposal side.

    Attributes:
      seconds: the request's latency divided among the samples it returned.
      gpu_seconds: as the backend attributed it (GPUs x busy share).
      cpu_seconds: the same for a model on CPUs (cores x busy share).
      tokens: prompt plus completion tokens of the sample.
      usd: the backend's price of the sample when it reports one, else the
        sampler config's `price_per_gpu_hour` and `price_per_1k_tokens`
        applied to its GPU-seconds and tokens (never both, so nothing is
        counted twice).
    """

    seconds: float = 0.0
    gpu_seconds: float = 0.0
    tokens: int = 0
    usd: float = 0.0
    cpu_seconds: float = 0.0


def sample_cost(sample: Sample, config: SamplerConfig, samples_in_request: int) -> Cost:
    """The proposal-side cost of one sample of a request that returned
    `samples_in_request` samples."""
    tokens = sample.prompt_tokens + sample.completion_tokens
    usd = sample.usd
    if not usd:
        usd = (sample.gpu_seconds / 3600 * config.price_per_gpu_hour
               + tokens / 1000 * config.price_per_1k_tokens)
    return Cost(seconds=sample.latency / max(1, samples_in_request),
                gpu_seconds=sample.gpu_seconds, tokens=tokens, usd=usd,
                cpu_seconds=sample.cpu_seconds)


def cost_unit(config: SchedulerConfig, samplers: list[SamplerConfig]) -> str:
    """The unit the bandits divide improvements by: `scheduler.cost`, where
    "auto" is the unit of the budget (GPU-seconds for a GPU-hours budget when
    every sampler has GPUs, dollars for a dollar budget), else "compute"."""
    if config.cost != "auto":
        return config.cost
    if config.budget.usd is not None:
        return "usd"
    if config.budget.gpu_hours is not None and all(s.gpus_per_replica > 0 for s in samplers):
        return "gpu_seconds"
    return "compute"


def in_unit(unit: str, cost: Cost, evaluation_seconds: float) -> float:
    """One sample's cost in the bandits' unit.

    "compute" counts what the sample occupied on both sides: the GPU-seconds
    of its proposal (the CPU-seconds of a model on CPUs, or its share of the
    request's seconds when the backend reports neither) plus the seconds its
    evaluation took. A GPU-second and
    a sandbox second weigh the same here; set prices and use "usd" to weigh
    them otherwise.
    """
    if unit == "samples":
        return 1.0
    if unit == "gpu_seconds":
        return cost.gpu_seconds
    if unit == "usd":
        return cost.usd
    if unit == "seconds":
        return cost.seconds
    proposal = cost.gpu_seconds or cost.cpu_seconds or cost.seconds
    return proposal + evaluation_seconds


def exhausted(budget: Budget, spent: Spent, best_score: float | None) -> str | None:
    """The reason the run must stop, or None while budget is left.

    The engine stops sending prompts at the first reason and lets the work in
    flight finish, so a run overshoots a GPU or dollar budget by at most the
    prompts in flight (a sample budget is never overshot: the engine asks for
    no more samples than are left)."""
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
