"""Evaluation cost of the offline benchmark's problems, program by program.

    python experiments/benchmarks/offline_eval_rate.py [--problems bin_packing,tsp]
        [--repeats 3]

Times the spec's run function (bin packing's `pack`, TSP's `build_tour`) on
the benchmark's training set for each baseline program, in this process: the
work one sandbox evaluation does, without the sandbox's fork and transfer
(experiments/benchmarks/sandbox_overhead.py measures those). Prints seconds
per evaluation and evaluations/s on one core (best of `repeats`), the figure
that decides how far model-free search gets in a wall budget.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from funsearch import spec as spec_module  # noqa: E402

PROBLEMS = {"bin_packing": ("problems/bin_packing.py", "train"),
            "tsp": ("problems/tsp.py", "train")}


def seconds_per_evaluation(spec, program: str, instances: dict, repeats: int) -> float:
    """Best-of-`repeats` time of the run function over every instance, with
    `program` exec'd into the spec module's globals as the sandbox does."""
    namespace = vars(spec.module)
    original = namespace[spec.evolve_name]
    exec(program, namespace)
    run = namespace[spec.run_name]
    best = float("inf")
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for instance in instances.values():
                run(instance)
            best = min(best, time.perf_counter() - start)
    finally:
        namespace[spec.evolve_name] = original
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="bin_packing,tsp")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    print(f"{'problem':12} {'program':28} {'s/eval':>8} {'eval/s/core':>12}")
    for name in arguments.problems.split(","):
        path, input_set = PROBLEMS[name]
        spec = spec_module.load(ROOT / path)
        instances = spec.inputs(input_set)
        programs = {"initial": spec.initial_program, **spec.baselines}
        for label, program in programs.items():
            seconds = seconds_per_evaluation(spec, program, instances, arguments.repeats)
            print(f"{name:12} {label:28} {seconds:8.3f} {1 / seconds:12.1f}")


if __name__ == "__main__":
    main()
