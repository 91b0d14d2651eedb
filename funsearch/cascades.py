"""Cascades: cheap stages first, and only promising programs go on.

A cascade's filter stages (config.CascadeConfig, or the spec's
`@funsearch.cascade`) are slices of the training set (its first k inputs in
the database's order, cumulative) or other input sets, cheapest first. After
each, the stage's rule says whether the program goes on: its mean on the
stage within a margin of its island's best there ("margin"), or in the top
fraction of its island's recent programs there ("top"). A program that
passes them all runs on the rest of the training set and is registered as
any other; one that is stopped is logged with the stage it reached and its
partial scores (status "stopped") and never registered, so it cannot
outrank a fully scored program. A random share of the stopped (`audit`) is
evaluated in full anyway: that is how scheduling/cascade.py learns what
stopping loses, and moves the thresholds.

What a rule compares with is a fold of the event log (`apply`): the engine
feeds it every event as it writes it, and resume.py every event as it reads
them back, so a resumed run decides as the run would have gone on deciding.
The audit draw is a hash of the seed and the sample id, not a generator.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import statistics
from collections.abc import Callable
from typing import Any

from funsearch import events
from funsearch.config import ConfigError, ExperimentConfig, StageConfig
from funsearch.evaluator import Evaluation
from funsearch.outcomes import STOPPED
from funsearch.scheduling.cascade import CascadeTuner, Emit, Judged
from funsearch.spec import SpecError, Specification

WINDOW = 50  # recent programs of an island a "top" rule ranks against
MIN_HISTORY = 4  # ... and how many it needs before it stops anything
_OPEN_LIMIT = 4096  # programs awaiting an answer: older ones count as no improvement


def resolve(config: ExperimentConfig, spec: Specification) -> ExperimentConfig:
    """The config with the cascade's stages written out (the spec's, when the
    experiment names none), so config.json says what ran and a resumed run
    needs no spec to replay it. Errors name the key or the spec file."""
    cascade = config.cascade
    stages = cascade.stages
    if not stages and cascade.mode != "off" and spec.cascade_name:
        try:
            stages = [StageConfig.model_validate(stage) for stage in spec.cascade()]
        except ValueError as error:
            raise SpecError(f"{spec.path}: '{spec.cascade_name}' returns a bad stage: "
                            f"{error}") from None
    for index, stage in enumerate(stages):
        if isinstance(stage.inputs, str) and stage.inputs not in spec.input_sets:
            raise ConfigError(f"cascade.stages.{index}.inputs: no input set '{stage.inputs}' "
                              f"in {spec.path} (it has: {', '.join(spec.input_sets)})")
    sizes = [stage.inputs for stage in stages if isinstance(stage.inputs, int)]
    if sizes != sorted(set(sizes)):
        raise ConfigError(f"cascade.stages: training slices must grow stage by stage, not {sizes}")
    return config.model_copy(update={"cascade": cascade.model_copy(update={"stages": stages})})


@dataclasses.dataclass(frozen=True)
class Underway:
    """A program in its cascade: the stage it is at and what it has so far.

    Attributes:
      stage: the stage being run (the last, len(stages): the rest of the training set).
      done: the evaluations of its earlier stages.
      audit: it failed a rule and goes on to be evaluated in full.
    """

    stage: int
    island: int
    sample: int
    sampler: str
    hash: str
    done: tuple[Evaluation, ...] = ()
    audit: bool = False


@dataclasses.dataclass(frozen=True)
class Advance:
    """What follows a stage: an event to log, then either the program's next
    stage (`final` None) or its last word (`final`, at `underway.stage`)."""

    event: events.Stage | None
    underway: Underway
    final: Evaluation | None


@dataclasses.dataclass(frozen=True)
class Verdict:
    reference: float | None
    needs: float | None
    threshold: float
    passed: bool
    audit: bool


class _Island:
    """What the rules compare with on one island (since its last reset)."""

    def __init__(self, stages: int):
        self.best = -math.inf  # its best full score
        self.stage_best: list[float | None] = [None] * stages
        self.history = [collections.deque(maxlen=WINDOW) for _ in range(stages)]

    def add(self, score: float, stage_scores: dict[int, float]) -> bool:
        """A program registered here; whether it improved the island."""
        improved = score > self.best
        self.best = max(self.best, score)
        for stage, value in stage_scores.items():
            best = self.stage_best[stage]
            self.stage_best[stage] = value if best is None else max(best, value)
        return improved

    def compare(self, stage: int, rule: str, score: float,
                threshold: float) -> tuple[float | None, float | None]:
        """(reference, needs) of a score at a stage; None, None: nothing yet."""
        if rule == "margin":
            best = self.stage_best[stage]
            if best is None:
                return None, None
            return best, (best - score) / max(abs(best), 1e-12)
        history = sorted(self.history[stage], reverse=True)
        if len(history) < MIN_HISTORY:
            return None, None
        above = sum(1 for value in history if value > score)
        cut = history[min(len(history) - 1, max(0, math.ceil(threshold * len(history)) - 1))]
        return cut, (1 + above) / (1 + len(history))


@dataclasses.dataclass
class _Open:
    """A program the rules judged, until its outcome is known."""

    island: int
    verdicts: list[Judged] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)  # through each verdict
    total: float = 0.0


class Cascade:
    """The stages, their rules, and the fold of the log they decide from."""

    def __init__(self, stages: list[StageConfig], train_set: str, audit: float,
                 adaptive: bool, min_band: int, seed: int, emit: Emit | None = None):
        self.stages = stages
        self.train_set = train_set
        self.audit_share = audit
        self.tuner = CascadeTuner([(s.threshold, *s.limits()) for s in stages], adaptive,
                                  min_band, emit)
        self._seed = seed
        self.train_ids: tuple[str, ...] | None = None  # the database's order
        self._islands: dict[int, _Island] = {}
        self._set_scores: dict[str, dict[int, float]] = {}  # hash -> other sets' stage scores
        self._by_program: dict[int, dict[int, float]] = {}  # program id -> the same
        self._open: collections.OrderedDict[int, _Open] = collections.OrderedDict()

    @classmethod
    def of(cls, config: ExperimentConfig, emit: Emit | None = None) -> Cascade | None:
        """The cascade a resolved config runs (None: none)."""
        cascade = config.cascade
        if cascade.mode == "off" or not cascade.stages:
            return None
        return cls(list(cascade.stages), config.problem.inputs, cascade.audit,
                   cascade.mode == "adaptive", cascade.min_band, config.seed, emit)

    @property
    def last(self) -> int:
        """The final stage's index: the rest of the training set."""
        return len(self.stages)

    def job(self, stage: int) -> tuple[str, list[str] | None]:
        """The input set and ids a stage runs (None: the whole set)."""
        if stage < self.last and isinstance(self.stages[stage].inputs, str):
            return self.stages[stage].inputs, None
        assert self.train_ids is not None, "the initial program is registered first"
        return self.train_set, [i for i in self._slice(stage) if i not in self._slice(stage - 1)]

    def _slice(self, stage: int) -> list[str]:
        """The training ids run by stages up to `stage` (all of them after the last)."""
        ids = list(self.train_ids or ())
        if stage >= self.last:
            return ids
        sizes = [s.inputs for s in self.stages[:stage + 1] if isinstance(s.inputs, int)]
        return ids[:sizes[-1]] if sizes else []

    # -- a program through its stages -----------------------------------------

    def advance(self, evaluation: Evaluation, at: Underway) -> Advance:
        """The program's stage `at.stage` came back as `evaluation`."""
        done = at.done + (evaluation,)
        if at.stage == self.last:
            return Advance(None, at, self._merged(done, "ok"))
        if not evaluation.ok:
            threshold = self.tuner.threshold(at.stage)
            event = self._event(evaluation, at, None, Verdict(None, None, threshold, False, False))
            return Advance(event, at, self._ended(done, evaluation.status, evaluation.reason))
        score = self._stage_score(at.stage, done)
        verdict = self.judge(at.stage, at.island, score, at.sample, at.audit)
        event = self._event(evaluation, at, score, verdict)
        if not (verdict.passed or verdict.audit):
            why = (f"stopped at stage {at.stage}: {score:.6g} needs a threshold of "
                   f"{verdict.needs:.4g}, {verdict.threshold:.4g} in force")
            return Advance(event, at, self._ended(done, STOPPED, why))
        going = dataclasses.replace(at, stage=at.stage + 1, done=done, audit=verdict.audit)
        if going.stage == self.last and not self.job(self.last)[1]:
            return Advance(event, going, self._merged(done, "ok"))  # no input left to run
        return Advance(event, going, None)

    def judge(self, stage: int, island: int, score: float, sample: int,
              audited: bool = False) -> Verdict:
        """A rule's verdict on a stage score, from the state the log has built."""
        threshold = self.tuner.threshold(stage)
        reference, needs = self._island(island).compare(stage, self.stages[stage].rule, score,
                                                        threshold)
        passed = needs is None or needs <= threshold
        audit = not passed and (audited or audit_draw(self._seed, sample) < self.audit_share)
        return Verdict(reference, needs, threshold, passed, audit)

    def _stage_score(self, stage: int, done: tuple[Evaluation, ...]) -> float:
        if isinstance(self.stages[stage].inputs, str):
            return statistics.fmean(done[-1].scores.values())
        return statistics.fmean(self._train_scores(done).values())

    def _train_scores(self, done: tuple[Evaluation, ...]) -> dict[str, float]:
        scores: dict[str, float] = {}
        for evaluation in done:
            if evaluation.input_set == self.train_set and evaluation.scores:
                scores.update(evaluation.scores)
        return scores

    def _merged(self, done: tuple[Evaluation, ...], status: str, reason: str = "") -> Evaluation:
        scores = self._train_scores(done) or None
        return Evaluation(status, scores, reason, sum(e.duration for e in done), self.train_set)

    def _ended(self, done: tuple[Evaluation, ...], status: str, reason: str) -> Evaluation:
        """A stopped program keeps its partial scores; a failed one has none."""
        merged = self._merged(done, status, reason)
        return merged if status == STOPPED else dataclasses.replace(merged, scores=None)

    def _event(self, evaluation: Evaluation, at: Underway, score: float | None,
               verdict: Verdict) -> events.Stage:
        return events.Stage(
            sample=at.sample, sampler=at.sampler, hash=at.hash, island=at.island,
            stage=at.stage, input_set=evaluation.input_set, status=evaluation.status,
            score=score, scores=evaluation.scores, duration=round(evaluation.duration, 6),
            reference=verdict.reference, needs=_round(verdict.needs),
            threshold=verdict.threshold, passed=verdict.passed, audit=verdict.audit)

    # -- the fold of the log ----------------------------------------------------

    def apply(self, event: events.Event) -> None:
        """Learns from one event of the log, in the order written."""
        if isinstance(event, events.Sample):
            request = max(1, event.request or 1)
            self.tuner.on_proposal(event.gpu_seconds or event.cpu_seconds
                                   or (event.latency or 0.0) / request)
        elif isinstance(event, events.Stage):
            self._on_stage(event)
        elif isinstance(event, events.Evaluation):
            if event.sample is not None and not event.duplicate:
                self._on_evaluation(event)
        elif isinstance(event, events.Registration):
            self._on_registration(event)
        elif isinstance(event, events.Discard):
            self._close(event.sample, improved=False)
        elif isinstance(event, events.Reset):
            self._on_reset(event)

    def _on_stage(self, event: events.Stage) -> None:
        self.tuner.on_stage(event.stage, event.duration or 0.0)
        opened = self._open.setdefault(event.sample, _Open(event.island))
        opened.total += event.duration or 0.0
        if event.status != "ok":
            return
        self._island(event.island).history[event.stage].append(event.score)
        if isinstance(self.stages[event.stage].inputs, str):
            self._set_scores.setdefault(event.hash, {})[event.stage] = event.score
        opened.verdicts.append(Judged(event.stage, event.needs, event.threshold,
                                      bool(event.passed), bool(event.audit)))
        opened.seconds.append(opened.total)

    def _on_evaluation(self, event: events.Evaluation) -> None:
        self.tuner.on_evaluation(event.duration or 0.0)
        opened = self._open.get(event.sample)
        if opened is None:
            return
        opened.total = event.duration or 0.0
        if event.status != "ok":
            self._close(event.sample, improved=False)
        while len(self._open) > _OPEN_LIMIT:  # registered nowhere: already on its island
            self._close(next(iter(self._open)), improved=False)

    def _on_registration(self, event: events.Registration) -> None:
        if self.train_ids is None:
            self._set_train_ids(tuple(event.scores))
        stage_scores = self._stage_scores(event.scores, self._set_scores.pop(event.hash, {}))
        self._by_program[event.program_id] = stage_scores
        improved = self._island(event.island).add(event.score, stage_scores)
        if event.sample is not None:
            if improved:
                self.tuner.on_improvement()
            self._close(event.sample, improved)

    def _on_reset(self, event: events.Reset) -> None:
        founder = event.founder
        island = self._islands[event.island] = _Island(len(self.stages))
        copied = self._by_program.get(founder.parents[0], {}) if founder.parents else {}
        island.add(founder.score, self._stage_scores(founder.scores, copied))

    def _stage_scores(self, scores: dict[str, float],
                      other_sets: dict[int, float]) -> dict[int, float]:
        """A fully scored program's score on each stage: its training slices'
        from its scores, other sets' as their stage events said."""
        found = {stage: value for stage, value in other_sets.items()}
        for stage, config in enumerate(self.stages):
            if isinstance(config.inputs, int):
                found[stage] = statistics.fmean(scores[i] for i in self._slice(stage))
        return found

    def _close(self, sample: int, improved: bool) -> None:
        opened = self._open.pop(sample, None)
        if opened is None or not opened.verdicts:
            return
        after = [opened.total - through for through in opened.seconds]
        self.tuner.on_outcome(opened.verdicts, after, improved)

    def _set_train_ids(self, ids: tuple[str, ...]) -> None:
        for index, stage in enumerate(self.stages):
            if isinstance(stage.inputs, int) and stage.inputs > len(ids):
                raise ConfigError(f"cascade.stages.{index}.inputs: {stage.inputs} inputs, but "
                                  f"the training set '{self.train_set}' has {len(ids)}")
        self.train_ids = ids

    def _island(self, island: int) -> _Island:
        if island not in self._islands:
            self._islands[island] = _Island(len(self.stages))
        return self._islands[island]

    def summary(self) -> dict[str, Any]:
        """The tuner's figures per stage, for the "cascade_summary" scheduler event."""
        return {"audit": self.audit_share, **self.tuner.summary()}


class Observed:
    """The run log, with every event the loop writes also handed to `observe`
    (a cascade's `apply`)."""

    def __init__(self, log: Any, observe: Callable[[events.Event], None]):
        self._log = log
        self._observe = observe

    def write(self, event: events.Event) -> Any:
        written = self._log.write(event)
        self._observe(event)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def audit_draw(seed: int, sample: int) -> float:
    """A uniform number in [0, 1) fixed by the seed and the sample id: the
    same program is audited in a run and in its replay."""
    digest = hashlib.blake2b(f"{seed}:{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 9)
