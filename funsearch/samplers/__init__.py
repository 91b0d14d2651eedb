"""Proposal backends behind one small interface (samplers/base.py).

A sampler turns a Query (the versions to improve on, as text and as
structured data) into samples: raw text that funsearch/parsing.py makes into
a program, or rejects with a reason. Backends are imported lazily so that a
missing optional dependency (vllm) only matters to whoever picks it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pydantic import BaseModel

from funsearch import parsing
from funsearch.samplers.base import Sample, Sampler, SamplerError

if TYPE_CHECKING:
    from funsearch.config import SamplerConfig
    from funsearch.prompt import Query


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


def sample_programs(sampler: Sampler, query: Query, n: int) -> list[Sample]:
    """n samples with their programs made (Sample.parsed).

    Runtimes call this where the samples are made -- the sampler's actor with
    Ray -- so the search loop, one thread for the whole run, does not parse.
    Samples that come with their program (the mutation proposer makes it from
    its own tree) are kept as they are."""
    return [sample if sample.parsed
            else dataclasses.replace(sample, parsed=parsing.parse(sample.text, query))
            for sample in sampler.sample(query, n)]


def settings_model(backend: str) -> type[BaseModel]:
    """The model of a backend's `settings` table: what it knows, with defaults.
    Imported lazily, like the backends themselves (vllm's needs no vllm)."""
    if backend == "mutation":
        from funsearch.samplers.mutation.settings import MutationSettings

        return MutationSettings
    if backend == "openai":
        from funsearch.samplers.openai_api import OpenAISettings

        return OpenAISettings
    if backend == "vllm":
        from funsearch.samplers.vllm_engine import VLLMSettings

        return VLLMSettings
    if backend == "replay":
        from funsearch.samplers.replay import ReplaySettings

        return ReplaySettings
    raise SamplerError(f"unknown sampler backend '{backend}'")


def check_settings(config: SamplerConfig) -> BaseModel:
    """The sampler's settings as its backend will read them, or a ConfigError
    naming each bad key: checked before a run starts, without making the sampler."""
    if config.backend == "mutation":
        from funsearch.samplers.mutation.settings import parse_settings as parse_mutation

        return parse_mutation(config)
    from funsearch.samplers.backend import parse_settings

    return parse_settings(settings_model(config.backend), config)


def _make_backend(config: SamplerConfig, seed: int) -> Sampler:
    if config.backend == "mutation":
        from funsearch.samplers.mutation.proposer import MutationSampler

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
