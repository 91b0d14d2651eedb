"""Resume a run from its event log: replay registrations and resets, go on.

The log is the source of truth of a run. A driver that was killed (SIGKILL
included) leaves `events.jsonl` complete up to its last whole line; replaying
its registration and reset events in order rebuilds the programs database
(every program registered before the kill, on its island, with its id), and
the other events give back the counters, the budget spent (samples, GPU time,
wall time) and the evaluation cache. The run then goes on with the same
config and the budget left, appending to the same log after a "resume" event.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from funsearch import config as config_module
from funsearch import runlog
from funsearch.budget import Cost, Spent
from funsearch.database import Program, ProgramsDatabase, Reset
from funsearch.engine import Counters, Progress, Status
from funsearch.evaluator import Evaluation
from funsearch.scheduler import Outcome

_STARTS = ("run_start", "resume")  # events that begin a session of a run


@dataclasses.dataclass
class Replayed:
    """A run rebuilt from its log.

    Attributes:
      database: the programs database as the log leaves it.
      progress: the engine's counters, spent budget and cache.
      spec: the spec file's path, as the run used it.
      sessions: how many times the run was started or resumed before.
      unfinished: samples logged without an outcome: they were in flight
        when the driver stopped, and their evaluations are lost.
    """

    database: ProgramsDatabase
    progress: Progress
    spec: str
    sessions: int
    unfinished: int

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
    start = next((e for e in runlog.read_events(run_dir) if e["kind"] == "run_start"), None)
    if start is None:
        raise ValueError(f"{run_dir}: the run log has no run_start event: nothing to resume")
    data["problem"]["spec"] = start["spec"]
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return config_module.from_dict(data, source=str(Path(run_dir) / runlog.CONFIG))


def replay(run_dir: str | Path, config: config_module.ExperimentConfig) -> Replayed:
    """Rebuilds the database and the engine's progress from the run's log."""
    database = ProgramsDatabase(config.database, seed=config.seed)
    counters, spent = Counters(), Spent()
    cache: dict[str, Evaluation] = {}
    best_score: float | None = None
    next_sample = 0
    open_samples: set[int] = set()
    spec, sessions = "", 0
    session_start = last_t = None
    outcomes = _Outcomes({sampler.name: sampler.samples_per_prompt for sampler in config.samplers})
    for event in runlog.read_events(run_dir):
        outcomes.read(event)
        kind, sample = event["kind"], event.get("sample")
        if kind in _STARTS:
            if session_start is not None:
                spent.wall += last_t - session_start
            session_start, sessions = event["t"], sessions + 1
            spec = event.get("spec", spec)
        last_t = event["t"]
        if kind == "sample":
            counters.samples += 1
            spent.samples += 1
            spent.gpu_seconds += event.get("gpu_seconds") or 0.0
            spent.usd += event.get("usd") or 0.0
            spent.tokens += ((event.get("prompt_tokens") or 0)
                             + (event.get("completion_tokens") or 0))
            next_sample = max(next_sample, sample + 1)
            open_samples.add(sample)
        elif kind == "rejection":
            counters.rejected += 1
            open_samples.discard(sample)
        elif kind == "evaluation":
            open_samples.discard(sample)
            _count_evaluation(event, counters, cache, config.problem.inputs)
            if sample is not None and not event.get("duplicate"):
                spent.evaluation_seconds += event.get("duration") or 0.0
        elif kind == "registration":
            database.restore(_program(event))
            counters.registered += sample is not None
        elif kind == "discard":
            counters.discarded += 1
        elif kind == "reset":
            database.apply_reset(Reset(event["island"], event["epoch"],
                                       _program(event["founder"]), event["source_island"]))
            counters.resets += 1
        elif kind == "best":
            best_score = event["score"] if best_score is None else max(best_score,
                                                                       event["score"])
    if session_start is None:
        raise ValueError(f"{run_dir}: the run log has no run_start event: nothing to resume")
    spent.wall += last_t - session_start
    progress = Progress(counters, spent, next_sample, best_score, cache, outcomes.finish())
    return Replayed(database, progress, spec, sessions, len(open_samples))


class _Outcomes:
    """The scheduler's reading of a log: each sample's cost, and whether its
    program beat its prompt's best parent, as the engine judged it then."""

    def __init__(self, request_sizes: dict[str, int]):
        self._request_sizes = request_sizes  # for logs that do not say (older runs)
        self._done: list[Outcome] = []
        self._open: dict[int, tuple[str, Cost, tuple[int, ...]]] = {}
        self._evaluated: dict[int, tuple[float, float]] = {}  # sample -> score, seconds
        self._scores: dict[int, float] = {}  # program id -> score

    def read(self, event: dict[str, Any]) -> None:
        kind, sample = event["kind"], event.get("sample")
        if kind == "sample":
            request = event.get("request") or self._request_sizes.get(event["sampler"], 1)
            tokens = (event.get("prompt_tokens") or 0) + (event.get("completion_tokens") or 0)
            cost = Cost(seconds=(event.get("latency") or 0.0) / max(1, request),
                        gpu_seconds=event.get("gpu_seconds") or 0.0, tokens=tokens,
                        usd=event.get("usd") or 0.0, cpu_seconds=event.get("cpu_seconds") or 0.0)
            self._open[sample] = (event["sampler"], cost, tuple(event.get("parents") or ()))
        elif kind == "rejection":
            self._close(sample, improved=False, seconds=0.0)
        elif kind == "evaluation" and sample is not None:
            seconds = 0.0 if event.get("duplicate") else event.get("duration") or 0.0
            if event["status"] == "ok":
                self._evaluated[sample] = (event["score"], seconds)
            else:
                self._close(sample, improved=False, seconds=seconds)
        elif kind == "registration":
            self._scores[event["program_id"]] = event["score"]
            if sample is not None:
                self._judge(sample)
        elif kind == "discard":
            self._judge(sample)
        elif kind == "reset":
            self._scores[event["founder"]["program_id"]] = event["founder"]["score"]

    def finish(self) -> list[Outcome]:
        """The outcomes in the order the engine knew them; a program that was
        already on its island was neither registered nor discarded: no gain."""
        for sample, (_, seconds) in list(self._evaluated.items()):
            self._close(sample, improved=False, seconds=seconds)
        self._evaluated.clear()
        return self._done

    def _judge(self, sample: int) -> None:
        if sample not in self._evaluated or sample not in self._open:
            return
        score, seconds = self._evaluated.pop(sample)
        parents = self._open[sample][2]
        best_parent = max((self._scores.get(p, -math.inf) for p in parents), default=-math.inf)
        self._close(sample, improved=score > best_parent, seconds=seconds)

    def _close(self, sample: int, improved: bool, seconds: float) -> None:
        opened = self._open.pop(sample, None)
        if opened is not None:
            self._done.append(Outcome(opened[0], opened[1], improved, seconds))


def _count_evaluation(event: dict[str, Any], counters: Counters,
                      cache: dict[str, Evaluation], input_set: str) -> None:
    """As the engine counted it; the initial program's evaluation (no sample) only fills
    the cache, and a lost evaluation (its actor died) says nothing about the program."""
    if event.get("sample") is not None:
        if event.get("duplicate"):
            counters.duplicates += 1
        else:
            counters.evaluated += 1
        if event["status"] != "ok":
            counters.failed += 1
    if not event.get("duplicate") and event["status"] != "lost":
        cache[event["hash"]] = Evaluation(event["status"], event.get("scores"),
                                          event.get("reason") or "",
                                          event.get("duration") or 0.0, input_set)


def _program(fields: dict[str, Any]) -> Program:
    """A Program from the fields the engine logs (see engine._program_fields)."""
    return Program(id=fields["program_id"], source=fields["program"],
                   scores=dict(fields["scores"]), score=fields["score"],
                   island=fields["island"], parents=tuple(fields["parents"]),
                   sampler=fields.get("sampler") or "")


def resume(run_dir: str | Path, on_status: Callable[[Status], None] | None = None,
           config: config_module.ExperimentConfig | None = None, **overrides: Any):
    """Continues the run in `run_dir` to its budget; returns its RunResult.

    `config` defaults to the run's own (load_config); `overrides` are dotted
    config keys (e.g. runtime.address, or a larger scheduler.budget.samples to
    extend a finished run).
    """
    from funsearch import experiment

    run_dir = Path(run_dir)
    config = config or load_config(run_dir, **overrides)
    replayed = replay(run_dir, config)
    _end_with_newline(run_dir / runlog.EVENTS)
    return experiment.run(config, on_status, run_dir=run_dir, resume=replayed)


def _end_with_newline(path: Path) -> None:
    """Ends a line cut short by a crash, so the events appended after it stay whole."""
    with open(path, "rb+") as file:
        if file.seek(0, os.SEEK_END) and (file.seek(-1, os.SEEK_END), file.read(1))[1] != b"\n":
            file.write(b"\n")
