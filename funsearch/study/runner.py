"""Runs a study: choose a run, make it, fit, log; again until the runs are spent.

The effects live here: run directories, the study log, the executor that
makes runs (inline, one after another in this process, or as Ray work via
funsearch/runtime/study_runs.py). The choices come from the pure core
(model.analyse, design.choose). Every decision is logged before its run
starts and every curve when it ends, so a study killed at any point goes on
from its log: finished runs are kept, and runs decided but not finished are
made again with the same arm, budget and seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from funsearch.config import ExperimentConfig
from funsearch.study import design, studylog
from funsearch.study.model import Analysis, analyse
from funsearch.study.observe import Grid, RunCurve, read_curve
from funsearch.study.studyfile import StudyError, StudyFile, arm_config

Emit = Callable[[dict[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """One run to make: `config` has the arm's settings, the budget and seed."""

    run: int
    arm: str
    budget: float  # a fraction of B
    seed: int
    run_dir: Path
    unit: str
    config: ExperimentConfig


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    curve: RunCurve
    stop_reason: str
    run_dir: str


RunFunction = Callable[[RunRequest], RunOutcome]


def run_inline(request: RunRequest) -> RunOutcome:
    """Makes one run in this process (its own runtime, as its config says)."""
    from funsearch import experiment

    result = experiment.run(request.config, run_dir=request.run_dir)
    return RunOutcome(read_curve(result.run_dir, request.unit), result.stop_reason,
                      str(result.run_dir))


class Executor(Protocol):
    def submit(self, request: RunRequest) -> None: ...

    def next_done(self) -> tuple[RunRequest, RunOutcome | BaseException]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Makes the submitted runs one after another, when asked for the next."""

    def __init__(self, run_function: RunFunction = run_inline):
        self._run = run_function
        self._queue: list[RunRequest] = []

    def submit(self, request: RunRequest) -> None:
        self._queue.append(request)

    def next_done(self) -> tuple[RunRequest, RunOutcome | BaseException]:
        request = self._queue.pop(0)
        try:
            return request, self._run(request)
        except Exception as error:  # the study logs it and stops, resumable
            return request, error

    def close(self) -> None:
        self._queue.clear()


def make_executor(study: StudyFile, run_function: RunFunction | None = None) -> Executor:
    if study.runs.executor == "ray":
        from funsearch.runtime.study_runs import RayExecutor

        return RayExecutor(study.runs.address, run_function or run_inline)
    return InlineExecutor(run_function or run_inline)


def grid_of(definition: dict[str, Any]) -> Grid:
    return Grid.log_spaced(definition["budget"], definition["octaves"])


def run_study(study: StudyFile, study_dir: str | Path, run_function: RunFunction | None = None,
              executor: Executor | None = None, on_event: Emit | None = None
              ) -> studylog.StudyState:
    """Runs (or resumes) the study in `study_dir` until its budget of runs is
    spent, a run fails or is stopped; returns the study as its log has it."""
    study_dir = Path(study_dir)
    state = _resumable(study, study_dir)
    executor = executor or make_executor(study, run_function)
    try:
        with studylog.StudyLog(study_dir) as log:
            def emit(kind: str, **fields: Any) -> None:
                event = log.append(kind, **fields)
                if on_event is not None:
                    on_event(event)

            emit("study_start", name=study.name, definition=study.definition(),
                 runs=study.runs.model_dump(mode="json"), resumed=state.sessions > 0,
                 done=len(state.done()))
            reason = _Loop(study, study_dir, state, emit, executor).run()
            emit("study_end", reason=reason, runs=len(state.done()))
    finally:
        executor.close()
    return studylog.fold(studylog.read(study_dir))


def _resumable(study: StudyFile, study_dir: Path) -> studylog.StudyState:
    if not studylog.exists(study_dir):
        return studylog.StudyState()
    state = studylog.fold(studylog.read(study_dir))
    if state.definition is not None and state.definition != study.definition():
        changed = sorted(key for key in study.definition()
                         if state.definition.get(key) != study.definition()[key])
        raise StudyError(f"{study_dir}: the study there has other {', '.join(changed)}; "
                         "use another directory (--dir) or the study file it was made with")
    return state


class _Loop:
    """Keeps `parallel` runs going, choosing each when a slot frees."""

    def __init__(self, study: StudyFile, study_dir: Path, state: studylog.StudyState,
                 emit: Callable[..., None], executor: Executor):
        self.study, self.dir, self.state = study, study_dir, state
        self.emit, self.executor = emit, executor
        self.grid = grid_of(study.definition())
        self.arms = list(study.arms)
        self.in_flight: dict[int, studylog.RunRecord] = {}
        self._analysis: tuple[int, Analysis] | None = None
        self.stop_reason = ""

    def run(self) -> str:
        redo = sorted(self.state.unfinished(), key=lambda record: record.run)
        while True:
            while len(self.in_flight) < self.study.runs.parallel:
                record = redo.pop(0) if redo else self._decide()
                if record is None:
                    break
                self._submit(record)
            if not self.in_flight:
                return self.stop_reason or "nothing left to run"
            request, outcome = self.executor.next_done()
            failure = self._finish(self.in_flight.pop(request.run), outcome)
            if failure:
                self._drain()
                return failure

    def _decide(self) -> studylog.RunRecord | None:
        budgets = self._affordable()
        if budgets is None:
            return None
        counts = {arm: 0 for arm in self.arms}
        for record in self.state.runs.values():
            counts[record.arm] = counts.get(record.arm, 0) + 1
        pending = [(record.arm, record.budget) for record in self.in_flight.values()]
        choice = design.choose(self.analysis(), self.arms, counts, pending, budgets,
                               self.study.runs.initial, self.study.runs.compute is not None)
        number = self.state.next_run
        record = studylog.RunRecord(number, choice.arm, choice.budget,
                                    self.study.runs.seed + number, choice.rule, choice.reason,
                                    choice.gain)
        self.state.runs[number] = record
        self.emit("decision", run=number, arm=record.arm, budget=record.budget,
                  seed=record.seed, rule=choice.rule, reason=choice.reason, gain=choice.gain,
                  candidates=[c.to_json() for c in choice.candidates[:12]],
                  p_best={arm: round(p, 4) for arm, p in self.analysis().p_best.items()})
        return record

    def _affordable(self) -> list[float] | None:
        """The run budgets the study may still choose; None when spent."""
        runs = self.study.runs
        if len(self.state.runs) >= runs.count:
            self.stop_reason = f"budget of runs spent ({runs.count} runs)"
            return None
        budgets = runs.budgets
        if runs.compute is not None:
            spent = sum(record.budget for record in self.state.runs.values()) * self.study.budget
            budgets = [b for b in budgets if b * self.study.budget <= runs.compute - spent + 1e-9]
            if not budgets:
                self.stop_reason = (f"compute budget spent ({spent:g} of {runs.compute:g} "
                                    f"{self.study.unit})")
                return None
        return budgets

    def analysis(self) -> Analysis:
        """The fits of the finished runs (refitted only when a run finishes)."""
        done = len(self.state.done())
        if self._analysis is None or self._analysis[0] != done:
            self._analysis = (done, analyse(self.state.curves(self.arms), self.grid))
        return self._analysis[1]

    def _submit(self, record: studylog.RunRecord) -> None:
        run_dir = _fresh(self.dir / "runs" / f"{record.run:03d}-{record.arm}-seed{record.seed}")
        config = arm_config(self.study, record.arm, record.budget, record.seed,
                            out=str(self.dir / "runs"))
        record.run_dir = str(run_dir)
        self.in_flight[record.run] = record
        self.emit("run_start", run=record.run, arm=record.arm, budget=record.budget,
                  seed=record.seed, run_dir=str(run_dir))
        self.executor.submit(RunRequest(record.run, record.arm, record.budget, record.seed,
                                        run_dir, self.study.unit, config))

    def _finish(self, record: studylog.RunRecord, outcome: RunOutcome | BaseException) -> str:
        """Logs a finished run; a reason to stop the study, or ""."""
        if isinstance(outcome, BaseException):
            record.failed = f"{type(outcome).__name__}: {outcome}"[:1000]
            self.emit("run_failed", run=record.run, arm=record.arm, reason=record.failed)
            return f"run {record.run} ({record.arm}) failed: {record.failed}"
        if outcome.stop_reason == "stopped":
            self.emit("run_stopped", run=record.run, arm=record.arm, run_dir=outcome.run_dir)
            return f"run {record.run} ({record.arm}) was stopped; the study goes on from here"
        record.curve, record.stop_reason = outcome.curve, outcome.stop_reason
        self.emit("run_end", run=record.run, arm=record.arm, budget=record.budget,
                  seed=record.seed, run_dir=outcome.run_dir, stop_reason=outcome.stop_reason,
                  best_score=outcome.curve.points[-1][1] if outcome.curve.points else None,
                  curve=outcome.curve.to_json())
        self.emit("fit", after_run=record.run, **self.analysis().to_json())
        return ""

    def _drain(self) -> None:
        """Waits for the runs still going and logs them, before stopping."""
        while self.in_flight:
            request, outcome = self.executor.next_done()
            self._finish(self.in_flight.pop(request.run), outcome)


def _fresh(path: Path) -> Path:
    """`path`, or `path-2`, ... when a stopped attempt left a directory there."""
    candidate, suffix = path, 1
    while candidate.exists():
        suffix += 1
        candidate = path.with_name(f"{path.name}-{suffix}")
    return candidate
