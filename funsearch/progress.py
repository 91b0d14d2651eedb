"""What a run reports about itself: counters, a live snapshot, where it stood.

The engine keeps them; the live view, the run's summary and `resume` read
them, without needing the search loop itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from funsearch.evaluator import Evaluation
from funsearch.scheduling.scheduler import Outcome, Spent


@dataclasses.dataclass
class Counters:
    """What happened to the samples so far (shown live, logged at the end)."""

    samples: int = 0
    rejected: int = 0
    evaluated: int = 0
    failed: int = 0
    stopped: int = 0  # by a cascade stage (funsearch/cascades.py): valid, never registered
    duplicates: int = 0
    registered: int = 0
    discarded: int = 0
    resets: int = 0

    @property
    def valid_fraction(self) -> float:
        scored = self.samples - self.rejected - self.failed
        return scored / self.samples if self.samples else 0.0


@dataclasses.dataclass
class Progress:
    """Where a run stood when its log ends: what `resume` needs to go on.

    Attributes:
      counters, spent: as the engine had them (spent.wall: run time so far).
      next_sample: the id the next sample gets.
      best_score: the best score registered so far.
      cache: normal hash -> evaluation, so known programs are not evaluated again.
      outcomes: every finished sample's outcome, for the scheduler to learn again.
      cascade: the cascade's state as the log leaves it (None: no cascade).
    """

    counters: Counters
    spent: Spent
    next_sample: int
    best_score: float | None
    cache: dict[str, Evaluation]
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    cascade: Any = None  # a cascade.Cascade


@dataclasses.dataclass
class Status:
    """A snapshot for the live view."""

    elapsed: float
    counters: Counters
    best_score: float | None
    island_best: list[float]
    samples_per_second: float
    stop_reason: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)  # stalls so far, in order
