"""Record and replay model outputs: deterministic reruns, tests without a model.

`record(sampler, path)` wraps any sampler and appends every sample it returns
to a JSONL file, one line per sample:

    {"prompt_hash": "...", "n": 4, "index": 0, "text": "...", "sampler": "...",
     "latency": 1.2, "prompt_tokens": 612, "completion_tokens": 240,
     "gpu_seconds": 0.3, "usd": 0.0}

The replay backend serves those texts back. A query gets the texts recorded
for the same prompt (same hash), in recorded order, so a rerun repeats the
recorded run even when its prompts were sampled in another order; a prompt
that was never recorded gets the next unused texts in file order (or an error,
with `on_miss = "error"`). The recorded costs come back too, so a scheduler
that decides by cost decides the same way again.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from funsearch.samplers.backend import SamplerConfigError, Settings, parse_settings
from funsearch.samplers.base import Sample, Sampler, SamplerError


def prompt_hash(query: Any) -> str:
    """A short hash of everything a model sees for a query, in both modes."""
    content = json.dumps({"completion": query.completion,
                          "messages": [dict(message) for message in query.messages]},
                         sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One line of a recording. `prompt_hash` is None for texts recorded
    without their prompt (hand-written test data); they are served in order."""

    text: str
    prompt_hash: str | None = None
    n: int = 1
    index: int = 0
    sampler: str = ""
    latency: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    gpu_seconds: float = 0.0
    usd: float = 0.0


_FIELDS = {field.name: field.type for field in dataclasses.fields(Recorded)}


def load(path: str | Path) -> list[Recorded]:
    """The samples of a recording; ValueError naming file and line if one is broken.

    Unknown keys are ignored, so recordings stay readable when lines grow."""
    path = Path(path)
    recorded = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: not a JSON line: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ValueError(f"{path}:{number}: a recorded sample needs a string 'text'")
        values = {key: value for key, value in data.items()
                  if key in _FIELDS and value is not None}
        try:
            recorded.append(Recorded(**_typed(values)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}:{number}: {error}") from None
    return recorded


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    numbers = {"n": int, "index": int, "prompt_tokens": int, "completion_tokens": int,
               "latency": float, "gpu_seconds": float, "usd": float}
    return {key: numbers[key](value) if key in numbers else value for key, value in values.items()}


class RecordingSampler:
    """A sampler that appends what the sampler it wraps returns to a JSONL file.

    The lines of one request go to the file in one append-mode write, so a run
    that dies keeps its recording, and replicas in other processes that record
    to the same file do not tear each other's lines.
    """

    def __init__(self, sampler: Sampler, path: str | Path):
        self.name = sampler.name
        self.inner = sampler
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def sample(self, query: Any, n: int) -> list[Sample]:
        samples = self.inner.sample(query, n)
        key = prompt_hash(query)
        lines = [json.dumps({"prompt_hash": key, "n": len(samples), "index": index,
                             **dataclasses.asdict(sample)}) + "\n"
                 for index, sample in enumerate(samples)]
        data = "".join(lines).encode()
        with self._lock:
            if self._fd is None:
                raise SamplerError(f"sampler '{self.name}': recording to {self.path} is closed")
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
        return samples

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def record(sampler: Sampler, path: str | Path) -> RecordingSampler:
    """`sampler`, with every sample it returns appended to the JSONL file `path`."""
    return RecordingSampler(sampler, path)


class ReplaySettings(Settings):
    """`settings` of the replay backend.

    path: the recording (JSONL) to serve.
    on_miss: what a prompt without (enough) recorded texts gets: the next unused
      texts in recorded order ("order"), or SamplerError ("error", to check that
      a rerun asks exactly what was recorded).
    cycle: start again from the top when every text was served (else
      SamplerError).
    costs: return the recorded latency, tokens, GPU-seconds and cost (else zeros).
    """

    path: str = Field(min_length=1)
    on_miss: Literal["order", "error"] = "order"
    cycle: bool = True
    costs: bool = True


class ReplaySampler:
    """Serves a recording back: by prompt hash first, then in recorded order."""

    def __init__(self, config: Any):
        self.name: str = config.name
        self._settings = parse_settings(ReplaySettings, config)
        path = Path(self._settings.path)
        try:
            self._recorded = load(path)
        except FileNotFoundError:
            raise SamplerConfigError(
                f"samplers.{config.name}.settings.path: no recording at '{path}'") from None
        except ValueError as error:
            raise SamplerConfigError(f"samplers.{config.name}.settings.path: {error}") from None
        if not self._recorded:
            raise SamplerConfigError(
                f"samplers.{config.name}.settings.path: '{path}' holds no samples")
        self._lock = threading.Lock()
        self._rewind()

    def sample(self, query: Any, n: int) -> list[Sample]:
        key = prompt_hash(query)
        with self._lock:
            chosen = self._take_recorded(key, n)
            if len(chosen) < n:
                if self._settings.on_miss == "error":
                    raise SamplerError(
                        f"sampler '{self.name}': {self._settings.path} has "
                        f"{'no' if not chosen else 'only ' + str(len(chosen))} unused samples "
                        f"for prompt {key} ({n} asked)")
                chosen += self._take_in_order(n - len(chosen))
        return [self._sample(self._recorded[index]) for index in chosen]

    def _rewind(self) -> None:
        self._used = [False] * len(self._recorded)
        self._cursor = 0  # everything before it is used
        self._by_hash: dict[str, collections.deque[int]] = collections.defaultdict(
            collections.deque)
        for index, recorded in enumerate(self._recorded):
            if recorded.prompt_hash:
                self._by_hash[recorded.prompt_hash].append(index)

    def _take_recorded(self, key: str, n: int) -> list[int]:
        queue = self._by_hash.get(key)
        chosen: list[int] = []
        while queue and len(chosen) < n:
            index = queue.popleft()
            if not self._used[index]:
                self._used[index] = True
                chosen.append(index)
        return chosen

    def _take_in_order(self, n: int) -> list[int]:
        chosen: list[int] = []
        while len(chosen) < n:
            while self._cursor < len(self._recorded) and self._used[self._cursor]:
                self._cursor += 1
            if self._cursor == len(self._recorded):
                if not self._settings.cycle:
                    raise SamplerError(
                        f"sampler '{self.name}': {self._settings.path} is used up "
                        f"({len(self._recorded)} samples; set cycle = true to start over)")
                self._rewind()
                continue
            self._used[self._cursor] = True
            chosen.append(self._cursor)
        return chosen

    def _sample(self, recorded: Recorded) -> Sample:
        if not self._settings.costs:
            return Sample(recorded.text, self.name)
        return Sample(recorded.text, self.name, recorded.latency, recorded.prompt_tokens,
                      recorded.completion_tokens, recorded.gpu_seconds, recorded.usd)
