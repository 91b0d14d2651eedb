"""The event log's schema: every kind of event a run writes, with its fields.

`events.jsonl` is the source of truth of a run (funsearch/runlog.py keeps the
file); this module says what is in it. Each kind is a frozen dataclass below,
its fields in the order they are written. The engine, the experiment and the
runtimes write events through `RunLog.write(event)`; `resume`, the reports and
`export` read them back through `read`/`records`, so a field is named in one
place. What an event says about its sample (improved, failed, ...) is judged
in funsearch/outcomes.py.

Logs stay readable as the schema grows: a field an older log lacks reads as
None, a field this version does not know is kept in `extra`, and an event of
a kind it does not know (a newer writer's) reads as `Other`, which readers
pass by. A log whose `run_start` or `resume` says a newer VERSION than this
one fails to read with a message naming both.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from funsearch import programs, runlog

if TYPE_CHECKING:
    from funsearch import evaluator

# The format written by this version, and the newest it reads. Raise it when
# an event changes meaning (not when one gains a field or a kind is added).
VERSION = 1


class EventLogError(ValueError):
    """A log this version cannot read; the message names the file and why."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """One line of the log. `t`: Unix time, set when the line is written;
    `extra`: fields this version does not declare (written as they are)."""

    kind: ClassVar[str] = ""
    t: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The fields to write, in order (not `kind` and `t`: the log adds them)."""
        values = {name: _plain(getattr(self, name)) for name in _declared(type(self))}
        values.update(self.extra)
        return values


KINDS: dict[str, type[Event]] = {}


def _kind(name: str):
    """Declares a dataclass as the event of kind `name`."""

    def declare(cls: type) -> type[Event]:
        cls = dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        cls.kind = name
        KINDS[name] = cls
        return cls

    return declare


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoggedProgram:
    """A program as the log has it: a registration's, or a reset's founder."""

    program_id: int
    island: int
    score: float
    scores: dict[str, float]
    parents: list[int]
    sampler: str
    program: str

    @classmethod
    def of(cls, program: programs.Program) -> LoggedProgram:
        return cls(**_program_fields(program))

    def to_program(self) -> programs.Program:
        """The database's Program again (to restore it)."""
        return programs.Program(id=self.program_id, source=self.program,
                                scores=dict(self.scores), score=self.score, island=self.island,
                                parents=tuple(self.parents), sampler=self.sampler or "")


# -- a session of a run -----------------------------------------------------------


@_kind("run_start")
class RunStart(Event):
    """A run begins (experiment.run): what it is and where it runs."""

    name: str
    seed: int
    spec: str  # the spec file's path, as the run resolved it
    inputs: str | None = None  # the training input set (None in older logs)
    problem: str | None = None  # spec.problem_hash: runs of one problem compare
    isolation: str
    isolation_detail: str
    runtime: str
    samplers: list[str]
    version: int = VERSION  # of the event log; None in logs older than the field
    format: str = "native"  # of the problem (funsearch/formats/): native, deepmind, openevolve
    notes: list[str] = dataclasses.field(default_factory=list)  # what the format means here
    # Programs in a process apart from the run function (sandbox/program.py); who
    # scores, and what a program can still forge ("": nothing but its answers).
    # None and "" in logs older than the fields.
    split: bool | None = None
    scoring: str = ""
    forgeable: str = ""


@_kind("resume")
class Resume(RunStart):
    """A run goes on after a stop or a crash (experiment.resume): what the log
    replayed (resume.Replayed.summary)."""

    sessions: int
    samples: int
    registered: int
    programs: int
    wall_before: float
    best_score: float | None
    unfinished: int  # samples in flight when the driver stopped


@_kind("start_failed")
class StartFailed(Event):
    """A run that could not start, and why (then there is no run_end)."""

    reason: str


@_kind("run_end")
class RunEnd(Event):
    """A run stopped cleanly (a budget, a signal, a broken sampler)."""

    reason: str  # why the run stopped
    counters: dict[str, int]  # progress.Counters
    best_score: float | None
    best_program_id: int | None
    holdout: dict[str, float | None]  # input set -> mean score of the best program


@_kind("holdout")
class Holdout(Event):
    """The best program scored on a held-out input set at the end."""

    program_id: int
    input_set: str
    status: str
    score: float | None
    scores: dict[str, float] | None
    reason: str


@_kind("summary_error")
class SummaryError(Event):
    """The spec's summary function failed on the best program's scores."""

    input_set: str
    reason: str


# -- a sample and what became of it -------------------------------------------------


@_kind("sample")
class Sample(Event):
    """A sample arrived: which prompt it answered and what it cost."""

    sample: int
    sampler: str
    island: int
    epoch: int
    parents: list[int]  # program ids shown in its prompt
    latency: float  # seconds of its request (shared by the request's samples)
    request_id: int  # its request: the id of the request's first sample (its place in
    # the request, which the scheduler weighs samples per prompt by: sample - request_id)
    asked: int  # samples asked of its request (more than `request`: some were lost)
    request: int  # samples in its request (None in older logs)
    prompt_tokens: int
    completion_tokens: int
    gpu_seconds: float
    cpu_seconds: float  # a model on CPUs (cores x busy time), the offline proposer (its thread)
    usd: float


@_kind("rejection")
class Rejection(Event):
    """A sample that did not become a program (parsing.py says why)."""

    sample: int
    sampler: str
    reason: str
    text: str  # its start


@_kind("evaluation")
class Evaluation(Event):
    """A program's evaluation (sample None: the initial program's). `duplicate`:
    the result of an earlier evaluation of the same normal form, nothing ran.

    Under a cascade (funsearch/cascades.py) this is the program's last word,
    after its `stage` events: status "stopped" when a stage's rule stopped it,
    with `scores` the training inputs it was run on (partial, never
    registered) and `score` the mean on the stage it stopped at; `duration`
    is the time of all its stages. `stage`: the stages it went through (its
    filter stages passed, or the one it stopped at; None without a cascade);
    `audit`: it failed a rule and was evaluated in full anyway, to measure
    what stopping costs."""

    sample: int | None
    sampler: str
    hash: str
    duplicate: bool
    status: str  # evaluator.Evaluation.status: "ok", "timeout", ..., "lost", or "stopped"
    score: float | None
    scores: dict[str, float] | None
    reason: str
    duration: float
    program: str
    metrics: dict[str, dict[str, Any]] | None = None  # per input: the spec's metrics function
    stage: int | None = None
    audit: bool = False

    @classmethod
    def of(cls, evaluation: evaluator.Evaluation, program: str, program_hash: str,
           duplicate: bool, sample: int | None, sampler: str, stage: int | None = None,
           audit: bool = False) -> Evaluation:
        return cls(sample=sample, sampler=sampler, hash=program_hash, duplicate=duplicate,
                   status=evaluation.status, score=evaluation.score, scores=evaluation.scores,
                   reason=evaluation.reason, duration=round(evaluation.duration, 6),
                   program=program, metrics=evaluation.metrics,
                   stage=stage, audit=audit)


@_kind("stage")
class Stage(Event):
    """One filter stage of a program's cascade evaluation (funsearch/cascades.py)
    and the rule's verdict on it. `score`/`scores`: the stage's own inputs;
    `reference`: what the rule compared with (the island's best on the stage,
    or the score at the island's top fraction; None: nothing to compare with
    yet, the program goes on); `needs`: the smallest threshold that would
    have let it pass; `threshold`: the margin or fraction in force;
    `passed`: the rule let it go on; `audit`: it did not pass, and goes on
    anyway (a random share of stopped programs, evaluated in full to measure
    how often a stop loses an improvement)."""

    sample: int
    sampler: str
    hash: str
    island: int
    stage: int
    input_set: str
    status: str
    score: float | None
    scores: dict[str, float] | None
    duration: float
    reference: float | None
    needs: float | None  # the threshold it would have needed to pass (None: no reference)
    threshold: float
    passed: bool
    audit: bool


@_kind("registration")
class Registration(LoggedProgram, Event):
    """A program put on an island (sample None: a copy of the initial program)."""

    sample: int | None
    hash: str  # code.normal_hash of the program

    @classmethod
    def of(cls, program: programs.Program, sample: int | None) -> Registration:
        return cls(sample=sample, hash=program.hash, **_program_fields(program))

    def to_program(self) -> programs.Program:
        return dataclasses.replace(super().to_program(), hash=self.hash or "")


@_kind("discard")
class Discard(Event):
    """A scored program the database did not register (its island was reset
    since the prompt, or its scores are not what the database takes)."""

    sample: int
    sampler: str
    island: int
    reason: str


@_kind("reset")
class Reset(Event):
    """An island emptied and refounded with a copy of a surviving island's best."""

    island: int
    epoch: int
    source_island: int
    founder: LoggedProgram

    def __post_init__(self) -> None:
        if isinstance(self.founder, dict):  # read from the log
            object.__setattr__(self, "founder", LoggedProgram(**_values(LoggedProgram,
                                                                        self.founder)))

    @classmethod
    def of(cls, reset: programs.Reset) -> Reset:
        return cls(island=reset.island, epoch=reset.epoch, source_island=reset.source_island,
                   founder=LoggedProgram.of(reset.founder))


@_kind("best")
class Best(Event):
    """The run's best score rose."""

    program_id: int
    score: float
    sample: int | None
    sampler: str
    island: int

    @classmethod
    def of(cls, program: programs.Program, sample: int | None) -> Best:
        return cls(program_id=program.id, score=program.score, sample=sample,
                   sampler=program.sampler, island=program.island)


# -- the samplers and the runtime ----------------------------------------------------


@_kind("sampler_error")
class SamplerError(Event):
    """A request to a sampler raised instead of returning samples."""

    sampler: str
    island: int
    reason: str


@_kind("stall")
class Stall(Event):
    """A sampler whose last `count` samples were all duplicates or rejections."""

    sampler: str
    count: int
    reasons: dict[str, int]  # most common first
    message: str


@_kind("scheduler")
class Scheduler(Event):
    """What the scheduler decided and on what estimates (scheduling/scheduler.py).
    `action` "controller": the in-flight limits and the controller's estimates;
    "decisions": the policy, decisions since the last such event and every
    sampler's estimates; "ledger": every sampler's costs at the end. Those
    fields are the scheduler's own and stay in `extra`."""

    action: str


@_kind("sampler_retry")
class SamplerRetry(Event):
    """A call to a sampler actor that died, sent again (runtime/replicas.py)."""

    actor: int
    attempt: int
    reason: str


@_kind("evaluation_retry")
class EvaluationRetry(SamplerRetry):
    """A call to an evaluator actor that died, sent again."""


@_kind("evaluation_lost")
class EvaluationLost(Event):
    """Evaluations whose actors kept failing: they come back with status "lost"."""

    reason: str
    input_set: str | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Other(Event):
    """An event of a kind this version does not declare; its fields are in `extra`."""

    name: str

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.name

    def fields(self) -> dict[str, Any]:
        return dict(self.extra)


# -- reading ----------------------------------------------------------------------------


def read(run_dir: str | Path) -> Iterator[Event]:
    """The events of a run, typed, also while it is being written (a line cut
    short by a crash is skipped with a warning: runlog.read_events)."""
    for record in records(run_dir):
        yield parse(record)


def records(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The events as the log has them (for export), checked for a newer VERSION."""
    for record in runlog.read_events(run_dir):
        if record.get("kind") in ("run_start", "resume"):
            version = record.get("version") or 1
            if not isinstance(version, int) or version > VERSION:
                raise EventLogError(
                    f"{Path(run_dir) / runlog.EVENTS}: event log version {version!r}, written "
                    f"by a newer funsearch; this one reads versions up to {VERSION}: upgrade "
                    "funsearch to read this run")
        yield record


def parse(record: dict[str, Any]) -> Event:
    """One event from its JSON fields."""
    kind = str(record.get("kind", ""))
    cls = KINDS.get(kind, Other)
    values = {"name": kind} if cls is Other else _values(cls, record)
    declared = () if cls is Other else values
    extra = {key: value for key, value in record.items()
             if key not in declared and key not in ("t", "kind")}
    return cls(t=record.get("t"), extra=extra, **values)


def _values(cls: type, record: dict[str, Any]) -> dict[str, Any]:
    """The fields `cls` declares, None where the record lacks one."""
    return {name: record.get(name) for name in _declared(cls)}


@functools.cache
def _declared(cls: type) -> tuple[str, ...]:
    """The fields a kind declares, in the order they are written."""
    own = [field.name for field in dataclasses.fields(cls) if field.name not in ("t", "extra")]
    if issubclass(cls, LoggedProgram) and cls is not LoggedProgram:
        shared = _declared(LoggedProgram)
        own = [name for name in own if name not in shared] + list(shared)
    return tuple(own)


def _program_fields(program: programs.Program) -> dict[str, Any]:
    return {"program_id": program.id, "island": program.island, "score": program.score,
            "scores": program.scores, "parents": list(program.parents),
            "sampler": program.sampler, "program": program.source}


def _plain(value: Any) -> Any:
    """A field's value as written: a founder as the fields of its program."""
    if isinstance(value, LoggedProgram):
        return {name: getattr(value, name) for name in _declared(LoggedProgram)}
    return value
