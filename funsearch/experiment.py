"""One run of an experiment, start to end (or resumed): the Python API the CLI calls.

Checks the experiment against its spec, creates the run directory, picks the
runtime, runs the engine, and at the end scores the best program on the
held-out input sets beside the initial program and the baselines
(funsearch/results.py), so the summary shows training and held-out scores
side by side (overfitting is visible) and how far the search got.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from funsearch import cascades, events, formats, preflight, results, runlog
from funsearch import spec as spec_module
from funsearch.config import ExperimentConfig
from funsearch.engine import Engine
from funsearch.evaluator import Scoring, scoring, splits
from funsearch.progress import Status
from funsearch.resume import Replayed, load_config, replay
from funsearch.scheduling.budget import exhausted


@dataclasses.dataclass(frozen=True)
class RunResult:
    run_dir: Path
    stop_reason: str
    best_score: float | None
    best_program: str | None
    holdout: dict[str, float | None]
    counters: dict[str, Any]
    isolation: str


def make_backend(config: ExperimentConfig, spec: spec_module.Specification,
                 on_event: Callable[..., Any] | None = None, **kwargs: Any):
    """The Backend the config's runtime names. `on_event(event)` hears what the
    Ray runtime does about failed actors (retries, lost evaluations: events.py)."""
    if config.runtime.kind == "ray":
        from funsearch.runtime.ray_runtime import RayBackend

        return RayBackend(config, spec, on_event=on_event, **kwargs)
    from funsearch.runtime.inline import InlineBackend

    return InlineBackend(config, spec, **kwargs)


def run(config: ExperimentConfig, on_status: Callable[[Status], None] | None = None,
        run_dir: Path | None = None, resume: Replayed | None = None,
        on_start: Callable[[Path], None] | None = None,
        on_scoring: Callable[[Scoring], None] | None = None, **backend_kwargs: Any) -> RunResult:
    """Runs an experiment to its budget and returns what it found. With `resume`
    (a run's log replayed, see funsearch/resume.py) it goes on with that run.
    `on_start(run_dir)` hears where the run writes, before it starts working;
    `on_scoring` who scores and what a program can still forge, once the
    sandbox is up.

    What can be checked without a sandbox or a cluster is checked first
    (funsearch/preflight.py): a run that fails there leaves no run directory. A
    start that fails after that says why in the log (`start_failed`)."""
    fresh, out_existed = run_dir is None, Path(config.out).exists()
    # Run directories go where the user is (like --out), not beside the experiment file.
    run_dir = run_dir or runlog.new_run_dir(Path(config.out), config.name)
    try:
        config, problem, spec, problem_hash = _checked_problem(
            config, run_dir, backend_kwargs.get("samplers") or ())
    except BaseException:
        if fresh:  # it never started, and has nothing to say: no directory is left
            shutil.rmtree(run_dir, ignore_errors=True)
            if not out_existed:  # the folder made for it, if nothing else is in it now
                with contextlib.suppress(OSError):
                    Path(config.out).rmdir()
        raise
    log = runlog.RunLog(run_dir)
    try:
        log.write_config(config.model_dump(mode="json"))
        if on_start is not None:
            on_start(run_dir)
        if resume is not None:
            backend_kwargs["database"] = resume.database
        backend = make_backend(config, spec, on_event=log.write, **backend_kwargs)
    except BaseException as error:
        _log_failed_start(log, error)
        log.close()
        raise
    try:
        start = {"name": config.name, "seed": config.seed, "spec": str(problem.path),
                 "format": problem.format, "notes": list(problem.notes),
                 "inputs": config.problem.inputs, "problem": problem_hash,
                 "isolation": backend.isolation,
                 "isolation_detail": getattr(backend, "isolation_detail", ""),
                 "runtime": config.runtime.kind,
                 "samplers": [sampler.name for sampler in config.samplers]}
        # Evaluations run as root where the driver does (a local runtime).
        scored = scoring(spec, splits(spec, config.evaluator.split), backend.isolation,
                         own_uid=os.geteuid() == 0)
        start.update(split=scored.split, scoring=scored.by, forgeable=scored.forgeable)
        log.write(events.RunStart(**start) if resume is None
                  else events.Resume(**start, **resume.summary()))
        if on_scoring is not None:
            on_scoring(scored)
        engine = Engine(config, spec, backend, log, on_status)
        try:
            if resume is None:
                engine.initialize()
            else:
                engine.restore(resume.progress)
        except BaseException as error:
            _log_failed_start(log, error)
            raise
        with _stop_on_signals(engine):
            reason = engine.run()
        return _finish(config, problem, spec, backend, engine, log, reason,
                       sessions=1 if resume is None else resume.sessions + 1)
    finally:
        backend.close()
        log.close()


def _checked_problem(config: ExperimentConfig, run_dir: Path, made: Any
                     ) -> tuple[ExperimentConfig, formats.Problem, spec_module.Specification, str]:
    """The config with its cascade resolved (config.json says which stages
    ran), the problem prepared in the run directory (a peer format's derived
    files go there), its spec checked against the experiment, and its hash
    (which runs `compare` puts side by side; building the training inputs
    here makes a failure in them an error before the run starts)."""
    problem = prepare_problem(config, run_dir / "problem")
    spec = formats.load(problem)
    config = cascades.resolve(config, spec)
    preflight.check(config, spec, made=made)
    problem_hash = spec.problem_hash(config.problem.inputs, formats.scored_files(problem))
    return config, problem, spec, problem_hash


def _finish(config: ExperimentConfig, problem: formats.Problem, spec: spec_module.Specification,
            backend: Any, engine: Engine, log: runlog.RunLog, reason: str,
            sessions: int) -> RunResult:
    """The end of a session: the end-of-run scores, best.py and the best
    program in the problem's own format, run_end and summary.json."""
    best = engine.best()
    final = results.score_at_end(config, spec, backend, best, log)
    written = formats.write_back(problem, spec.evolve_name, final.program)
    if written is not None:  # the best program in the problem's own format
        log.write_file(*written)
    counters = dataclasses.asdict(engine.counters)
    log.write(events.RunEnd(reason=reason, counters=counters, best_score=best.score,
                            best_program_id=best.id, holdout=final.holdout))
    log.write_summary({"name": config.name, "seed": config.seed, "stop_reason": reason,
                       "best_score": best.score, "best_program_id": best.id,
                       "train_inputs": config.problem.inputs, **results.summary_fields(final),
                       "counters": counters, "isolation": backend.isolation,
                       "sessions": sessions, "resumed": sessions - 1,
                       "wall_seconds": round(engine.status().elapsed, 3)})
    return RunResult(log.dir, reason, best.score, best.source, final.holdout, counters,
                     backend.isolation)


def resume(run_dir: str | Path, on_status: Callable[[Status], None] | None = None,
           config: ExperimentConfig | None = None,
           on_start: Callable[[Path], None] | None = None,
           on_scoring: Callable[[Scoring], None] | None = None, **overrides: Any) -> RunResult:
    """Continues the run in `run_dir` to its budget (its log replayed, see
    funsearch/resume.py); returns its RunResult.

    `config` defaults to the run's own (resume.load_config); `overrides` are
    dotted config keys (e.g. runtime.address, or a larger
    scheduler.budget.samples to extend a finished run). A run that finished
    and has no budget left is an AlreadyFinished error, and its directory is
    left as it was: its held-out sets are not scored again.
    """
    run_dir = Path(run_dir)
    config = config or load_config(run_dir, **overrides)
    replayed = replay(run_dir, config)
    if replayed.end_reason is not None:
        spent = exhausted(config.scheduler.budget, replayed.progress.spent,
                          replayed.progress.best_score)
        if spent is not None:
            raise AlreadyFinished(
                f"{run_dir}: the run already finished ({spent}); nothing was changed. Give "
                f"a larger budget to extend it, e.g. --max-samples "
                f"{replayed.progress.spent.samples * 2} or --set scheduler.budget.wall=1h")
    return run(config, on_status, run_dir=run_dir, resume=replayed, on_start=on_start,
               on_scoring=on_scoring)


class AlreadyFinished(ValueError):
    """A finished run resumed without a larger budget: there is nothing to do."""


def prepare_problem(config: ExperimentConfig, folder: Path) -> formats.Problem:
    """The experiment's problem as a native spec (a peer format's derived files in
    `folder`), with the inputs and metric the experiment gives it."""
    return formats.prepare(config.spec_path(), folder, config.problem.format,
                           config.problem.values, config.problem.metric)


def _log_failed_start(log: runlog.RunLog, error: BaseException) -> None:
    """A run that could not start says why in its own log, so `show` and
    `compare` can tell it from a run that is going or was killed."""
    user_error = isinstance(error, ValueError)  # config and spec errors say it in words
    reason = str(error) if user_error else f"{type(error).__name__}: {error}"
    log.write(events.StartFailed(reason=reason[:1000]))


class _stop_on_signals:
    """Ctrl-C or SIGTERM ends the run cleanly (summary written), not mid-write."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, lambda *_: self._engine.stop())

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
