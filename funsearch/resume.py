"""Resume a run from its event log: replay registrations and resets, go on.

The log is the source of truth of a run. A driver that was killed (SIGKILL
included) leaves `events.jsonl` complete up to its last whole line; replaying
its registration and reset events in order rebuilds the programs database
(every program registered before the kill, on its island, with its id), and
the other events give back the counters, the budget spent (samples, GPU time,
wall time) and the evaluation cache. A cascade (funsearch/cascades.py) is
rebuilt by folding every event into it as the run did when it wrote them, so
its references, measurements and thresholds are those the run had.
experiment.resume then goes on with the same config and the budget left,
appending to the same log after a "resume" event.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from funsearch import cascades, events, outcomes, runlog
from funsearch import config as config_module
from funsearch.database import ProgramsDatabase
from funsearch.evaluator import Evaluation
from funsearch.programs import Reset
from funsearch.progress import Counters, Progress
from funsearch.scheduling.budget import Cost, Spent
from funsearch.scheduling.scheduler import Outcome


@dataclasses.dataclass
class Replayed:
    """A run rebuilt from its log.

    Attributes:
      database: the programs database as the log leaves it.
      progress: the engine's counters, spent budget and cache.
      spec: the spec file's path, as the run used it.
      sessions: how many times the run was started or resumed before.
      end_reason: why its last session stopped (None: it did not stop cleanly).
      unfinished: samples logged without an outcome: they were in flight
        when the driver stopped, and their evaluations are lost.
    """

    database: ProgramsDatabase
    progress: Progress
    spec: str
    sessions: int
    unfinished: int
    end_reason: str | None = None

    def summary(self) -> dict[str, Any]:
        """The fields of the "resume" event."""
        counters = self.progress.counters
        return {"sessions": self.sessions, "samples": counters.samples,
                "registered": counters.registered, "programs": len(self.database.programs()),
                "wall_before": round(self.progress.spent.wall, 3),
                "best_score": self.progress.best_score, "unfinished": self.unfinished}


def load_config(run_dir: str | Path, **overrides: Any) -> config_module.ExperimentConfig:
    """The config a run was started with (config.json), with its spec path made
    absolute as the run resolved it, and dotted-key overrides applied."""
    if not (Path(run_dir) / runlog.CONFIG).is_file():
        raise FileNotFoundError(f"{run_dir}: no {runlog.CONFIG} (not a run directory?)")
    data = runlog.read_config(run_dir)
    start = next((e for e in events.read(run_dir) if e.kind == "run_start"), None)
    if start is None:
        raise ValueError(f"{run_dir}: the run log has no run_start event: nothing to resume")
    data["problem"]["spec"] = start.spec
    overridden = config_module.apply_overrides(data, overrides)
    return config_module.from_dict(data, source=str(Path(run_dir) / runlog.CONFIG),
                                   overridden=overridden)


def replay(run_dir: str | Path, config: config_module.ExperimentConfig) -> Replayed:
    """Rebuilds the database and the engine's progress from the run's log."""
    database = ProgramsDatabase(config.database, seed=config.seed)
    counters, spent = Counters(), Spent()
    cache: dict[str, Evaluation] = {}
    best_score: float | None = None
    next_sample = 0
    open_samples: set[int] = set()
    spec, sessions = "", 0
    end_reason: str | None = None
    session_start = last_t = None
    judge = outcomes.Judge()
    learnt: list[Outcome] = []
    request_sizes = {sampler.name: sampler.samples_per_prompt for sampler in config.samplers}
    folded = cascades.Cascade.of(config)
    for event in events.read(run_dir):
        if folded is not None:
            folded.apply(event)
        judged = judge.add(event)
        if judged is not None:
            learnt.append(_outcome(judged, request_sizes))
        if isinstance(event, events.RunStart):  # a session begins (run_start or resume)
            if session_start is not None:
                spent.wall += last_t - session_start
            session_start, sessions = event.t, sessions + 1
            spec, end_reason = event.spec or spec, None
        last_t = event.t
        if isinstance(event, events.Sample):
            counters.samples += 1
            spent.charge(_cost(event, request_sizes))
            next_sample = max(next_sample, event.sample + 1)
            open_samples.add(event.sample)
        elif isinstance(event, events.Rejection):
            counters.rejected += 1
            open_samples.discard(event.sample)
        elif isinstance(event, events.Evaluation):
            open_samples.discard(event.sample)
            _count_evaluation(event, counters, cache, config.problem.inputs)
            if event.sample is not None and not event.duplicate:
                spent.evaluation_seconds += event.duration or 0.0
        elif isinstance(event, events.Registration):
            database.restore(event.to_program())
            counters.registered += event.sample is not None
        elif isinstance(event, events.Discard):
            counters.discarded += 1
        elif isinstance(event, events.Reset):
            database.apply_reset(Reset(event.island, event.epoch, event.founder.to_program(),
                                       event.source_island))
            counters.resets += 1
        elif isinstance(event, events.RunEnd):
            end_reason = event.reason or "stopped"
        elif isinstance(event, events.Best):
            best_score = event.score if best_score is None else max(best_score, event.score)
    if session_start is None:
        raise ValueError(f"{run_dir}: the run log has no run_start event: nothing to resume")
    spent.wall += last_t - session_start
    learnt += [_outcome(judged, request_sizes) for judged in judge.finish()]
    progress = Progress(counters, spent, next_sample, best_score, cache, learnt, folded)
    return Replayed(database, progress, spec, sessions, len(open_samples), end_reason)


def _cost(sample: events.Sample, request_sizes: dict[str, int]) -> Cost:
    """What the sample cost, as the engine charged it (budget.sample_cost)."""
    request = sample.request or request_sizes.get(sample.sampler, 1)  # older logs lack it
    return Cost(seconds=(sample.latency or 0.0) / max(1, request),
                gpu_seconds=sample.gpu_seconds or 0.0,
                tokens=(sample.prompt_tokens or 0) + (sample.completion_tokens or 0),
                usd=sample.usd or 0.0, cpu_seconds=sample.cpu_seconds or 0.0)


def _outcome(judged: outcomes.Judged, request_sizes: dict[str, int]) -> Outcome:
    """A judged sample as the scheduler learns it."""
    sample = judged.sample
    return Outcome(sample.sampler, _cost(sample, request_sizes), judged.improved,
                   judged.evaluation_seconds,
                   sample.sample - (sample.request_id if sample.request_id is not None
                                    else sample.sample),
                   sample.request or request_sizes.get(sample.sampler, 1))


def _count_evaluation(event: events.Evaluation, counters: Counters,
                      cache: dict[str, Evaluation], input_set: str) -> None:
    """As the engine counted it; the initial program's evaluation (no sample) only fills
    the cache, and a lost evaluation (its actor died) says nothing about the program."""
    if event.sample is not None:
        if event.duplicate:
            counters.duplicates += 1
        else:
            counters.evaluated += 1
        if outcomes.failed(event.status):
            counters.failed += 1
        elif not outcomes.scored(event.status):
            counters.stopped += 1
    if not event.duplicate and outcomes.remembered(event.status):
        cache[event.hash] = Evaluation(event.status, event.scores, event.reason or "",
                                       event.duration or 0.0, input_set)
