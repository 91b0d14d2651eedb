"""Pipeline throughput: evaluations per second with 1 and 2 evaluator workers,
inline and on Ray, with the mutation proposer and a spec whose evaluation
takes about 10 ms (ten_ms_spec.py).

    python experiments/benchmarks/pipeline_throughput.py [--seconds 8] [--repeats 3]

Utilization = achieved / (workers / evaluation time): the fraction of the
workers' capacity that the pipeline (prompts, proposals, dispatch, scoring,
registration, logging) keeps busy. The evaluation time is measured in the
same run, as the time one sandbox worker takes per evaluation when it is fed
directly and never waits (fork, jail, about 10 ms of work, result): the
sandbox's own overhead is not the pipeline's. "sandbox alone" is the rate of
a pool of that many workers fed the same way, the ceiling on this machine.

Why it falls short shows in the last two columns, from the run log's
evaluation durations (timed by the worker, from handing the program to a
child to its result; so without the pipe and the dispatch that "eval time"
includes): "in-run eval" is their mean during the search, higher than alone
when the pipeline's own work slows evaluations by competing for the cores;
"busy" is their sum over the workers' time, lower when the pool waits for
work or for the dispatch. Utilization = busy x eval time / in-run eval.

Two kinds of evaluation: `sleep10` waits 10 ms (the worker leaves its CPU to
the rest of the pipeline, as an evaluation bound by I/O or an accelerator
would) and `busy10` spins for 10 ms (the workers compete for the cores with
the driver, the proposer and, with Ray, its actors and daemons). The achieved
rate counts sandbox evaluations only (duplicates answered from the cache are
not evaluations), over the span between the first and the last of them.

What limits it: every step of the loop costs CPU on the same 2 cores the
workers use -- the driver (prompts, logging, scoring bookkeeping), the
proposer (about half of the pipeline's CPU), and with Ray each actor call
(1.2-1.7 ms of CPU over both ends and Ray's threads). The Ray backend
therefore makes few calls: samples come back parsed and hashed from the
sampler actor, a prompt's programs go to an evaluator in one call (two rounds
of its workers), and one database call applies the queued registrations and
returns the next prompts. The sandbox pool keeps the next evaluation waiting
in each worker, so a busy host does not leave workers idle between two. The
numbers depend on what else the machine runs (and on a VM, on its
neighbours): run it on an otherwise idle machine, and compare the rows of one
run, not across runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from funsearch import config as config_module  # noqa: E402
from funsearch import experiment, runlog  # noqa: E402
from funsearch import spec as spec_module  # noqa: E402
from funsearch.evaluator import make_pool  # noqa: E402

SPEC = Path(__file__).with_name("ten_ms_spec.py")


def sandbox_rate(input_set: str, workers: int, count: int = 200) -> float:
    """Evaluations per second of a pool of `workers` fed directly, never idle."""
    spec = spec_module.load(SPEC)
    pool = make_pool(spec, workers=workers, timeout=5, memory_mb=1024, isolation="auto")
    try:
        for _ in range(3 * workers):  # warm up: the input set is built on first use
            pool.run(spec.initial_program, spec.evolve_name, input_set)
        started = time.perf_counter()
        queued = [pool.submit(spec.initial_program, spec.evolve_name, input_set)
                  for _ in range(count)]
        for future in queued:
            future.result()
        return count / (time.perf_counter() - started)
    finally:
        pool.close()


@dataclasses.dataclass(frozen=True)
class Search:
    """What one search's run log says about its pipeline."""

    rate: float  # sandbox evaluations per second
    duplicates: float  # fraction of the samples that were duplicates
    in_run: float  # mean seconds an evaluation took inside its worker
    busy: float  # fraction of the workers' time spent evaluating


@dataclasses.dataclass(frozen=True)
class Run:
    """One row's measurement in one round."""

    eval_seconds: float  # one worker fed directly, per evaluation
    alone: float  # evaluations per second of the row's workers fed directly
    search: Search


def achieved_rate(runtime: str, workers: int, input_set: str, seconds: float,
                  out: Path) -> Search:
    """Sandbox evaluations per second of a search, with what explains them."""
    config = config_module.from_dict({
        "name": f"throughput-{runtime}-{workers}", "seed": 0, "out": str(out),
        "problem": {"spec": str(SPEC), "inputs": input_set},
        "database": {"islands": 4},
        "evaluator": {"workers": workers, "actors": 1, "timeout": 5, "memory_mb": 1024},
        "samplers": [{"name": "mutation", "backend": "mutation", "samples_per_prompt": 4}],
        "scheduler": {"max_in_flight": 4, "budget": {"wall": seconds}},
        "runtime": {"kind": runtime},
    })
    result = experiment.run(config)
    events = list(runlog.read_events(result.run_dir))
    evaluations = [e for e in events if e["kind"] == "evaluation" and e["sample"] is not None
                   and not e["duplicate"] and e["status"] != "lost"]
    samples = sum(e["kind"] == "sample" for e in events)
    duplicates = sum(e["kind"] == "evaluation" and e["duplicate"] for e in events)
    duplicate_fraction = duplicates / samples if samples else 0.0
    if len(evaluations) < 2:
        return Search(0.0, duplicate_fraction, 0.0, 0.0)
    span = evaluations[-1]["t"] - evaluations[0]["t"]
    durations = [e["duration"] for e in evaluations[1:]]  # the first started before the span
    return Search(len(durations) / span, duplicate_fraction, statistics.fmean(durations),
                  sum(durations) / (workers * span))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="wall time per search")
    parser.add_argument("--input-sets", default="sleep10,busy10")
    parser.add_argument("--runtimes", default="inline,ray")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds over all rows; each row shows its median and range")
    arguments = parser.parse_args()

    from funsearch.runtime import ray_runtime

    # One quiet local Ray instance for every Ray row (the backends join it).
    ray_runtime.connect("", num_cpus=4)
    rows: dict[tuple[str, str, int], list[Run]] = {}
    with tempfile.TemporaryDirectory() as out:
        # Rounds go over every row in turn, so a change in the machine's load
        # (it is shared) hits all rows alike.
        for _ in range(arguments.repeats):
            for input_set in arguments.input_sets.split(","):
                alone = {workers: sandbox_rate(input_set, workers) for workers in (1, 2)}
                seconds = 1 / alone[1]
                for runtime in arguments.runtimes.split(","):
                    for workers in (1, 2):
                        search = achieved_rate(runtime, workers, input_set,
                                               arguments.seconds, Path(out))
                        rows.setdefault((input_set, runtime, workers), []).append(
                            Run(seconds, alone[workers], search))
    print_table(rows)


def print_table(rows: dict[tuple[str, str, int], list[Run]]) -> None:
    table = Table(title="pipeline throughput (mutation proposer, ~10 ms evaluations)")
    for column in ("evaluation", "runtime", "workers", "eval time (ms)", "capacity (/s)",
                   "sandbox alone (/s)", "achieved (/s)", "utilization", "range", "duplicates",
                   "in-run eval (ms)", "busy"):
        table.add_column(column, justify="right")
    for (input_set, runtime, workers), runs in rows.items():
        seconds = statistics.median(run.eval_seconds for run in runs)
        utilizations = [run.search.rate * run.eval_seconds / workers for run in runs]
        def median(field: str, runs: list[Run] = runs) -> float:
            return statistics.median(getattr(run.search, field) for run in runs)

        table.add_row(input_set, runtime, str(workers), f"{1000 * seconds:.1f}",
                      f"{workers / seconds:.0f}",
                      f"{statistics.median(run.alone for run in runs):.0f}",
                      f"{median('rate'):.0f}",
                      f"{statistics.median(utilizations):.2f}",
                      f"{min(utilizations):.2f}-{max(utilizations):.2f}",
                      f"{median('duplicates'):.0%}",
                      f"{1000 * median('in_run'):.1f}",
                      f"{median('busy'):.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
