"""How much evaluation a proposal gets: the thresholds of an adaptive cascade.

A cascade (funsearch/cascades.py) runs a program on cheap stages first and
stops it where a stage's rule says it is unlikely to improve its island.
Stopping the marginal program, the one at a stage's threshold, saves the
sandbox seconds S its later stages would have cost and loses the
improvement it would have brought, with chance p. Spent on more proposals
instead, S brings E x S improvements, E being the run's improvements per
compute-second (proposals and evaluations, discounted to follow the run). So
the marginal program is worth evaluating when p > E x S.

Each program a rule judges gets `needs`: the threshold it would have
needed to pass (larger is looser). At the threshold t in force the tuner
measures p on both sides of it:

- just above, programs that passed with t / STEP < needs <= t (all of them
  are evaluated further, so their outcomes are known): when they improve
  clearly less often than E x S, the threshold is tightened to t / STEP;
- just below, programs that were stopped with t < needs <= t x STEP and
  evaluated in full anyway (the random audit share): when they improve
  clearly more often, it is loosened to t x STEP.

A band is narrow and fills slowly, so all the programs that passed, and all
the audited ones, since the last change are judged too: the passed improve
at least as often as the marginal passed one, the audited at most as often
as the marginal stopped one (the rules rank by promise), so when even they
fail the test the band would too. "Clearly" is a one-sided normal test at Z
on the count of improvements; a set is judged once it holds `min_band`
programs, and all start over at each change. Pure arithmetic fed by the fold of the
event log in funsearch/cascades.py, so a resumed run recomputes every
threshold from its log; its decisions are "scheduler" events ("cascade").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

STEP = 1.5  # a threshold moves by this factor
Z = 1.0  # the test's level: about one chance in six of a move by noise
DISCOUNT = 0.998  # per proposal: E follows about the last 500 proposals

Emit = Callable[..., Any]


@dataclasses.dataclass
class Band:
    """Programs of one kind at a stage, and how many improved their island."""

    n: int = 0
    k: int = 0

    def add(self, improved: bool) -> None:
        self.n += 1
        self.k += improved

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None


@dataclasses.dataclass
class Mean:
    total: float = 0.0
    n: int = 0

    def add(self, value: float) -> None:
        self.total += value
        self.n += 1

    @property
    def value(self) -> float:
        return self.total / self.n if self.n else 0.0


@dataclasses.dataclass
class StageStats:
    """What the tuner knows of one filter stage.

    Attributes:
      threshold, low, high: the threshold in force and its bounds.
      changes: how often it moved.
      upper, lower: the bands above and below it since it last moved.
      above, below: every program that passed, and every audited one, since
        it last moved.
      passed, audited: every program that passed, or was stopped and audited
        (its outcome decides the false-stop rate).
      stopped: programs stopped and not audited.
      seconds: sandbox seconds of the stage itself.
      after: sandbox seconds spent after it on a program that went on.
    """

    threshold: float
    low: float
    high: float
    changes: int = 0
    upper: Band = dataclasses.field(default_factory=Band)
    lower: Band = dataclasses.field(default_factory=Band)
    above: Band = dataclasses.field(default_factory=Band)
    below: Band = dataclasses.field(default_factory=Band)
    passed: Band = dataclasses.field(default_factory=Band)
    audited: Band = dataclasses.field(default_factory=Band)
    stopped: int = 0
    seconds: Mean = dataclasses.field(default_factory=Mean)
    after: Mean = dataclasses.field(default_factory=Mean)


@dataclasses.dataclass(frozen=True)
class Judged:
    """A rule's verdict on a program at one stage, as the tuner learns it."""

    stage: int
    needs: float | None  # None: nothing to compare with, it went on
    threshold: float
    passed: bool
    audit: bool  # stopped, and evaluated in full anyway


class CascadeTuner:
    """Per-stage thresholds, moved (when `adaptive`) by the rule above."""

    def __init__(self, stages: list[tuple[float, float, float]], adaptive: bool,
                 min_band: int, emit: Emit | None = None):
        self.stages = [StageStats(threshold, low, high) for threshold, low, high in stages]
        self.adaptive = adaptive
        self.min_band = min_band
        self.emit = emit or (lambda **fields: None)
        self.improvements = 0.0  # discounted, like compute
        self.compute = 0.0  # proposal + sandbox seconds, discounted

    def threshold(self, stage: int) -> float:
        return self.stages[stage].threshold

    @property
    def efficiency(self) -> float:
        """E: improvements per compute-second lately."""
        return self.improvements / self.compute if self.compute > 0 else 0.0

    def on_proposal(self, seconds: float) -> None:
        self.improvements *= DISCOUNT
        self.compute = self.compute * DISCOUNT + seconds

    def on_evaluation(self, seconds: float) -> None:
        """A program's sandbox seconds, all its stages together."""
        self.compute += seconds

    def on_improvement(self) -> None:
        self.improvements += 1.0

    def on_stage(self, stage: int, seconds: float) -> None:
        self.stages[stage].seconds.add(seconds)

    def on_outcome(self, verdicts: list[Judged], after: list[float], improved: bool) -> None:
        """A program the rules judged reached its end: `verdicts` in stage
        order, `after[i]` the sandbox seconds it took after verdict i's stage
        (for a stopped one, none), `improved`: it improved its island."""
        for verdict, seconds in zip(verdicts, after, strict=True):
            stats = self.stages[verdict.stage]
            if not verdict.passed and not verdict.audit:
                stats.stopped += 1
                break
            stats.after.add(seconds)
            (stats.passed if verdict.passed else stats.audited).add(improved)
            self._band(stats, verdict, improved)
            self._consider(verdict.stage)
            if verdict.audit:
                break  # its later stages judged a program their rules never see

    def _band(self, stats: StageStats, verdict: Judged, improved: bool) -> None:
        if verdict.needs is None or verdict.threshold != stats.threshold:
            return  # judged under another threshold
        (stats.above if verdict.passed else stats.below).add(improved)
        if verdict.passed and verdict.needs > stats.threshold / STEP:
            stats.upper.add(improved)
        elif verdict.audit and verdict.needs <= stats.threshold * STEP:
            stats.lower.add(improved)

    def _consider(self, stage: int) -> None:
        stats = self.stages[stage]
        if not self.adaptive:
            return
        worth = self.efficiency * stats.after.value  # E x S: what p must beat
        for band in (stats.lower, stats.below):
            if band.n >= self.min_band and z_score(band, worth) > Z:
                return self._move(stage, min(stats.high, stats.threshold * STEP), band, worth)
        for band in (stats.upper, stats.above):
            if band.n >= self.min_band and z_score(band, worth) < -Z:
                return self._move(stage, max(stats.low, stats.threshold / STEP), band, worth)
        return None

    def _move(self, stage: int, threshold: float, band: Band, worth: float) -> None:
        stats = self.stages[stage]
        why = "loosen" if threshold > stats.threshold else "tighten"
        old = stats.threshold
        if threshold != old:
            stats.threshold = threshold
            stats.changes += 1
            self.emit(action="cascade", stage=stage, decision=why, threshold=round(threshold, 6),
                      previous=round(old, 6), band={"programs": band.n, "improved": band.k},
                      worth=round(worth, 6), efficiency=round(self.efficiency, 8),
                      after_seconds=round(stats.after.value, 6))
        stats.upper, stats.lower, stats.above, stats.below = Band(), Band(), Band(), Band()

    def summary(self) -> dict[str, Any]:
        """Every stage's figures, for the "cascade" summary event at the end."""
        return {"efficiency": round(self.efficiency, 8), "stages": [
            {"threshold": round(s.threshold, 6), "changes": s.changes, "passed": s.passed.n,
             "passed_improved": s.passed.k, "stopped": s.stopped, "audited": s.audited.n,
             "audited_improved": s.audited.k, "seconds": round(s.seconds.value, 6),
             "after_seconds": round(s.after.value, 6), "lost": round(lost(s), 3)}
            for s in self.stages]}


def z_score(band: Band, worth: float) -> float:
    """How far the band's improvements are above what `worth` per program
    would give, in standard deviations (smoothed, so that a band of rare
    events with none yet is not judged on a variance of zero)."""
    p = min(max(worth, 0.0), 1.0)
    variance = band.n * p * (1 - p) + 0.25
    return (band.k - band.n * p) / math.sqrt(variance)


def lost(stats: StageStats) -> float:
    """Improvements the stage's stops are estimated to have lost: its stopped
    programs times the rate at which the audited ones (stopped programs
    evaluated in full, a random share) improved. The audited ones' own
    improvements were made, not lost."""
    rate = stats.audited.rate
    return 0.0 if rate is None else rate * stats.stopped
