"""How many samples to ask of one prompt, where several cost less than as many prompts.

vLLM's `n` and the OpenAI API's `n` return k samples of one prompt for less
than k requests (the prompt is read once, the samples are decoded side by
side). But the k-th sample of a request is worth less than the first: it
more often repeats one before it, and all of them answer the same parents.
So per sampler the sizer measures

- the cost of a request of k samples, a + b x k (proposal seconds, or
  GPU-seconds where the backend reports them), by least squares over the
  requests of the sizes tried: b is the marginal cost of a sample;
- v_k, how often the k-th sample of a request improved on its prompt
  (smoothed towards the rate of all samples while it has few), and e_k,
  the sandbox seconds it cost (a duplicate or a rejection costs none);

and asks for the k in 1..most with the most improvements per cost,
(v_1 + ... + v_k) / (a + b x k + e_1 + ... + e_k). One request in EXPLORE
goes out at a random size so that every size keeps being measured; until
requests of two sizes have been seen, it asks for `most`. Observations are
discounted by DISCOUNT per request, so the sizer follows the run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

EXPLORE = 0.1
DISCOUNT = 0.995  # per request: about the last 200 requests
SMOOTHING = 20.0  # samples' worth of the overall rate in each v_k
MIN_REQUESTS = 10


@dataclasses.dataclass
class _Position:
    """The samples at one place k in their requests (discounted sums)."""

    n: float = 0.0
    improvements: float = 0.0
    evaluation_seconds: float = 0.0


class RequestSizer:
    """Samples per prompt for one sampler, from its own measurements."""

    def __init__(self, most: int, rng: np.random.Generator):
        self.most = most
        self._rng = rng
        self._positions = [_Position() for _ in range(most)]
        # Discounted sums for the least squares fit of cost on size.
        self._w = self._x = self._y = self._xx = self._xy = 0.0
        self._sizes: set[int] = set()
        self._requests = 0
        self.chosen = most

    def on_request(self, size: int, cost: float) -> None:
        """A request of `size` samples came back and cost `cost` in all."""
        self._requests += 1
        self._sizes.add(size)
        for position in self._positions:
            position.n *= DISCOUNT
            position.improvements *= DISCOUNT
            position.evaluation_seconds *= DISCOUNT
        self._w = self._w * DISCOUNT + 1
        self._x = self._x * DISCOUNT + size
        self._y = self._y * DISCOUNT + cost
        self._xx = self._xx * DISCOUNT + size * size
        self._xy = self._xy * DISCOUNT + size * cost

    def on_sample(self, index: int, improved: bool, evaluation_seconds: float) -> None:
        """The sample at place `index` (from 0) of its request: its outcome."""
        if index >= self.most:
            return
        position = self._positions[index]
        position.n += 1
        position.improvements += improved
        position.evaluation_seconds += evaluation_seconds

    def cost_line(self) -> tuple[float, float] | None:
        """(a, b): a request of k samples costs a + b k; None before two sizes."""
        if len(self._sizes) < 2 or self._w <= 0:
            return None
        variance = self._xx / self._w - (self._x / self._w) ** 2
        if variance <= 1e-12:
            return None
        slope = (self._xy / self._w - self._x * self._y / self._w ** 2) / variance
        slope = max(slope, 0.0)
        return max(self._y / self._w - slope * self._x / self._w, 0.0), slope

    def values(self) -> list[float]:
        """v_k: improvements per sample at each place, smoothed."""
        total = sum(p.n for p in self._positions)
        overall = sum(p.improvements for p in self._positions) / total if total else 0.0
        return [(p.improvements + SMOOTHING * overall) / (p.n + SMOOTHING)
                for p in self._positions]

    def evaluation_costs(self) -> list[float]:
        """e_k: sandbox seconds per sample at each place (the mean where unseen)."""
        total = sum(p.n for p in self._positions)
        mean = sum(p.evaluation_seconds for p in self._positions) / total if total else 0.0
        return [p.evaluation_seconds / p.n if p.n > 0.5 else mean for p in self._positions]

    def best(self) -> int:
        """The size with the most improvements per cost as measured."""
        line = self.cost_line()
        if line is None or self._requests < MIN_REQUESTS:
            return self.most
        a, b = line
        values, seconds = np.cumsum(self.values()), np.cumsum(self.evaluation_costs())
        sizes = np.arange(1, self.most + 1)
        rates = values / np.maximum(a + b * sizes + seconds, 1e-12)
        return int(sizes[int(np.argmax(rates))])

    def size(self) -> int:
        """The size of the next request: the best, or now and then any."""
        self.chosen = self.best()
        if self._rng.random() < EXPLORE:
            return int(self._rng.integers(1, self.most + 1))
        return self.chosen

    def estimates(self) -> dict[str, Any]:
        line = self.cost_line()
        return {"size": self.chosen, "most": self.most, "requests": self._requests,
                "cost_line": None if line is None else [round(line[0], 6), round(line[1], 6)],
                "values": [round(v, 5) for v in self.values()],
                "evaluation_seconds": [round(e, 5) for e in self.evaluation_costs()]}
