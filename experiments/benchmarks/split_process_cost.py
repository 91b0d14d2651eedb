"""What a split evaluation costs: the program in a process of its own, or shared.

Split (sandbox/program.py), the run function calls the evolved function through
a pipe: every call is one write and one read, the arguments pickled (numpy
arrays as raw bytes) and the answer encoded as plain data, and every evaluation
forks one more process
(ahead of its request). Measured here in the same run, one evaluation at a
time on a pool of one worker per mode, the modes interleaved round by round
so that the load of this shared machine hits both alike:

  - a micro spec whose run function calls `f(x) -> x + 1.0` once, and 5000
    times: the fixed cost per evaluation and the cost per call;
  - the project's specs on their `train` sets with their initial programs:
    problems/tsp.py (a 50x50 matrix and an array per call), problems/cap_set.py
    (a tuple of 8 ints per call), problems/bin_packing.py (an int and a short
    array per call).

Each figure is the median evaluation (the worker's own clock, request to
result) with a 95% bootstrap interval over the evaluations; "+ split" is the
median of the per-round differences, with its interval over rounds (for one
call: the fixed cost of the extra process per evaluation); per call is that
divided by the calls an evaluation makes (counted by running the spec on the
host), the fixed cost spread over them. CPU is every process of the pool over
all rounds, per evaluation (counted in 10 ms ticks: read it for the larger cases).

    python experiments/benchmarks/split_process_cost.py [--rounds 7] [--per-round 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cpu_clock import pool_cpu  # noqa: E402  (a sibling module)

from funsearch import spec as spec_module  # noqa: E402
from sandbox import isolation  # noqa: E402
from sandbox.pool import Limits, SandboxPool  # noqa: E402

MICRO = """
import funsearch


@funsearch.inputs
def once():
    return {"x": 1}


@funsearch.inputs
def many():
    return {"x": 5000}


@funsearch.run
def run(calls):
    total = 0.0
    for step in range(calls):
        total += f(float(step))
    return total


@funsearch.evolve
def f(x):
    return x + 1.0
"""

MODES = {"shared": False, "split": True}


class Case:
    """One spec and input set, with a pool per mode."""

    def __init__(self, label: str, path: Path, input_set: str, isolation_level: str) -> None:
        self.label, self.input_set = label, input_set
        problem = spec_module.load(path)
        self.program, self.function = problem.initial_program, problem.evolve_name
        self.calls = count_calls(problem, input_set)
        limits = Limits(timeout=300.0)
        self.pools = {mode: SandboxPool(path, workers=1, limits=limits,
                                        isolation=isolation_level, split=split)
                      for mode, split in MODES.items()}
        self.durations: dict[str, list[list[float]]] = {mode: [] for mode in MODES}
        self.cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
        self.outputs: dict[str, object] = {}

    def round(self, per_round: int) -> None:
        for mode, pool in self.pools.items():
            cpu, before = pool_cpu(pool), None
            before = cpu()
            times = []
            for _ in range(per_round):
                outcome = pool.run(self.program, self.function, self.input_set)
                assert outcome.status == "ok", (self.label, mode, outcome.status, outcome.detail)
                self.outputs.setdefault(mode, outcome.outputs)
                times.append(outcome.duration)
            self.cpu[mode].append((cpu() - before) / per_round)
            self.durations[mode].append(times)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def count_calls(problem: spec_module.Specification, input_set: str) -> int:
    """Calls of the evolved function per evaluation, counted on the host."""
    module, name = problem.module, problem.evolve_name
    original, count = getattr(module, name), [0]

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    setattr(module, name, counted)
    try:
        for instance in problem.inputs(input_set).values():
            problem.function(problem.run_name)(instance)
    finally:
        setattr(module, name, original)
    return count[0]


def median_interval(values: list[float], resamples: int = 4000) -> tuple[float, float, float]:
    """The median and a 95% percentile-bootstrap interval of it (seeded)."""
    data = np.asarray(values, dtype=float)
    if len(data) == 1:
        return float(data[0]), float(data[0]), float(data[0])
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(data, size=(resamples, len(data))), axis=1)
    return float(np.median(data)), float(np.percentile(medians, 2.5)), \
        float(np.percentile(medians, 97.5))


def show(value: tuple[float, float, float], scale: float, digits: int = 1) -> str:
    middle, low, high = (number * scale for number in value)
    return f"{middle:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def report(cases: list[Case], rounds: int, per_round: int, detail: str, load: float) -> None:
    print(f"\n{os.cpu_count()} cores, load {load:.1f} before and {os.getloadavg()[0]:.1f} after "
          f"(1 min); {detail}")
    print(f"{rounds} interleaved rounds x {per_round} evaluations per mode and case; "
          "median [95% bootstrap interval]\n")
    header = (f"{'case':24s} {'calls/eval':>10s} {'shared ms/eval':>22s} {'split ms/eval':>22s} "
              f"{'+ split ms/eval':>22s} {'+ split us/call':>22s}  {'CPU ms/eval shared | split'}")
    print(header)
    print("-" * len(header))
    for case in cases:
        shared = [t for batch in case.durations["shared"] for t in batch]
        split = [t for batch in case.durations["split"] for t in batch]
        extra = [statistics.fmean(b) - statistics.fmean(a) for a, b in
                 zip(case.durations["shared"], case.durations["split"], strict=True)]
        extra_interval = median_interval(extra)
        per_call = show(extra_interval, 1e6 / case.calls) if case.calls >= 100 else "-"
        shared_cpu, split_cpu = (statistics.fmean(case.cpu[mode]) for mode in MODES)
        cpu = f"{1000 * shared_cpu:.1f} | {1000 * split_cpu:.1f}"
        if case.calls >= 100:  # the load of others stretches wall time, not this
            cpu += f" (+{1e6 * (split_cpu - shared_cpu) / case.calls:.1f} us/call)"
        same = "" if case.outputs["shared"] == case.outputs["split"] else "  (outputs differ!)"
        print(f"{case.label:24s} {case.calls:>10d} {show(median_interval(shared), 1e3):>22s} "
              f"{show(median_interval(split), 1e3):>22s} {show(extra_interval, 1e3):>22s} "
              f"{per_call:>22s}  {cpu}{same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=2, help="evaluations per mode per round")
    parser.add_argument("--isolation", default="auto", choices=isolation.LEVELS)
    parser.add_argument("--only", help="case labels to run, comma-separated (e.g. micro,tsp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="split-benchmark-") as folder:
        micro = Path(folder) / "micro.py"
        micro.write_text(textwrap.dedent(MICRO))
        plan = [("micro, 1 call", micro, "once"), ("micro, 5000 calls", micro, "many"),
                ("tsp train", ROOT / "problems/tsp.py", "train"),
                ("cap_set train", ROOT / "problems/cap_set.py", "train"),
                ("bin_packing train", ROOT / "problems/bin_packing.py", "train")]
        wanted = args.only.split(",") if args.only else None
        cases = [Case(label, path, input_set, args.isolation) for label, path, input_set in plan
                 if wanted is None or any(label.startswith(word) for word in wanted)]
        detail = next(iter(cases[0].pools.values())).isolation_detail if cases else ""
        load = os.getloadavg()[0]
        try:
            for case in cases:  # every worker builds its input set before the clock
                for pool in case.pools.values():
                    pool.run(case.program, case.function, case.input_set)
            started = time.monotonic()
            for _ in range(args.rounds):
                for case in cases:
                    case.round(args.per_round)
            print(f"measured in {time.monotonic() - started:.0f} s")
        finally:
            for case in cases:
                case.close()
        report(cases, args.rounds, args.per_round, detail, load)


if __name__ == "__main__":
    main()
