"""Notices a sampler that has stopped proposing anything new.

A sampler can go on answering while teaching the search nothing: every sample
its parent again (a duplicate), or text that never becomes a program (a
rejection). The run then spends its whole budget on nothing, and its counters
only say so to whoever reads them closely. The engine tells the watcher what
became of each sample; when a sampler's last STALL_SAMPLES were all
duplicates or rejections, the watcher says so once -- naming the sampler and
the reasons, counted -- and not again until that sampler has proposed a new
program and stalled anew.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Iterable
from typing import Any

from funsearch import code
from funsearch.outcomes import reason_key

STALL_SAMPLES = 50  # samples in a row that came to nothing: a stall

DUPLICATE_OF_PARENT = "duplicate of a parent in its prompt"
DUPLICATE = "duplicate of an earlier program"


@dataclasses.dataclass(frozen=True)
class Stall:
    """A sampler whose last `count` samples were all duplicates or rejections."""

    sampler: str
    count: int
    reasons: dict[str, int]  # most common first

    def fields(self) -> dict[str, object]:
        """The `stall` event's fields in events.jsonl."""
        return {"sampler": self.sampler, "count": self.count, "reasons": self.reasons,
                "message": self.message()}

    def message(self) -> str:
        reasons = "; ".join(f"{reason} ({n})" for reason, n in self.reasons.items())
        return (f"sampler '{self.sampler}' stalled: its last {self.count} samples were all "
                f"duplicates or rejections: {reasons}")


class StallWatcher:
    """Per sampler, the samples in a row that came to nothing, and why."""

    def __init__(self, threshold: int = STALL_SAMPLES) -> None:
        self.threshold = threshold
        self.warnings: list[str] = []  # every stall's message, in order
        self._streaks: dict[str, _Streak] = {}
        self._stalled: set[str] = set()

    def new(self, sampler: str) -> None:
        """A sample became a new program: its sampler's streak (and stall) ends."""
        self._streaks.pop(sampler, None)
        self._stalled.discard(sampler)

    def wasted(self, sampler: str, reason: str) -> Stall | None:
        """A sample came to nothing; the stall, the first time the streak is long enough."""
        streak = self._streaks.setdefault(sampler, _Streak())
        streak.add(reason)
        if streak.length < self.threshold or sampler in self._stalled:
            return None
        self._stalled.add(sampler)
        stall = Stall(sampler, streak.length, streak.reasons())
        self.warnings.append(stall.message())
        return stall


class _Streak:
    """One sampler's samples in a row that came to nothing, counted by reason.
    Reasons that differ only in numbers or names count as one
    (outcomes.reason_key) and are shown as the first of them, cut to one short line."""

    def __init__(self) -> None:
        self.length = 0
        self._counts: collections.Counter[str] = collections.Counter()
        self._examples: dict[str, str] = {}

    def add(self, reason: str) -> None:
        key = reason_key(reason)
        self._counts[key] += 1
        self.length += 1
        if key not in self._examples:
            line = next((s.strip() for s in reason.splitlines() if s.strip()), "(no reason)")
            self._examples[key] = line if len(line) <= 120 else line[:119] + "…"

    def reasons(self) -> dict[str, int]:
        return {self._examples[key]: n for key, n in self._counts.most_common()}


def duplicate_reason(program_hash: str, parents: Iterable[Any]) -> str:
    """Why a duplicate is one: a parent of its prompt again (the sampler
    copied what it was shown), or a program proposed before. `parents`: the
    prompt's programs (with a `source`)."""
    if any(_normal_hash(parent.source) == program_hash for parent in parents):
        return DUPLICATE_OF_PARENT
    return DUPLICATE


@functools.lru_cache(maxsize=1024)  # prompts show the same strong programs again and again
def _normal_hash(source: str) -> str:
    return code.normal_hash(source)
