"""What isolation costs per evaluation: in-process call vs the sandbox pool vs a fresh Python.

Evaluates a trivial program (one input, `sum` of three numbers) again and again:

  (a) in process, no isolation: compile + exec the program, call the run function;
  (b) through SandboxPool at each isolation level available here, one evaluation
      at a time (latency) and with the queue kept full on every core (throughput);
  (c) `subprocess.run([sys.executable, ...])` per evaluation: a fresh interpreter
      that imports the spec and runs the program, as many peer systems do;
  and for reference the floor the pool is built on: fork + exit + wait of this
  warm process (spec imported), doing nothing.

Prints one table and the ratios from the same run. The spec imports numpy by
default, as real problem specs do (`--no-numpy` for a bare one).

    python experiments/benchmarks/sandbox_overhead.py [--seconds 3] [--rounds 5] [--no-numpy]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cpu_clock import pool_cpu  # noqa: E402  (a sibling module)

from sandbox import isolation  # noqa: E402
from sandbox.pool import Limits, SandboxPool  # noqa: E402

SPEC = """
{numpy}
import funsearch


@funsearch.inputs
def train():
    return {{"only": [1, 2, 3]}}


@funsearch.run
def solve(instance):
    return priority(instance)


@funsearch.evolve
def priority(numbers):
    return 0
"""

PROGRAM = "def priority(numbers):\n    return sum(numbers)\n"

# What a fresh interpreter does per evaluation in (c).
FRESH = """
import importlib.util, json, sys, types
stub = types.ModuleType("funsearch")
for role in ("evolve", "run", "score", "inputs", "baseline"):
    setattr(stub, role, lambda function: function)
sys.modules["funsearch"] = stub
spec = importlib.util.spec_from_file_location("spec", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
exec(sys.argv[2], module.__dict__)
print(json.dumps([module.solve(instance) for instance in module.train().values()]))
"""


def rate(
    evaluate: Callable[[], int], seconds: float, cpu: Callable[[], float]
) -> tuple[float, float]:
    """(evaluations per second, CPU seconds per evaluation) of `evaluate`, which
    returns how many it did, called for `seconds`; `cpu()` reads the CPU clock of
    every process that works for it."""
    count, started, cpu_before = 0, time.perf_counter(), cpu()
    while count == 0 or time.perf_counter() - started < seconds:
        count += evaluate()
    return count / (time.perf_counter() - started), (cpu() - cpu_before) / count


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def own_and_children_cpu() -> float:
    """This process and its reaped children (bare forks, fresh interpreters)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def in_process(spec_path: Path) -> Callable[[], int]:
    spec = importlib.util.spec_from_file_location("benchmark_spec", spec_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    instances = list(module.train().values())

    def evaluate() -> int:
        exec(compile(PROGRAM, "<program>", "exec"), module.__dict__)
        json.dumps([module.solve(instance) for instance in instances])
        return 1

    return evaluate


def one_at_a_time(pool: SandboxPool) -> Callable[[], int]:
    def evaluate() -> int:
        outcome = pool.run(PROGRAM, "priority", "train")
        assert outcome.status == "ok" and outcome.outputs == [6], outcome
        return 1

    return evaluate


def all_busy(pool: SandboxPool, batch: int) -> Callable[[], int]:
    def evaluate() -> int:
        futures = [pool.submit(PROGRAM, "priority", "train") for _ in range(batch)]
        assert all(future.result().status == "ok" for future in futures)
        return batch

    return evaluate


def bare_fork() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return 1


def fresh_python(spec_path: Path) -> Callable[[], int]:
    def evaluate() -> int:
        done = subprocess.run(
            [sys.executable, "-c", FRESH, str(spec_path), PROGRAM],
            capture_output=True,
            check=True,
            env=isolation.clean_environment(),
        )
        assert json.loads(done.stdout) == [6]
        return 1

    return evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per mode, all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per mode")
    parser.add_argument("--no-numpy", action="store_true", help="a spec that imports nothing")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandbox-benchmark-") as folder:
        spec_path = Path(folder) / "trivial.py"
        numpy_line = "" if args.no_numpy else "import numpy as np"
        spec_path.write_text(textwrap.dedent(SPEC.format(numpy=numpy_line)))
        measure(spec_path, args)


def measure(spec_path: Path, args: argparse.Namespace) -> None:

    cores = os.cpu_count() or 1
    levels = ["process"]
    choice = isolation.resolve("auto")
    if choice.level == "bwrap":
        levels.append("bwrap")
    pools = {
        level: SandboxPool(spec_path, workers=cores, limits=Limits(timeout=10), isolation=level)
        for level in levels
    }
    modes: dict[str, tuple[Callable[[], int], Callable[[], float]]] = {
        "(a) in process, no isolation": (in_process(spec_path), own_cpu),
        "(ref) bare fork + exit + wait": (bare_fork, own_and_children_cpu),
    }
    for level, pool in pools.items():
        for _ in range(4 * cores):  # every worker builds the input set
            one_at_a_time(pool)()
        modes[f"(b) pool, {level}, one at a time"] = (one_at_a_time(pool), pool_cpu(pool, own_cpu))
        busy = all_busy(pool, 10 * cores)
        modes[f"(b) pool, {level}, {cores} workers busy"] = (busy, pool_cpu(pool, own_cpu))
    modes["(c) subprocess.run per evaluation"] = (fresh_python(spec_path), own_and_children_cpu)
    # Rounds interleave the modes, so a change in the machine's load (it is
    # shared) hits them all alike; each mode's figure is its median round.
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, (evaluate, cpu) in modes.items():
            rates[name].append(rate(evaluate, args.seconds / args.rounds, cpu))
    details = {level: pool.isolation_detail for level, pool in pools.items()}
    for pool in pools.values():
        pool.close()
    rows = [
        (name, statistics.median(r for r, _ in values), statistics.median(c for _, c in values))
        for name, values in rates.items()
    ]
    fresh = rows[-1][1]

    base = rows[0][1]
    numpy_words = "without" if args.no_numpy else "with"
    load = os.getloadavg()[0]
    print(f"\ntrivial program, spec {numpy_words} numpy, {cores} cores, load {load:.1f}")
    print(f"each figure: the median of {args.rounds} interleaved rounds")
    print(f"auto isolation here: {choice.level} ({choice.reason})")
    for level, detail in details.items():
        print(f"  {level}: {detail}")
    header = f"{'mode':40s} {'evals/s':>9s} {'ms/eval':>8s} {'+ms vs (a)':>10s} {'x (c)':>7s}"
    print(f"\n{header} {'CPU ms/eval':>11s}")
    for name, value, cpu in rows:
        ms = 1000.0 / value
        extra = ms - 1000.0 / base
        line = f"{name:40s} {value:9.1f} {ms:8.3f} {extra:10.3f} {value / fresh:7.1f}"
        print(f"{line} {1000 * cpu:11.3f}")
    print()
    by_name = {name: (value, cpu) for name, value, cpu in rows}
    fork_rate, fork_cpu = by_name["(ref) bare fork + exit + wait"]
    for level in levels:
        one, one_cpu = by_name[f"(b) pool, {level}, one at a time"]
        busy, _ = by_name[f"(b) pool, {level}, {cores} workers busy"]
        print(
            f"{level}: {1000 / one - 1000 / base:.2f} ms per evaluation over the in-process call "
            f"(a bare fork alone: {1000 / fork_rate:.2f} ms; the pool takes "
            f"{fork_rate / one:.2f}x its time and {one_cpu / fork_cpu:.2f}x its CPU); "
            f"{one / fresh:.1f}x (one at a time) and {busy / fresh:.1f}x (all cores) the "
            f"throughput of subprocess-per-evaluation"
        )


if __name__ == "__main__":
    main()
