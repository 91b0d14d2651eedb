"""Proposal backends behind one small interface.

A sampler turns a Query (the versions to improve on, as text and as
structured data) into samples: raw text that prompt.to_program makes into a
program, or rejects with a reason. Backends are imported lazily so that a
missing optional dependency (vllm) only matters to whoever picks it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from funsearch.config import SamplerConfig
    from funsearch.prompt import Parsed, Query


@dataclasses.dataclass(frozen=True)
class Sample:
    """One proposal as the backend returned it.

    Attributes:
      text: the raw completion (a function body, or a reply with a code block).
      sampler: name of the sampler config that produced it.
      latency: seconds the request took (shared by the samples of one request).
      prompt_tokens, completion_tokens: as reported by the backend (0 if none).
      gpu_seconds: GPUs of the replica x busy time attributed to this sample.
      cpu_seconds: the same for a model on CPUs (a vllm replica without GPUs):
        its cores x busy time attributed to this sample.
      usd: what the sample cost at the prices in the backend's settings (0 if none).
      parsed: the program made of it (prompt.parse_samples), where the backend
        made it; None: the search loop makes it.
    """

    text: str
    sampler: str
    latency: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    gpu_seconds: float = 0.0
    usd: float = 0.0
    parsed: Parsed | None = None
    cpu_seconds: float = 0.0


class Sampler(Protocol):
    name: str

    def sample(self, query: Query, n: int) -> list[Sample]:
        """n proposals for the query; may block on I/O."""
        ...


class SamplerError(RuntimeError):
    """A backend that cannot serve (misconfigured, server gone); not bad output."""


def make_sampler(config: SamplerConfig, seed: int = 0) -> Sampler:
    """The backend a sampler config names, recording its samples if `record` is set."""
    sampler = _make_backend(config, seed)
    if config.record:
        from funsearch.samplers.replay import record

        return record(sampler, config.record)
    return sampler


def threads(config: SamplerConfig) -> int:
    """Threads worth calling a sampler from at once: its max_concurrency,
    except the mutation proposer's one (see MutationSampler). More prompts
    than that may still be out; they wait their turn in order."""
    return 1 if config.backend == "mutation" else config.max_concurrency


def _make_backend(config: SamplerConfig, seed: int) -> Sampler:
    if config.backend == "mutation":
        from funsearch.samplers.mutation import MutationSampler

        return MutationSampler(config, seed=seed)
    if config.backend == "openai":
        from funsearch.samplers.openai_api import OpenAISampler

        return OpenAISampler(config)
    if config.backend == "vllm":
        from funsearch.samplers.vllm_engine import VLLMSampler

        return VLLMSampler(config, seed=seed)
    if config.backend == "replay":
        from funsearch.samplers.replay import ReplaySampler

        return ReplaySampler(config)
    raise SamplerError(f"sampler '{config.name}': unknown backend '{config.backend}'")
