"""What the model backends share: settings validation and cost attribution.

Each backend reads its free-form `settings` table through a pydantic model
that forbids unknown keys, so a typo in an experiment file is an error naming
`samplers.<name>.settings.<key>` instead of a silently ignored option.

Costs are attributed per sample so that the scheduler can compare model
sizes: tokens are split over the samples of one request, and GPU time is
shared between the requests that were in flight together (a GPU serving four
batched requests for ten seconds was busy ten seconds, not forty).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from funsearch.config import ConfigError
from funsearch.samplers.base import SamplerError

if TYPE_CHECKING:
    from funsearch.config import SamplerConfig


# Where a base model's continuation of a function body is over: the next
# top-level statement. At most four, the limit of some hosted APIs.
COMPLETION_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\n```")


class SamplerConfigError(SamplerError, ConfigError):
    """A sampler that cannot start because of its configuration or environment.

    Both a SamplerError (the backend cannot serve) and a ConfigError (the
    command line prints it as one line naming the key, not as a traceback).
    """


class Settings(BaseModel):
    """Base of the backends' settings models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Settings)


def parse_settings(model: type[S], config: SamplerConfig) -> S:
    """The sampler's `settings` table as `model`, or SamplerConfigError naming the keys."""
    try:
        return model.model_validate(config.settings)
    except ValidationError as error:
        prefix = f"samplers.{config.name}.settings"
        lines = []
        for problem in error.errors():
            key = ".".join([prefix, *(str(part) for part in problem["loc"])])
            if problem["type"] == "extra_forbidden":
                known = ", ".join(sorted(model.model_fields))
                lines.append(f"unknown key '{key}' (the {config.backend} backend knows: {known})")
            elif problem["type"] == "missing":
                lines.append(f"missing key '{key}'")
            else:
                lines.append(f"key '{key}': {problem['msg']}")
        raise SamplerConfigError("\n".join(lines)) from None


def split(total: int, parts: int) -> list[int]:
    """`total` split into `parts` integers that differ by at most one and sum to it.

    Backends report tokens per request; splitting them this way keeps the
    sums over samples equal to what the backend reported."""
    if parts <= 0:
        return []
    base, extra = divmod(max(0, int(total)), parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


class BusyShare:
    """Shares a resource's busy time between the requests in flight.

    While k requests are in flight each accrues dt / k, so the shares of all
    requests sum to the time the resource was busy (processor sharing). A
    request alone gets exactly its latency.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._virtual = 0.0  # accrued busy time per request since the start
        self._last = clock()

    def begin(self) -> tuple[float, float]:
        """Marks a request as started; pass the token to end()."""
        with self._lock:
            now = self._advance()
            self._in_flight += 1
            return now, self._virtual

    def end(self, token: tuple[float, float]) -> tuple[float, float]:
        """(latency, share of busy time) of a request that has finished."""
        with self._lock:
            now = self._advance()
            self._in_flight -= 1
            started, virtual = token
            return now - started, self._virtual - virtual

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _advance(self) -> float:
        now = self._clock()
        if self._in_flight:
            self._virtual += (now - self._last) / self._in_flight
        self._last = now
        return now
