"""A simulated search for cascades, where what every program would score is known.

No model and no sandbox: a proposal is a program of hidden quality q near
the quality of its island's best (most a little worse, a few better), and
its score on training input i is q plus a noise of its own on that input,
so a slice of the inputs estimates the full score with an error that
shrinks with the slice. Evaluating costs seconds per input plus a start-up per job, a
proposal seconds of its own. The programs go one at a time through the real
cascade (funsearch/cascades.py: its rules, its fold of the event log, the
tuner of scheduling/cascade.py), whose events are kept, so a test can replay
them; and because every stopped program's full score is known, so is how
many improvements the cascade really lost, which the audit share estimates.

Improvements get smaller as the run goes: a child's spread around the best
shrinks by `decay` at each improvement.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from funsearch import events
from funsearch.cascades import Cascade, Underway
from funsearch.config import CascadeConfig, StageConfig
from funsearch.evaluator import Evaluation


@dataclasses.dataclass(frozen=True)
class World:
    """What the simulated problem is like.

    Attributes:
      inputs: training inputs.
      noise: the spread of a program's score from input to input around its
        quality (large: a few inputs say little about the rest).
      head: the first `head` inputs do not tell programs apart (every
        program scores its noise alone there): a first stage on them is no
        guide at all.
      spread: a child's spread around its island's best (times decay^k after
        k improvements); `bias` (in units of the spread): how much worse it is
        on average (2: about one child in 44 is better).
      proposal_seconds, input_seconds, job_seconds: what a proposal, one
        input's evaluation and one evaluation job cost.
    """

    inputs: int = 16
    noise: float = 0.05
    head: int = 0
    spread: float = 0.1
    bias: float = 2.0
    decay: float = 0.97
    proposal_seconds: float = 0.05
    input_seconds: float = 0.03
    job_seconds: float = 0.01


@dataclasses.dataclass
class Result:
    """What a simulated run did.

    Attributes:
      improvements: registrations that raised the island's best.
      compute: proposal and sandbox seconds spent.
      evaluation: sandbox seconds spent.
      best: the island's best at the end; initial: the initial program's
        score; curve: (compute, best) at each rise.
      lost: stopped programs (not audited) that would have improved the
        island at the time: the truth the audit estimates.
      estimated_lost: the cascade's estimate of them (scheduling/cascade.lost).
      proposals: programs proposed.
      events: the log, for replays.
      cascade: the cascade, as the run leaves it (None: none).
    """

    improvements: int = 0
    compute: float = 0.0
    evaluation: float = 0.0
    best: float = 0.0
    initial: float = 0.0
    curve: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    lost: int = 0
    estimated_lost: float = 0.0
    proposals: int = 0
    events: list[events.Event] = dataclasses.field(default_factory=list)
    cascade: Cascade | None = None


class CascadeSimulation:
    """One island, one program at a time, through a real Cascade."""

    def __init__(self, world: World, cascade: CascadeConfig | None, seed: int = 0):
        self.world = world
        self._rng = np.random.default_rng(seed)
        self._ids = [f"i{index:03d}" for index in range(world.inputs)]
        self.result = Result()
        config = cascade if cascade is not None and cascade.mode != "off" else None
        self.cascade = None if config is None else Cascade(
            list(config.stages), "train", config.audit, config.mode == "adaptive",
            config.min_band, seed, emit=self._emit)
        self.result.cascade = self.cascade
        self._next_id = 0
        self._best_quality = 0.0
        initial = self._scores(0.0)
        self.result.best = self.result.initial = float(np.mean(list(initial.values())))
        self._write(self._registration(self.result.best, initial, None, 0.0))

    def run(self, compute: float) -> Result:
        """Proposes until `compute` seconds are spent."""
        sample = 0
        while self.result.compute < compute:
            self._propose(sample)
            sample += 1
        if self.cascade is not None:
            self.result.estimated_lost = sum(
                stage["lost"] for stage in self.cascade.summary()["stages"])
        return self.result

    def _propose(self, sample: int) -> None:
        world, result = self.world, self.result
        step = world.spread * world.decay ** result.improvements
        quality = self._best_quality + step * (self._rng.normal() - world.bias)
        scores = self._scores(quality)
        result.proposals += 1
        result.compute += world.proposal_seconds
        self._write(events.Sample(sample=sample, sampler="simulated", island=0, epoch=0,
                                  parents=[0], latency=world.proposal_seconds,
                                  request_id=sample, asked=1, request=1, prompt_tokens=0,
                                  completion_tokens=0, gpu_seconds=0.0, cpu_seconds=0.0,
                                  usd=0.0))
        final, underway = self._evaluate(sample, scores)
        self._write(events.Evaluation.of(
            final, "", f"h{sample}", False, sample, "simulated",
            stage=underway and underway.stage, audit=bool(underway and underway.audit)))
        full = float(np.mean(list(scores.values())))
        if final.ok:
            self._write(self._registration(final.score, final.scores, sample, quality))
        elif underway is not None and not underway.audit and full > result.best:
            result.lost += 1  # stopped, and it would have improved the island

    def _evaluate(self, sample: int, scores: dict[str, float]
                  ) -> tuple[Evaluation, Underway | None]:
        if self.cascade is None:
            return self._job(scores, self._ids), None
        underway = Underway(0, 0, sample, "simulated", f"h{sample}")
        while True:
            _, ids = self.cascade.job(underway.stage)
            advance = self.cascade.advance(self._job(scores, ids), underway)
            if advance.event is not None:
                self._write(advance.event)
            underway = advance.underway
            if advance.final is not None:
                return advance.final, underway

    def _job(self, scores: dict[str, float], ids: list[str]) -> Evaluation:
        seconds = self.world.job_seconds + self.world.input_seconds * len(ids)
        self.result.compute += seconds
        self.result.evaluation += seconds
        return Evaluation("ok", {i: scores[i] for i in ids}, duration=seconds,
                          input_set="train")

    def _scores(self, quality: float) -> dict[str, float]:
        noise = self._rng.normal(0.0, self.world.noise, len(self._ids))
        seen = [0.0 if index < self.world.head else quality for index in range(len(self._ids))]
        return {i: q + float(e) for i, q, e in zip(self._ids, seen, noise, strict=True)}

    def _registration(self, score: float, scores: dict[str, float], sample: int | None,
                      quality: float) -> events.Registration:
        result = self.result
        if sample is not None and score > result.best:
            result.improvements += 1
            result.best, self._best_quality = score, quality
            result.curve.append((result.compute, score))
        program_id, self._next_id = self._next_id, self._next_id + 1
        return events.Registration(program_id=program_id, island=0, score=score,
                                   scores=dict(sorted(scores.items())), parents=[],
                                   sampler="simulated", program="", sample=sample,
                                   hash=f"h{sample}")

    def _write(self, event: events.Event) -> None:
        self.result.events.append(event)
        if self.cascade is not None:
            self.cascade.apply(event)

    def _emit(self, action: str, **fields) -> None:
        self.result.events.append(events.Scheduler(action=action, extra=fields))


def cascade_config(mode: str, threshold: float = 0.5, inputs: int = 4, rule: str = "top",
                   audit: float = 0.1, min_band: int = 12) -> CascadeConfig:
    """A one-stage cascade on the first `inputs` training inputs."""
    stage = StageConfig(inputs=inputs, rule=rule, threshold=threshold)
    return CascadeConfig(mode=mode, stages=[stage], audit=audit, min_band=min_band)

