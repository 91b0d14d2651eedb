"""What a run did, read from its run directory in one pass over the event log.

`read_run` folds `events.jsonl` into the numbers reports need (the best score
as a step function of the budget spent, outcomes by reason, per-sampler
statistics, the programs and their parents) without keeping the events, so a
long run's log does not have to fit in memory. It reads a live run as far as it
has been written, and a crashed one up to its last whole line; event kinds it
does not know, and fields older runs lack, are ignored. A sample's outcome and
whether it improved are judged by funsearch/outcomes.py, as the run judged them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from funsearch import events, outcomes, runlog
from funsearch.outcomes import OUTCOMES, reason_key
from funsearch.scheduling.budget import Cost, proposal_seconds

# Budget units of equal-budget comparisons, and how each is written.
# compute: the scheduler's "compute" cost (scheduling/budget.in_unit): each sample's
# GPU-seconds (or its share of its request's seconds) plus its evaluation's seconds.
UNITS = {"samples": "samples", "wall": "seconds", "compute": "compute-seconds",
         "gpu_hours": "GPU-hours", "usd": "USD"}


@dataclasses.dataclass(frozen=True)
class BestPoint:
    """The best score rose to `score` once this much budget was spent."""

    samples: int
    wall: float
    compute: float
    gpu_hours: float
    usd: float
    score: float
    program_id: int | None
    sampler: str
    island: int | None

    def at(self, unit: str) -> float:
        return getattr(self, unit)


@dataclasses.dataclass(frozen=True)
class ProgramInfo:
    id: int
    score: float
    island: int | None
    parents: tuple[int, ...]
    sampler: str


@dataclasses.dataclass
class SamplerStats:
    """What one sampler produced; latencies kept for medians."""

    samples: int = 0
    latencies: list[float] = dataclasses.field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    gpu_seconds: float = 0.0
    cpu_seconds: float = 0.0  # a model on CPUs (cores x busy share), the offline proposer
    usd: float = 0.0
    outcomes: Counter = dataclasses.field(default_factory=Counter)
    improvements: int = 0
    errors: int = 0

    @property
    def valid_rate(self) -> float | None:
        return _valid_rate(self.outcomes)


@dataclasses.dataclass
class RunData:
    """A run as reports see it. `wall` is seconds since the run started, not
    counting the time a run was down before a resume."""

    dir: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None
    warnings: list[str] = dataclasses.field(default_factory=list)
    start: events.RunStart | None = None  # the first session's
    end: events.RunEnd | None = None
    failed_start: str | None = None  # why the run could not start (then no end)
    wall: float = 0.0
    samples: int = 0
    compute: float = 0.0  # the scheduler's compute seconds (see UNITS)
    gpu_seconds: float = 0.0
    cpu_seconds: float = 0.0  # proposals' CPU time: models on CPUs, the offline proposer
    usd: float = 0.0
    evaluation_seconds: float = 0.0  # wall time in the sandbox
    evaluation_cpu_seconds: float = 0.0  # where the log has it
    best: list[BestPoint] = dataclasses.field(default_factory=list)
    outcomes: Counter = dataclasses.field(default_factory=Counter)  # (outcome, reason) -> n
    samplers: dict[str, SamplerStats] = dataclasses.field(default_factory=dict)
    programs: dict[int, ProgramInfo] = dataclasses.field(default_factory=dict)
    islands: dict[int, list[int]] = dataclasses.field(default_factory=dict)  # live programs
    improvements: int = 0
    holdout: dict[str, float | None] = dataclasses.field(default_factory=dict)
    kinds: Counter = dataclasses.field(default_factory=Counter)
    stalls: list[tuple[int, str]] = dataclasses.field(default_factory=list)  # (samples, message)
    stages: dict[int, Counter] = dataclasses.field(default_factory=dict)  # stage -> verdicts
    cascade: dict[str, Any] | None = None  # the cascade_summary scheduler event's fields

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def seed(self) -> Any:
        return self.config.get("seed", self.start.seed if self.start else None)

    @property
    def running(self) -> bool:
        """No run_end yet: the run is going, or it crashed."""
        return self.end is None and self.failed_start is None

    @property
    def best_score(self) -> float | None:
        return self.best[-1].score if self.best else None

    @property
    def valid_rate(self) -> float | None:
        by_outcome: Counter = Counter()
        for (outcome, _), n in self.outcomes.items():
            by_outcome[outcome] += n
        return _valid_rate(by_outcome)

    @property
    def evaluation_per_sample(self) -> float | None:
        """Sandbox seconds per proposal."""
        return self.evaluation_seconds / self.samples if self.samples else None

    @property
    def evaluation_per_improvement(self) -> float | None:
        return self.evaluation_seconds / self.improvements if self.improvements else None

    @property
    def improvements_per_1k(self) -> float | None:
        return 1000 * self.improvements / self.samples if self.samples else None

    def extent(self, unit: str) -> float:
        """How much of the budget in `unit` the run has spent so far."""
        return {"samples": float(self.samples), "wall": self.wall, "compute": self.compute,
                "gpu_hours": self.gpu_seconds / 3600, "usd": self.usd}[unit]

    def best_at(self, unit: str, budget: float) -> float | None:
        """The best score once `budget` was spent; None if the run has not
        spent that much (yet), or had no scored program by then."""
        if budget > self.extent(unit) + 1e-9:
            return None
        value = None
        for point in self.best:
            if point.at(unit) > budget:
                break
            value = point.score
        return value

    def reached(self, unit: str, threshold: float) -> float | None:
        """The budget spent when the best score first reached `threshold`."""
        for point in self.best:
            if point.score >= threshold:
                return point.at(unit)
        return None


def _valid_rate(outcomes: Counter) -> float | None:
    """Samples that became a scored program (duplicates included), out of the
    samples with an outcome so far (a live run has some in flight)."""
    decided = sum(outcomes[outcome] for outcome in OUTCOMES)
    scored = outcomes["valid"] + outcomes["duplicate"] + outcomes["stopped"]
    return scored / decided if decided else None


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / runlog.EVENTS).is_file()


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named directly, or found one level inside a folder of runs."""
    found: list[Path] = []
    for path in map(Path, paths):
        if is_run_dir(path):
            found.append(path)
        elif path.is_dir() and (inside := sorted(p for p in path.iterdir() if is_run_dir(p))):
            found.extend(inside)
        else:
            raise FileNotFoundError(f"{path}: not a run directory (no {runlog.EVENTS}) "
                                    "and no run directories inside")
    return found


def read_run(run_dir: str | Path) -> RunData:
    """Reads a run directory. Problems that do not stop the report (a truncated
    last line, a missing config) are warned about and kept in `.warnings`."""
    run_dir = Path(run_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = RunData(run_dir, _read_json(run_dir / runlog.CONFIG),
                      _read_json(run_dir / runlog.SUMMARY, missing=None))
        folder = _Folder(run)
        for event in events.read(run_dir):
            folder.add(event)
    for warning in caught:
        run.warnings.append(str(warning.message))
        warnings.warn(str(warning.message), stacklevel=2)
    return run


def _read_json(path: Path, missing: Any = "warn") -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        if missing != "warn":
            return missing
        warnings.warn(f"{path}: missing; the report has no config for this run", stacklevel=2)
        return {}
    except json.JSONDecodeError as error:
        warnings.warn(f"{path}: not valid JSON ({error}); ignored", stacklevel=2)
        return {} if missing == "warn" else missing


def number(value: Any) -> float | None:
    """A float from a logged value; None for missing, non-numeric or non-finite
    values (the log writes NaN and infinity as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class _Folder:
    """Folds events into a RunData, one at a time."""

    def __init__(self, run: RunData):
        self.run = run
        self.t0: float | None = None
        self.last_t: float | None = None
        self.paused = 0.0  # seconds between a crash and its resume
        self.judge = outcomes.Judge()  # improvements, as the scheduler counted them

    def add(self, event: events.Event) -> None:
        run = self.run
        run.kinds[event.kind] += 1
        session = isinstance(event, events.RunStart)  # run_start or resume
        t = number(event.t)
        if t is not None:
            if self.t0 is None:
                self.t0 = t
            if session and run.start and self.last_t is not None:
                self.paused += max(0.0, t - self.last_t)
            self.last_t = t
            run.wall = max(run.wall, t - self.t0 - self.paused)
        if session and run.start:
            run.end = None  # resumed: going again, whether it ended or crashed before
        judged = self.judge.add(event)
        if judged is not None and judged.improved:
            run.improvements += 1
            self._sampler(judged.sample.sampler).improvements += 1
        handler = getattr(self, "_" + event.kind, None)
        if handler is not None:
            handler(event)

    def _sampler(self, name: Any) -> SamplerStats:
        name = str(name or "?")
        stats = self.run.samplers.get(name)
        if stats is None:
            stats = self.run.samplers[name] = SamplerStats()
        return stats

    def _run_start(self, event: events.RunStart) -> None:
        if not self.run.start:
            self.run.start = event

    def _start_failed(self, event: events.StartFailed) -> None:
        reason, run = str(event.reason or "?"), self.run
        if run.samples == 0 and run.end is None and not run.kinds["resume"]:
            run.failed_start = reason
        else:  # a resume that could not start: the run is what it was before
            warnings.warn(f"{run.dir}: a resume failed to start: {reason}", stacklevel=2)

    def _run_end(self, event: events.RunEnd) -> None:
        self.run.end = event
        if isinstance(event.holdout, dict):
            for input_set, score in event.holdout.items():
                self.run.holdout.setdefault(input_set, number(score))

    def _sample(self, event: events.Sample) -> None:
        run, stats = self.run, self._sampler(event.sampler)
        gpu, usd = number(event.gpu_seconds) or 0.0, number(event.usd) or 0.0
        cpu = number(event.cpu_seconds) or 0.0
        run.samples += 1
        request = max(1, int(number(event.request) or 1))
        run.compute += proposal_seconds(Cost(  # as the scheduler charged it
            seconds=(number(event.latency) or 0.0) / request, gpu_seconds=gpu, cpu_seconds=cpu))
        run.gpu_seconds += gpu
        run.cpu_seconds += cpu
        run.usd += usd
        stats.samples += 1
        stats.gpu_seconds += gpu
        stats.cpu_seconds += cpu
        stats.usd += usd
        if (latency := number(event.latency)) is not None:
            stats.latencies.append(latency)
        stats.prompt_tokens += int(number(event.prompt_tokens) or 0)
        stats.completion_tokens += int(number(event.completion_tokens) or 0)

    def _count(self, sampler: Any, outcome: str, reason: str) -> None:
        self.run.outcomes[(outcome, reason)] += 1
        self._sampler(sampler).outcomes[outcome] += 1

    def _rejection(self, event: events.Rejection) -> None:
        self._count(event.sampler, "rejected", reason_key(event.reason))

    def _evaluation(self, event: events.Evaluation) -> None:
        if not event.duplicate:
            self.run.evaluation_seconds += number(event.duration) or 0.0
            if event.sample is not None:  # as the scheduler charged it
                self.run.compute += number(event.duration) or 0.0
            self.run.evaluation_cpu_seconds += number(event.extra.get("cpu_seconds")) or 0.0
        if event.sample is None:  # the initial program, not a sample
            return
        outcome = outcomes.category(event)
        reason = {"invalid": f"{event.status}: {reason_key(event.reason)}",
                  "duplicate": "same normal form as an earlier program",
                  "stopped": f"by the rule of cascade stage {event.stage}",
                  "valid": "scored"}[outcome]
        self._count(event.sampler, outcome, reason)

    def _stage(self, event: events.Stage) -> None:
        verdicts = self.run.stages.setdefault(int(event.stage or 0), Counter())
        verdict = ("passed" if event.passed else "audited" if event.audit
                   else "stopped" if event.status == "ok" else "failed")
        verdicts[verdict] += 1
        verdicts["seconds"] += number(event.duration) or 0.0

    def _scheduler(self, event: events.Scheduler) -> None:
        if event.action == "cascade_summary":
            self.run.cascade = dict(event.extra)

    def _sampler_error(self, event: events.SamplerError) -> None:
        self._sampler(event.sampler).errors += 1

    def _stall(self, event: events.Stall) -> None:
        message = event.message or f"sampler '{event.sampler}' stalled"
        self.run.stalls.append((self.run.samples, str(message)))

    def _registration(self, event: events.Registration) -> None:
        program = self._program(event)
        if program is not None:
            self._place(program)

    def _reset(self, event: events.Reset) -> None:
        self.run.islands[event.island] = []
        founder = event.founder
        if founder.island is None:
            founder = dataclasses.replace(founder, island=event.island)
        program = self._program(founder)
        if program is not None:
            self._place(program)

    def _holdout(self, event: events.Holdout) -> None:
        self.run.holdout[str(event.input_set)] = number(event.score)

    def _program(self, logged: events.LoggedProgram) -> ProgramInfo | None:
        score, program_id = number(logged.score), logged.program_id
        if score is None or not isinstance(program_id, int):
            return None
        parents = tuple(p for p in logged.parents or () if isinstance(p, int))
        program = ProgramInfo(program_id, score, logged.island, parents,
                              str(logged.sampler or ""))
        self.run.programs[program_id] = program
        return program

    def _place(self, program: ProgramInfo) -> None:
        """On its island, and a new best point if it beats every earlier one."""
        run = self.run
        run.islands.setdefault(program.island, []).append(program.id)
        if run.best and program.score <= run.best[-1].score:
            return
        run.best.append(BestPoint(run.samples, run.wall, run.compute, run.gpu_seconds / 3600,
                                  run.usd, program.score, program.id, program.sampler,
                                  program.island))
