"""What became of a sample, by one set of rules for the run and for its readers.

The engine judges each sample as it goes (the scheduler's reward is whether it
improved); `resume` judges the log's samples again to give the scheduler back
what it learnt, and the reports to count improvements and failures. All of
them judge by the rules here, so `compare`'s improvements per 1k samples are
what the scheduler was rewarded for.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Iterable
from typing import Any

from funsearch import events

# A sample's outcome in the reports, once it has one (a live run has some in flight).
OUTCOMES = ("valid", "duplicate", "invalid", "rejected", "stopped")

# The status of a program a cascade stage stopped (funsearch/cascades.py): it ran
# well on the inputs it was given, and was not scored on the rest.
STOPPED = "stopped"


def improved(score: float | None, parent_scores: Iterable[float]) -> bool:
    """A sample improved on its prompt when its program scores above the best
    program the prompt showed. Judged once the database has answered its
    registration, whether it registered the program or discarded it (its
    island was reset meanwhile); a failed evaluation, a rejection and a
    program already on its island (never sent to register) did not improve."""
    return score is not None and score > max(parent_scores, default=-math.inf)


def failed(status: str) -> bool:
    """An evaluation counted as a failure of its program: anything but "ok"
    or "stopped" (a duplicate of a failed program fails again)."""
    return status not in ("ok", STOPPED)


def scored(status: str) -> bool:
    """An evaluation that scored its program on every training input: the only
    kind the database may register (a stopped program has partial scores)."""
    return status == "ok"


def remembered(status: str) -> bool:
    """Whether an evaluation is kept for the program's duplicates: not a "lost"
    one (its actor died), which says nothing about the program."""
    return status != "lost"


def category(evaluation: events.Evaluation) -> str:
    """The reports' outcome of an evaluated sample: invalid, stopped, duplicate
    or valid."""
    if failed(evaluation.status):
        return "invalid"
    if evaluation.status == STOPPED:
        return "stopped"
    return "duplicate" if evaluation.duplicate else "valid"


@functools.lru_cache(maxsize=4096)  # reasons repeat; the regexes are the cost
def reason_key(text: Any, limit: int = 90) -> str:
    """A reason shortened so that reasons differing only in names, numbers or
    line numbers are counted together (a traceback is known by its last line)."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    line = lines[-1] if lines else "(no reason given)"
    line = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", line)
    line = re.sub(r"\d+(\.\d+)?", "N", line)
    return line if len(line) <= limit else line[:limit - 1] + "…"


@dataclasses.dataclass(frozen=True)
class Judged:
    """A sample whose outcome is known.

    Attributes:
      sample: its sample event (sampler, cost).
      improved: by `improved`, as the engine judged it.
      evaluation_seconds: sandbox time its evaluation took (0: none ran).
    """

    sample: events.Sample
    improved: bool
    evaluation_seconds: float


class Judge:
    """Reads a log's events in order and judges each sample as the engine did:
    `add` returns the sample an event settles, if any."""

    def __init__(self) -> None:
        self._open: dict[int, events.Sample] = {}
        self._evaluated: dict[int, tuple[float, float]] = {}  # sample -> score, seconds
        self._scores: dict[int, float] = {}  # program id -> score

    def add(self, event: events.Event) -> Judged | None:
        if isinstance(event, events.Sample):
            self._open[event.sample] = event
        elif isinstance(event, events.Rejection):
            return self._close(event.sample, improved=False, seconds=0.0)
        elif isinstance(event, events.Evaluation) and event.sample is not None:
            seconds = 0.0 if event.duplicate else event.duration or 0.0
            if not scored(event.status):
                return self._close(event.sample, improved=False, seconds=seconds)
            self._evaluated[event.sample] = (event.score, seconds)
        elif isinstance(event, events.Registration):
            self._scores[event.program_id] = event.score
            if event.sample is not None:
                return self._judge(event.sample)
        elif isinstance(event, events.Discard):
            return self._judge(event.sample)
        elif isinstance(event, events.Reset):
            self._scores[event.founder.program_id] = event.founder.score
        return None

    def finish(self) -> list[Judged]:
        """The samples evaluated and never registered nor discarded: their
        program was already on its island, no improvement."""
        judged = [self._close(sample, improved=False, seconds=seconds)
                  for sample, (_, seconds) in list(self._evaluated.items())]
        self._evaluated.clear()
        return [outcome for outcome in judged if outcome is not None]

    def _judge(self, sample: int) -> Judged | None:
        if sample not in self._evaluated or sample not in self._open:
            return None
        score, seconds = self._evaluated.pop(sample)
        parents = self._open[sample].parents or ()
        parent_scores = [self._scores[p] for p in parents if p in self._scores]
        return self._close(sample, improved(score, parent_scores), seconds)

    def _close(self, sample: int, improved: bool, seconds: float) -> Judged | None:
        opened = self._open.pop(sample, None)
        return None if opened is None else Judged(opened, improved, seconds)
