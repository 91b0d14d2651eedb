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
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from funsearch import config as config_module
from funsearch import runlog
from funsearch.budget import Spent
from funsearch.database import Program, ProgramsDatabase, Reset
from funsearch.engine import Counters, Progress, Status
from funsearch.evaluator import Evaluation

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
    for event in runlog.read_events(run_dir):
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
    progress = Progress(counters, spent, next_sample, best_score, cache)
    return Replayed(database, progress, spec, sessions, len(open_samples))


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
