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

    python experiments/benchmarks/sandbox_overhead.py [--seconds 3] [--no-numpy]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

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


def rate(evaluate: Callable[[], object], seconds: float, at_least: int = 5) -> tuple[float, int]:
    """Evaluations per second of `evaluate`, called for about `seconds`."""
    evaluate()  # warm
    count, started = 0, time.perf_counter()
    while count < at_least or time.perf_counter() - started < seconds:
        evaluate()
        count += 1
    return count / (time.perf_counter() - started), count


def in_process(spec_path: Path) -> Callable[[], object]:
    spec = importlib.util.spec_from_file_location("benchmark_spec", spec_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    instances = list(module.train().values())

    def evaluate() -> object:
        exec(compile(PROGRAM, "<program>", "exec"), module.__dict__)
        return json.dumps([module.solve(instance) for instance in instances])

    return evaluate


def pool_rates(spec_path: Path, level: str, seconds: float) -> tuple[float, float, str]:
    """(sequential evaluations/s, evaluations/s with every core busy, isolation detail)."""
    cores = os.cpu_count() or 1
    with SandboxPool(spec_path, workers=cores, limits=Limits(timeout=10), isolation=level) as pool:

        def one() -> object:
            outcome = pool.run(PROGRAM, "priority", "train")
            assert outcome.status == "ok" and outcome.outputs == [6], outcome
            return outcome

        for _ in range(cores * 2):  # every worker builds the input set
            one()
        sequential, _ = rate(one, seconds)
        batch = 20 * cores

        def many() -> object:
            futures = [pool.submit(PROGRAM, "priority", "train") for _ in range(batch)]
            return [future.result() for future in futures]

        batches, _ = rate(many, seconds, at_least=2)
        return sequential, batches * batch, pool.isolation_detail


def bare_fork() -> object:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return os.waitpid(pid, 0)


def fresh_python(spec_path: Path) -> Callable[[], object]:
    def evaluate() -> object:
        done = subprocess.run(
            [sys.executable, "-c", FRESH, str(spec_path), PROGRAM],
            capture_output=True,
            check=True,
            env=isolation.clean_environment(),
        )
        assert json.loads(done.stdout) == [6]
        return done

    return evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--no-numpy", action="store_true", help="a spec that imports nothing")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sandbox-benchmark-"))
    spec_path = folder / "trivial.py"
    numpy_line = "" if args.no_numpy else "import numpy as np"
    spec_path.write_text(textwrap.dedent(SPEC.format(numpy=numpy_line)))

    rows: list[tuple[str, float]] = []
    rows.append(("(a) in process, no isolation", rate(in_process(spec_path), args.seconds)[0]))
    rows.append(("(ref) bare fork + exit + wait", rate(bare_fork, args.seconds)[0]))
    levels = ["process"]
    choice = isolation.resolve("auto")
    if choice.level == "bwrap":
        levels.append("bwrap")
    details = {}
    for level in levels:
        sequential, parallel, details[level] = pool_rates(spec_path, level, args.seconds)
        rows.append((f"(b) pool, {level}, one at a time", sequential))
        rows.append((f"(b) pool, {level}, {os.cpu_count()} workers busy", parallel))
    fresh, _ = rate(fresh_python(spec_path), args.seconds)
    rows.append(("(c) subprocess.run per evaluation", fresh))

    base = rows[0][1]
    print(f"\ntrivial program, spec {'without' if args.no_numpy else 'with'} numpy, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"auto isolation here: {choice.level} ({choice.reason})")
    for level, detail in details.items():
        print(f"  {level}: {detail}")
    print(f"\n{'mode':44s} {'evals/s':>10s} {'ms/eval':>9s} {'+ms vs (a)':>11s} {'x (c)':>8s}")
    for name, value in rows:
        ms = 1000.0 / value
        extra = ms - 1000.0 / base
        print(f"{name:44s} {value:10.1f} {ms:9.3f} {extra:11.3f} {value / fresh:8.1f}")
    print()
    for level in levels:
        one = dict(rows)[f"(b) pool, {level}, one at a time"]
        busy = dict(rows)[f"(b) pool, {level}, {os.cpu_count()} workers busy"]
        print(
            f"{level}: {1000 / one - 1000 / base:.2f} ms per evaluation over the in-process call; "
            f"{one / fresh:.1f}x (one at a time) and {busy / fresh:.1f}x (all cores) the "
            f"throughput of subprocess-per-evaluation"
        )


if __name__ == "__main__":
    main()
