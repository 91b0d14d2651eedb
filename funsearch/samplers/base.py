"""What every sampler is: the Sampler interface, the Sample it returns, its error.

Its own module so that the backends, the engine and the budget can name a
Sample without importing the package that picks and builds the backends
(samplers/__init__.py), which imports them in turn.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from funsearch.parsing import Parsed
    from funsearch.prompt import Query


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
      parsed: the program made of it (funsearch/parsing.py), where the backend
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
