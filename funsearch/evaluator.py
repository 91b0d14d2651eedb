"""Program -> scores per input, through the sandbox; scoring on the host.

The sandbox only runs the spec's run function. When the spec has a score
function, the sandbox returns outputs (a tour, a packing) and the host scores
them here. A split evaluation (sandbox/program.py) runs the program in a
process of its own, so it cannot change what the run function returns either;
`scoring` says in words what a program can still forge under a setting.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import statistics
import time
from collections.abc import Iterator
from typing import Any

from funsearch.spec import Specification
from sandbox.pool import Limits, Outcome, SandboxPool


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The result of evaluating one program on one input set.

    Attributes:
      status: the sandbox outcome ("ok", "timeout", "memory", "crashed",
        "error", "forbidden", "invalid_output", "output_limit"); "ok" only
        when every input produced a valid, finite score. Any other is a
        failed evaluation of the program, logged with its reason.
      scores: input id -> score when status is "ok".
      reason: why not ok, in words.
      duration: wall seconds in the sandbox.
      input_set: the input set evaluated.
      metrics: input id -> what the spec's metrics function logs of its output
        (an OpenEvolve evaluator's metrics); None without one.
    """

    status: str
    scores: dict[str, float] | None = None
    reason: str = ""
    duration: float = 0.0
    input_set: str = ""
    metrics: dict[str, dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def score(self) -> float | None:
        return statistics.fmean(self.scores.values()) if self.scores else None


class Evaluator:
    """Evaluates programs of one spec on its named input sets."""

    def __init__(self, spec: Specification, pool: SandboxPool, input_set: str = "train"):
        self._spec = spec
        self._pool = pool
        self._input_set = input_set
        self._instances: dict[str, dict[str, Any]] = {}
        self.instances(input_set)  # fail early on an unknown input set

    @property
    def spec(self) -> Specification:
        return self._spec

    @property
    def isolation(self) -> str:
        return self._pool.isolation

    def scoring(self, split_on: str = "[evaluator] split = \"on\"") -> Scoring:
        pool = self._pool
        return scoring(self._spec, pool.split, pool.isolation, pool.own_uid, split_on)

    def instances(self, input_set: str) -> dict[str, Any]:
        if input_set not in self._instances:
            self._instances[input_set] = self._spec.inputs(input_set)
        return self._instances[input_set]

    def submit(self, program: str, input_set: str | None = None,
               input_ids: list[str] | None = None) -> concurrent.futures.Future:
        """Starts an evaluation; the future's result is an Evaluation.
        `input_ids`: only these inputs of the set (a cascade's stage), else all."""
        input_set = input_set or self._input_set
        ids = list(self.instances(input_set)) if input_ids is None else list(input_ids)
        started = time.monotonic()
        outcome_future = self._pool.submit(self._spec.sandboxed(program), self._spec.evolve_name,
                                           input_set, ids)
        result: concurrent.futures.Future = concurrent.futures.Future()

        def done(future: concurrent.futures.Future) -> None:
            try:
                evaluation = self._score(future.result(), input_set, ids, started)
            except Exception as error:  # the pool itself failed: an outcome, not a crash
                evaluation = Evaluation("error", reason=f"sandbox failure: {error!r}",
                                        input_set=input_set)
            result.set_result(evaluation)

        outcome_future.add_done_callback(done)
        return result

    def evaluate(self, program: str, input_set: str | None = None) -> Evaluation:
        return self.submit(program, input_set).result()

    def _score(self, outcome: Outcome, input_set: str, ids: list[str],
               started: float) -> Evaluation:
        duration = outcome.duration or (time.monotonic() - started)
        if outcome.status != "ok":
            return Evaluation(outcome.status, reason=outcome.detail, duration=duration,
                              input_set=input_set)
        outputs = outcome.outputs or []
        if len(outputs) != len(ids):
            return Evaluation("invalid_output", duration=duration, input_set=input_set,
                              reason=f"{len(outputs)} outputs for {len(ids)} inputs")
        instances = self.instances(input_set)
        scores: dict[str, float] = {}
        metrics: dict[str, dict[str, Any]] = {}
        for input_id, output in zip(ids, outputs, strict=True):
            try:
                scores[input_id] = self._spec.score(instances[input_id], output)
                logged = self._spec.metrics(instances[input_id], output)
                if logged is not None:
                    metrics[input_id] = logged
            except Exception as error:  # untrusted output: any failure to score it is invalid
                reason = f"input {input_id}: {type(error).__name__}: {error}"[:300]
                return Evaluation("invalid_output", reason=reason, duration=duration,
                                  input_set=input_set)
        return Evaluation("ok", scores, duration=duration, input_set=input_set,
                          metrics=metrics or None)


def make_pool(spec: Specification, workers: int, timeout: float, memory_mb: int,
              isolation: str, split: str = "auto") -> SandboxPool:
    """The sandbox pool an evaluator config asks for."""
    return SandboxPool(
        spec.path, workers=workers, limits=Limits(timeout=timeout, memory_mb=memory_mb),
        isolation=isolation, split=splits(spec, split),
    )


def splits(spec: Specification, setting: str) -> bool:
    """Whether programs run apart from the run function: "on", "off", or "auto",
    which splits where the run function returns the score itself. With a host
    score the outputs are checked outside, and a split costs a round trip per
    call (experiments/benchmarks/split_process_cost.py), so auto keeps it off."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"split must be auto, on or off, not {setting!r}")
    if spec.wants_text:  # the run function runs the program's text, not a function
        if setting == "on":
            raise ValueError(f"{spec.path}: split is on, but this problem's run function runs "
                             "the program's text (an OpenEvolve evaluator), not a function it "
                             "calls: it cannot be split; set split to auto or off")
        return False
    return setting == "on" or (setting == "auto" and spec.score_name is None)


@dataclasses.dataclass(frozen=True)
class Scoring:
    """Who computes a program's score, and what a program can still forge.

    Attributes:
      split: whether programs run in a process apart from the run function.
      by: who scores, in words.
      forgeable: what a program can forge, in words ("" where nothing but its
        own answers decides its score).
    """

    split: bool
    by: str
    forgeable: str


def scoring(spec: Specification, split: bool, isolation: str, own_uid: bool,
            split_on: str = "[evaluator] split = \"on\"") -> Scoring:
    """What a program can do to its score under these settings. `own_uid`:
    evaluations run under a uid of their own (the host runs as root);
    `split_on`: how the reader turns splitting on."""
    run, score = f"'{spec.run_name}'", f"'{spec.score_name}'"
    by = f"{score} on the host" if spec.score_name else f"the run function {run}"
    by += ", the program in a process of its own" if split else ", the program in the same process"
    if spec.wants_text:
        by = f"the evaluator {run} calls, with the program in its process"
    if isolation == "process" and not own_uid:
        forgeable = ("everything: under process isolation without root a program runs as "
                     "the host's user and can write the run's files (use bwrap)")
    elif spec.wants_text:
        forgeable = ("the score itself: the evaluator runs the program in its own process "
                     "(an evaluator that runs a program's file cannot be split)")
    elif split:
        forgeable = ""
    elif spec.score_name:
        forgeable = (f"the outputs (any that {score} accepts, not only what {run} would make "
                     f"of the program's answers); {split_on} closes this")
    else:
        forgeable = (f"the score itself: {run} returns it in the program's own process; "
                     f"{split_on} closes this")
    return Scoring(split, by, forgeable)


@dataclasses.dataclass(frozen=True)
class ProgramScore:
    """One program on one input set, as `check` and `evaluate` print it."""

    label: str
    input_set: str
    evaluation: Evaluation
    summary: dict[str, float]


# How a program failed, as the reason it is skipped on later input sets.
_FAILED_AS = {"timeout": "timed out", "output_limit": "printed past the output limit",
              "memory": "ran out of memory", "error": "raised an error", "crashed": "crashed",
              "forbidden": "made a blocked system call", "invalid_output": "gave invalid output",
              "lost": "was lost by its evaluator"}
SKIPPED = "skipped"  # not a sandbox status: the program was not run on this input set


def score_input_sets(evaluator: Evaluator, programs: dict[str, str], input_sets: list[str],
                     keep_going: bool = False) -> Iterator[list[ProgramScore]]:
    """The programs' rows, one list per input set as soon as that set is done.

    The programs of one set are evaluated side by side (as many at once as the
    pool has workers). A program that failed on a set is not run on the later
    ones unless `keep_going`: a program that loops would only cost another
    timeout there. Its rows there say why (status "skipped")."""
    failed: dict[str, tuple[str, str]] = {}  # label -> (status, input set) of its failure
    for input_set in input_sets:
        futures = {label: evaluator.submit(program, input_set)
                   for label, program in programs.items() if label not in failed}
        rows = []
        for label in programs:
            if label in failed:
                rows.append(ProgramScore(label, input_set, _skipped(failed[label], input_set), {}))
                continue
            evaluation = futures[label].result()
            if not evaluation.ok and not keep_going:
                failed[label] = (evaluation.status, input_set)
            figures = evaluator.spec.summary(input_set, evaluation.scores) if evaluation.ok else {}
            rows.append(ProgramScore(label, input_set, evaluation, figures))
        yield rows


def _skipped(failure: tuple[str, str], input_set: str) -> Evaluation:
    status, failed_on = failure
    how = _FAILED_AS.get(status, f"failed ({status})")
    return Evaluation(SKIPPED, reason=f"{how} on '{failed_on}'", input_set=input_set)


def score_programs(evaluator: Evaluator, programs: dict[str, str],
                   input_sets: list[str]) -> Iterator[ProgramScore]:
    """Scores each program on each input set in the sandbox, with the spec's
    summary figures (e.g. the gap to a reference) beside the mean score."""
    for rows in score_input_sets(evaluator, programs, input_sets, keep_going=True):
        yield from rows
