"""What one Ray actor call costs on this machine: wall time and CPU over every
process (the caller, the actor, Ray's daemons), for a call that does nothing.

    python experiments/benchmarks/ray_call_cost.py [--calls 1000]

The Ray runtime is shaped by this number (funsearch/runtime/ray_runtime.py,
funsearch/database_client.py): on a 2-core VM a call costs about a quarter
of the CPU the sandbox spends on a 10 ms evaluation (fork, jail, exit), so
the search loop batches what it sends to each actor. A threaded actor (what the evaluator
and sampler actors are) and an asyncio one are compared, with one call in
flight and with four.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import ray
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cpu_clock import machine_cpu_seconds  # noqa: E402  (a sibling module)

from funsearch.runtime import ray_runtime  # noqa: E402

PAYLOAD = ["def f(x):\n    return x * x + 1.0\n" * 10] * 2  # two programs' worth of text


@ray.remote
class Threaded:
    def echo(self, value):
        return value


@ray.remote
class Async:
    async def echo(self, value):
        return value


def measure(actor, calls: int, in_flight: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per call."""
    ray.get(actor.echo.remote(PAYLOAD))
    cpu, started = machine_cpu_seconds(), time.perf_counter()
    pending = []
    for _ in range(calls):
        pending.append(actor.echo.remote(PAYLOAD))
        if len(pending) >= in_flight:
            ray.get(pending.pop(0))
    ray.get(pending)
    wall = time.perf_counter() - started
    return wall / calls, (machine_cpu_seconds() - cpu) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    arguments = parser.parse_args()
    ray_runtime.connect("", num_cpus=2)
    table = Table(title="one Ray actor call (echo of ~1 KB)")
    for column in ("actor", "calls in flight", "wall per call (ms)", "CPU per call (ms)"):
        table.add_column(column, justify="right")
    try:
        for name, cls in (("threaded", Threaded), ("asyncio", Async)):
            actor = cls.options(max_concurrency=4).remote()
            for in_flight in (1, 4):
                wall, cpu = measure(actor, arguments.calls, in_flight)
                table.add_row(name, str(in_flight), f"{1000 * wall:.2f}", f"{1000 * cpu:.2f}")
            ray.kill(actor)
    finally:
        ray.shutdown()
    Console().print(table)


if __name__ == "__main__":
    main()
