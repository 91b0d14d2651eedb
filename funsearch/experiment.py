"""One run of an experiment, start to end: the Python API the CLI calls.

Creates the run directory, picks the runtime, runs the engine, and at the
end scores the best program on the held-out input sets, so the summary shows
training and held-out scores side by side (overfitting is visible).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import statistics
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funsearch import runlog
from funsearch import spec as spec_module
from funsearch.config import ExperimentConfig
from funsearch.engine import Engine, Status
from funsearch.evaluator import scoring, splits

if TYPE_CHECKING:
    from funsearch.runtime.resume import Replayed


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
    """The Backend the config's runtime names. `on_event(kind, **fields)` hears
    what the Ray runtime does about failed actors (retries, lost evaluations)."""
    if config.runtime.kind == "ray":
        from funsearch.runtime.ray_runtime import RayBackend

        return RayBackend(config, spec, on_event=on_event, **kwargs)
    from funsearch.runtime.inline import InlineBackend

    return InlineBackend(config, spec, **kwargs)


def run(config: ExperimentConfig, on_status: Callable[[Status], None] | None = None,
        run_dir: Path | None = None, resume: Replayed | None = None,
        on_start: Callable[[dict[str, Any]], None] | None = None,
        **backend_kwargs: Any) -> RunResult:
    """Runs an experiment to its budget and returns what it found. With `resume`
    (a run's log replayed, see runtime/resume.py) it goes on with that run.
    `on_start` hears the start event's fields (isolation, scoring, what a
    program can forge) once the backend is up."""
    spec = spec_module.load(config.spec_path())
    # Run directories go where the user is (like --out), not beside the experiment file.
    run_dir = run_dir or runlog.new_run_dir(Path(config.out), config.name)
    log = runlog.RunLog(run_dir)
    log.write_config(config.model_dump(mode="json"))
    if resume is not None:
        backend_kwargs["database"] = resume.database
    try:
        backend = make_backend(config, spec, on_event=log.append, **backend_kwargs)
    except BaseException as error:
        _log_failed_start(log, error)
        log.close()
        raise
    try:
        # The evaluations run as root where the driver does (a local runtime).
        scored = scoring(spec, splits(spec, config.evaluator.split), backend.isolation,
                         own_uid=os.geteuid() == 0)
        start = dict(name=config.name, seed=config.seed, spec=str(spec.path),
                     isolation=backend.isolation,
                     isolation_detail=getattr(backend, "isolation_detail", ""),
                     split=scored.split, scoring=scored.by, forgeable=scored.forgeable,
                     runtime=config.runtime.kind,
                     samplers=[sampler.name for sampler in config.samplers],
                     **(resume.summary() if resume is not None else {}))
        log.append("run_start" if resume is None else "resume", **start)
        if on_start is not None:
            on_start(start)
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
        best = backend.database.best()
        held_out = _score_holdout(config, backend, best, log)
        holdout = {input_set: scores and statistics.fmean(scores.values())
                   for input_set, scores in held_out.items()}
        counters = dataclasses.asdict(engine.counters)
        report = _held_out_report(config, spec, best, held_out, log)
        log.append("run_end", reason=reason, counters=counters, best_score=best.score,
                   best_program_id=best.id, holdout=holdout)
        log.write_summary({"name": config.name, "seed": config.seed, "stop_reason": reason,
                           "best_score": best.score, "best_program_id": best.id,
                           "train_inputs": config.problem.inputs, "holdout": holdout,
                           "scores": report, "counters": counters,
                           "isolation": backend.isolation})
        return RunResult(run_dir, reason, best.score, best.source, holdout, counters,
                         backend.isolation)
    finally:
        backend.close()
        log.close()


def _log_failed_start(log: runlog.RunLog, error: BaseException) -> None:
    """A run that could not start says why in its own log, so `show` and
    `compare` can tell it from a run that is going or was killed."""
    user_error = isinstance(error, ValueError)  # config and spec errors say it in words
    reason = str(error) if user_error else f"{type(error).__name__}: {error}"
    log.append("start_failed", reason=reason[:1000])


def _score_holdout(config: ExperimentConfig, backend: Any, best: Any,
                   log: runlog.RunLog) -> dict[str, dict[str, float] | None]:
    """The best program's scores per input on each held-out set (None: it failed)."""
    scores: dict[str, dict[str, float] | None] = {}
    for input_set in config.problem.holdout:
        evaluation = backend.submit_evaluation(best.source, input_set).result()
        scores[input_set] = evaluation.scores
        log.append("holdout", program_id=best.id, input_set=input_set, status=evaluation.status,
                   score=evaluation.score, scores=evaluation.scores, reason=evaluation.reason)
    return scores


def _held_out_report(config: ExperimentConfig, spec: spec_module.Specification, best: Any,
                     held_out: dict[str, dict[str, float] | None],
                     log: runlog.RunLog) -> dict[str, dict[str, float]]:
    """The best program's score per input set, training and held out, with the
    spec's summary figures, also written at the top of best.py: a gap between
    training and held-out scores is overfitting, and should be seen first."""
    scores = {config.problem.inputs: best.scores, **held_out}
    report: dict[str, dict[str, float]] = {}
    for input_set, per_input in scores.items():
        if not per_input:
            report[input_set] = {}
            continue
        figures = {"score": statistics.fmean(per_input.values())}
        try:
            figures.update(spec.summary(input_set, per_input))
        except Exception as error:  # a report must not lose the run's result
            log.append("summary_error", input_set=input_set, reason=repr(error)[:300])
        report[input_set] = figures
    lines = [f"# Best program of run '{config.name}' (seed {config.seed}): program {best.id}, "
             f"island {best.island}, sampler '{best.sampler}'."]
    for input_set, figures in report.items():
        role = "train" if input_set == config.problem.inputs else "held out"
        text = "  ".join(f"{key} {value:.6g}" for key, value in figures.items()) or "failed"
        lines.append(f"#   {input_set:<12} ({role}): {text}")
    log.write_best("\n".join(lines) + "\n" + spec.program_text(best.source))
    return report


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
