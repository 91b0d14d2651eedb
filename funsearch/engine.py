"""The search loop: prompt -> samples -> programs -> evaluations -> database.

Written against small interfaces (a database, a Backend that runs samplers
and evaluations and returns futures, a RunLog), so the inline runtime and the
Ray runtime run this same loop. Work in flight is bounded on both sides: the
scheduler sends a prompt only while the evaluations in flight plus those the
prompts out will start stay below what the evaluators can take in one
sampler latency (plus the backend's evaluation slots), and never more than
`max_in_flight` prompts (funsearch/scheduling/controller.py), so memory does not grow
with run length.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import threading
import time
from collections.abc import Callable

from funsearch import cascades, code, database_client, events, outcomes, parsing, prompt
from funsearch.config import ExperimentConfig
from funsearch.evaluator import Evaluation
from funsearch.programs import Program, Prompt, Registration
from funsearch.progress import Counters, Progress, Status
from funsearch.runlog import RunLog
from funsearch.runtime import Backend
from funsearch.samplers.base import Sample
from funsearch.scheduling.budget import sample_cost
from funsearch.scheduling.scheduler import Scheduler, Spent, exhausted
from funsearch.spec import SpecError, Specification
from funsearch.stall import StallWatcher, duplicate_reason

_REJECTED_TEXT_CHARS = 2000
# Requests of one sampler that may fail in a row before the run stops.
MAX_SAMPLER_FAILURES = 20


@dataclasses.dataclass
class _Pending:
    """What a future in flight belongs to."""

    kind: str  # "sample" or "evaluation"
    prompt: Prompt
    query: prompt.Query
    sampler: str
    n: int = 0  # samples asked for (kind "sample")
    sample_id: int = -1
    program: str = ""
    program_hash: str = ""
    submitted: float = 0.0  # time.monotonic() when the prompt was sent
    cascade: cascades.Underway | None = None  # its stage, under a cascade


class Engine:
    def __init__(self, config: ExperimentConfig, spec: Specification, backend: Backend,
                 log: RunLog, on_status: Callable[[Status], None] | None = None):
        config = cascades.resolve(config, spec)
        self._config = config
        self._spec = spec
        self._backend = backend
        self._on_status = on_status or (lambda status: None)
        # Backends with two evaluation slots per sandbox worker need not say how many workers.
        workers = getattr(backend, "evaluation_workers", backend.evaluation_slots // 2)
        self._emit = lambda action, **fields: log.write(
            events.Scheduler(action=action, extra=fields))
        self._scheduler = Scheduler(config.scheduler, config.samplers, seed=config.seed,
                                    workers=max(1, workers), slots=backend.evaluation_slots,
                                    emit=self._emit)
        # The cascade decides from the log: it sees every event the loop writes.
        self._cascade = cascades.Cascade.of(config, emit=self._emit)
        self._log = log if self._cascade is None else cascades.Observed(
            log, lambda event: self._cascade.apply(event))
        self._samplers = {sampler.name: sampler for sampler in config.samplers}
        self._preface = spec.preface()
        self.counters = Counters()
        self._spent = Spent()
        self._pending: dict[cf.Future, _Pending] = {}
        self._cache: dict[str, Evaluation] = {}  # normal hash -> evaluation
        # Duplicates of a program still being evaluated wait for its result.
        self._waiting: dict[str, list[_Pending]] = {}
        self._best_score: float | None = None
        self._next_sample = 0
        # The database, in place or batched to a remote one: the loop's only way to it.
        self._db = database_client.client(backend.database)
        self._sampler_failures = {name: 0 for name in self._samplers}
        self.stalls = StallWatcher()
        self._broken: str | None = None
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._wall_before = 0.0  # run time of earlier sessions of a resumed run
        self._last_status = 0.0

    def best(self) -> Program:
        """The best program in the database."""
        return self._db.best()

    def stop(self) -> None:
        """Asks the loop to finish cleanly (Ctrl-C, a signal, a test)."""
        self._stop.set()

    def initialize(self) -> None:
        """Evaluates the spec's initial program and puts it on every island."""
        program = self._spec.initial_program
        evaluation = self._backend.submit_evaluation(program).result()
        self._log.write(events.Evaluation.of(evaluation, program, code.normal_hash(program),
                                             duplicate=False, sample=None, sampler="initial"))
        if not evaluation.ok:
            raise SpecError(
                f"{self._spec.path}: the initial '{self._spec.evolve_name}' does not evaluate on "
                f"'{evaluation.input_set}' ({evaluation.status}): {evaluation.reason}")
        program_hash = code.normal_hash(program)
        programs = self._db.register_initial(program, evaluation.scores, program_hash)
        for registered in programs:
            self._log.write(events.Registration.of(registered, sample=None))
        self._cache[program_hash] = evaluation
        self._update_best(programs[0], sample=None)

    def restore(self, progress: Progress) -> None:
        """Goes on from a replayed run log instead of `initialize` (the backend's
        database was rebuilt from the same log)."""
        self.counters = dataclasses.replace(progress.counters)
        self._spent = dataclasses.replace(progress.spent)
        self._wall_before = progress.spent.wall
        self._next_sample = progress.next_sample
        self._best_score = progress.best_score
        self._cache = dict(progress.cache)
        for outcome in progress.outcomes:
            self._scheduler.learn(outcome)
        if self._cascade is not None and progress.cascade is not None:
            self._cascade = progress.cascade  # replayed from the same log (resume.py)
            self._cascade.tuner.emit = self._emit

    def run(self) -> str:
        """Runs until a budget is spent or stop() is called; returns why it stopped."""
        reason = None
        while reason is None:
            reason = self._stop_reason()
            if reason is None:
                self._fill()
            self._drain(timeout=0.2 if reason is None else None)
            self._report_status(reason)
        self._finish_in_flight()
        self._scheduler.finish()
        if self._cascade is not None:
            self._emit("cascade_summary", **self._cascade.summary())
        self._report_status(reason, force=True)
        return reason

    def status(self, reason: str | None = None) -> Status:
        elapsed = self._wall_before + time.monotonic() - self._started
        return Status(elapsed, dataclasses.replace(self.counters), self._best_score,
                      list(self._db.island_best_scores()),
                      self.counters.samples / elapsed if elapsed > 0 else 0.0, reason,
                      list(self.stalls.warnings))

    def _stop_reason(self) -> str | None:
        if self._stop.is_set():
            return "stopped"
        if self._broken:
            return self._broken
        self._spent.wall = self._wall_before + time.monotonic() - self._started
        return exhausted(self._config.scheduler.budget, self._spent, self._best_score)

    def _in_flight(self, kind: str) -> int:
        return sum(1 for pending in self._pending.values() if pending.kind == kind)

    def _fill(self) -> None:
        """Sends prompts while the scheduler says one may go: it weighs the
        evaluations in flight against the prompts out (backpressure)."""
        budget = self._config.scheduler.budget.samples
        self._scheduler.tick(self._in_flight("evaluation"))
        while True:
            left = None
            if budget is not None:
                left = budget - self._spent.samples - self._promised_samples()
                if left <= 0:
                    return
            name = self._scheduler.pick(self._prompts_in_flight(), self._in_flight("evaluation"))
            if name is None:
                return
            n = self._scheduler.request_size(name)
            n = n if left is None else min(n, left)
            chosen = self._db.prompt()
            query = prompt.build_query(self._preface, self._spec.evolve_name,
                                       [parent.source for parent in chosen.parents])
            future = self._backend.submit_sample(name, query, n)
            self._pending[future] = _Pending("sample", chosen, query, name, n=n,
                                             submitted=time.monotonic())

    def _prompts_in_flight(self) -> dict[str, int]:
        counts = dict.fromkeys(self._samplers, 0)
        for pending in self._pending.values():
            if pending.kind == "sample":
                counts[pending.sampler] += 1
        return counts

    def _promised_samples(self) -> int:
        return sum(p.n for p in self._pending.values() if p.kind == "sample")

    def _drain(self, timeout: float | None) -> None:
        waiting = list(self._pending) + self._db.waiting()
        if not waiting:
            self._db.send(force=True)
            return
        wake = self._db.wake_in()  # in time to send the registrations queued
        if wake is not None:
            timeout = wake if timeout is None else min(timeout, wake)
        done, _ = cf.wait(waiting, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        # Registrations are handled in the order the database applied them:
        # the log must replay to the same state.
        self._db.deliver()
        # In the order they were sent, not the set's: when a wait returns more than
        # one (the sandbox answers evaluations back to back), the log and the
        # database see them in the same order in every run.
        for future in [future for future in self._pending if future in done]:
            pending = self._pending.pop(future)
            if pending.kind == "sample":
                self._on_samples(future, pending)
                continue
            evaluation = future.result()
            if pending.cascade is not None:
                evaluation, pending = self._advance(evaluation, pending)
                if evaluation is None:
                    continue  # on to its next stage
            self._on_evaluation(evaluation, pending)
            for duplicate in self._waiting.pop(pending.program_hash, []):
                self._on_evaluation(evaluation, duplicate, duplicate=True)
        self._db.send(force=not self._pending)

    def _finish_in_flight(self) -> None:
        """Lets evaluations already started finish; no new samples are used."""
        while self._pending or self._db.busy:
            self._drain(timeout=None)

    def _on_samples(self, future: cf.Future, pending: _Pending) -> None:
        latency = time.monotonic() - pending.submitted
        try:
            samples: list[Sample] = future.result()
        except Exception as error:  # a backend failure is logged; the run goes on
            reason = f"{type(error).__name__}: {error}"[:500]
            self._log.write(events.SamplerError(sampler=pending.sampler,
                                                island=pending.prompt.island, reason=reason))
            self._scheduler.on_prompt(pending.sampler, latency, evaluations=0, failed=True)
            self._sampler_failures[pending.sampler] += 1
            if self._sampler_failures[pending.sampler] >= MAX_SAMPLER_FAILURES:
                # Backends retry transient errors themselves; this many failed
                # requests in a row is a broken sampler, and going on would only
                # fill the log with the same error.
                self._broken = (f"sampler '{pending.sampler}' failed {MAX_SAMPLER_FAILURES} "
                                f"requests in a row; last error: {reason}")
            return
        self._sampler_failures[pending.sampler] = 0
        # The request is named by its first sample's id: unique over resumed sessions.
        request_id = self._next_sample
        to_evaluate = [evaluation for sample in samples
                       if (evaluation := self._on_sample(sample, pending, len(samples),
                                                         request_id))]
        if to_evaluate:  # one call for the prompt's new programs (one actor call with Ray)
            self._evaluate(to_evaluate)
        self._scheduler.on_prompt(pending.sampler, latency, evaluations=len(to_evaluate))

    def _evaluate(self, pendings: list[_Pending]) -> None:
        """Programs at one stage (all the training set, or a cascade's) in one call."""
        input_set = ids = None
        if self._cascade is not None:
            pendings = [p if p.cascade else dataclasses.replace(p, cascade=cascades.Underway(
                0, p.prompt.island, p.sample_id, p.sampler, p.program_hash)) for p in pendings]
            input_set, ids = self._cascade.job(pendings[0].cascade.stage)
        futures = self._backend.submit_evaluations([p.program for p in pendings], input_set, ids)
        self._pending.update(zip(futures, pendings, strict=True))

    def _advance(self, evaluation: Evaluation,
                 pending: _Pending) -> tuple[Evaluation | None, _Pending]:
        """A cascade stage came back: on to the next (None), or the last word."""
        advance = self._cascade.advance(evaluation, pending.cascade)
        if advance.event is not None:
            self._log.write(advance.event)
        pending = dataclasses.replace(pending, cascade=advance.underway)
        if advance.final is None:
            self._evaluate([pending])
        return advance.final, pending

    def _on_sample(self, sample: Sample, pending: _Pending, request_size: int,
                   request_id: int) -> _Pending | None:
        """Logs a sample; what to evaluate, if its program has to be evaluated
        (not rejected, not a duplicate). The event names its request and the
        samples asked of it (`asked`) beside those returned (`request`), so a
        backend that loses samples shows in the log."""
        sample_id = self._next_sample
        self._next_sample += 1
        self.counters.samples += 1
        cost = sample_cost(sample, self._samplers[pending.sampler], request_size)
        self._spent.charge(cost)
        self._scheduler.on_sample(sample_id, pending.sampler, cost, sample_id - request_id,
                                  request_size)
        chosen = pending.prompt
        self._log.write(events.Sample(
            sample=sample_id, sampler=pending.sampler, island=chosen.island,
            epoch=chosen.epoch, parents=[parent.id for parent in chosen.parents],
            latency=round(sample.latency, 6), request_id=request_id, asked=pending.n,
            request=request_size, prompt_tokens=sample.prompt_tokens,
            completion_tokens=sample.completion_tokens, gpu_seconds=sample.gpu_seconds,
            cpu_seconds=sample.cpu_seconds, usd=round(cost.usd, 8)))
        parsed = sample.parsed or parsing.parse(sample.text, pending.query)
        if parsed.program is None:
            self.counters.rejected += 1
            self._log.write(events.Rejection(sample=sample_id, sampler=pending.sampler,
                                             reason=parsed.rejection,
                                             text=sample.text[:_REJECTED_TEXT_CHARS]))
            self._scheduler.observe(sample_id, improved=False)
            self._wasted(pending, parsed.rejection)
            return None
        program, program_hash = parsed.program, parsed.program_hash
        evaluation_pending = dataclasses.replace(
            pending, kind="evaluation", sample_id=sample_id, program=program,
            program_hash=program_hash)
        if program_hash in self._cache:
            self.counters.duplicates += 1
            self._on_evaluation(self._cache[program_hash], evaluation_pending, duplicate=True)
            self._wasted(pending, duplicate_reason(program_hash, chosen.parents))
            return None
        if program_hash in self._waiting:
            self.counters.duplicates += 1
            self._waiting[program_hash].append(evaluation_pending)
            self._wasted(pending, duplicate_reason(program_hash, chosen.parents))
            return None
        self.stalls.new(pending.sampler)
        self._waiting[program_hash] = []
        return evaluation_pending

    def _wasted(self, pending: _Pending, reason: str) -> None:
        """A sample that came to nothing; a `stall` event when its sampler's
        recent samples all did (stall.py), once per stall."""
        stall = self.stalls.wasted(pending.sampler, reason)
        if stall is not None:
            self._log.write(events.Stall(**stall.fields()))

    def _on_evaluation(self, evaluation: Evaluation, pending: _Pending,
                       duplicate: bool = False) -> None:
        seconds = 0.0 if duplicate else evaluation.duration  # a duplicate ran nothing
        if not duplicate:
            self.counters.evaluated += 1
            self._spent.evaluation_seconds += seconds
            if outcomes.remembered(evaluation.status):  # else: try it again
                self._cache[pending.program_hash] = evaluation
        underway = pending.cascade
        self._log.write(events.Evaluation.of(
            evaluation, pending.program, pending.program_hash, duplicate, pending.sample_id,
            pending.sampler, stage=underway and underway.stage,
            audit=bool(underway and underway.audit)))
        if not outcomes.scored(evaluation.status):  # failed, or stopped by the cascade
            if outcomes.failed(evaluation.status):
                self.counters.failed += 1
            else:
                self.counters.stopped += 1
            self._scheduler.observe(pending.sample_id, improved=False, evaluation_seconds=seconds)
            return
        arguments = (pending.program, evaluation.scores, pending.prompt, pending.sampler,
                     pending.program_hash)
        self._db.register(arguments, lambda registration: self._after_registration(
            registration, pending, evaluation, seconds))

    def _after_registration(self, registration: Registration, pending: _Pending,
                            evaluation: Evaluation, seconds: float) -> None:
        # A program already on its island: nothing happened, no improvement.
        improved = not registration.known and self._on_registration(registration, pending,
                                                                    evaluation)
        self._scheduler.observe(pending.sample_id, improved=improved, evaluation_seconds=seconds)

    def _on_registration(self, registration: Registration, pending: _Pending,
                         evaluation: Evaluation) -> bool:
        """Logs a registration; whether the sample improved on its prompt (outcomes.py)."""
        improved = outcomes.improved(evaluation.score,
                                     [parent.score for parent in pending.prompt.parents])
        if registration.program is None:
            self.counters.discarded += 1
            self._log.write(events.Discard(sample=pending.sample_id, sampler=pending.sampler,
                                           island=pending.prompt.island,
                                           reason=registration.reason))
        else:
            self.counters.registered += 1
            self._log.write(events.Registration.of(registration.program, pending.sample_id))
            self._update_best(registration.program, pending.sample_id)
        for reset in registration.resets:
            self.counters.resets += 1
            self._log.write(events.Reset.of(reset))
        return improved

    def _update_best(self, program: Program, sample: int | None) -> None:
        if self._best_score is not None and program.score <= self._best_score:
            return
        self._best_score = program.score
        self._log.write(events.Best.of(program, sample))
        self._log.write_best(
            f"# Best program of this run: score {program.score:.6g} on '"
            f"{self._config.problem.inputs}' (program {program.id}, island {program.island}).\n"
            + self._spec.program_text(program.source))

    def _report_status(self, reason: str | None, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_status >= 0.5:
            self._last_status = now
            self._on_status(self.status(reason))

